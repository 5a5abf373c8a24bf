"""ollama_models' checks: an insecure Ollama model registry (plain http or unchecked TLS) needs the same opt-in
as every plain-http URL lpfleet downloads from (lpfleet_allow_plain_http). Run by ansible-playbook on localhost
through the `checks` entry point, as preflight runs it."""

from __future__ import annotations

import sys

import pytest
import yaml
from test_playbooks_syntax import run_playbook, write_inventory

PLAN = {"stacks": [{"models": [{"ollama_tag": "llama3.1:8b", "model_id": "meta-llama/Meta-Llama-3.1-8B-Instruct"}]}]}


def checks(tmp_path, **variables) -> tuple[int, str]:
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "gpu-a01", "gather_facts": False, "tasks": [
        {"name": "Run ollama_models' checks", "vars": {"lpfleet_plan": PLAN, **variables},
         "ansible.builtin.include_role": {"name": "lpfleet.ai.ollama_models", "tasks_from": "checks"}}]}]))
    inventory = write_inventory(tmp_path / "hosts.yml", {"gpu-a01": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}})
    done = run_playbook(tmp_path, "-i", str(inventory), str(playbook), timeout=180)
    return done.returncode, " ".join((done.stdout + done.stderr).split())


@pytest.mark.parametrize("variables", [{}, {"ollama_models_insecure": True, "lpfleet_allow_plain_http": True}],
                         ids=["secure", "insecure-with-the-opt-in"])
def test_passes(tmp_path, variables):
    returncode, output = checks(tmp_path, **variables)
    assert returncode == 0, output


def test_insecure_without_the_opt_in_is_refused_naming_both_variables(tmp_path):
    returncode, output = checks(tmp_path, ollama_models_insecure=True)
    assert returncode != 0
    assert "gpu-a01: ollama_models_insecure is true" in output
    assert "lpfleet_allow_plain_http is false" in output and "Fix:" in output
