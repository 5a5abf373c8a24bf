"""ollama_stack's checks for ollama_stack_bind_address, run by ansible-playbook on localhost (the `checks` entry
point, as preflight runs it): beyond the loopback only with ollama_stack_publish_beyond_loopback, and then a real
Ansible warning ([WARNING], from lpfleet.ai.warn) naming both ports and that Ollama has no authentication; "" is
refused. Also lpfleet.ai.warn itself."""

from __future__ import annotations

import sys

import pytest
import yaml
from test_playbooks_syntax import run_playbook, write_inventory

PLAN = {"stacks": [{"ollama_port": 11434, "runner_port": 8000}, {"ollama_port": 11435, "runner_port": 8001}]}


def play(tmp_path, tasks: list[dict]):
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "gpu-a01", "gather_facts": False, "tasks": tasks}]))
    inventory = write_inventory(tmp_path / "hosts.yml", {"gpu-a01": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}})
    done = run_playbook(tmp_path, "-i", str(inventory), str(playbook), timeout=180)
    return done.returncode, " ".join((done.stdout + done.stderr).split())


def checks(tmp_path, **variables):
    return play(tmp_path, [{"name": "Run ollama_stack's checks", "vars": {"lpfleet_plan": PLAN, **variables},
                            "ansible.builtin.include_role": {"name": "lpfleet.ai.ollama_stack",
                                                            "tasks_from": "checks"}}])


def test_loopback_passes_without_a_warning(tmp_path):
    returncode, output = checks(tmp_path)
    assert returncode == 0, output
    assert "[WARNING]" not in output


@pytest.mark.parametrize("address", ["0.0.0.0", "10.0.0.5", "::"])
def test_beyond_the_loopback_without_the_opt_in_is_refused_naming_both_ports(tmp_path, address):
    returncode, output = checks(tmp_path, ollama_stack_bind_address=address)
    assert returncode != 0
    assert f"gpu-a01: ollama_stack_bind_address is {address}, so Ollama (port 11434, 11435, no authentication)" \
        in output
    assert "the runner (port 8000, 8001)" in output and "ollama_stack_publish_beyond_loopback: true" in output


def test_beyond_the_loopback_with_the_opt_in_warns_naming_both_ports(tmp_path):
    returncode, output = checks(tmp_path, ollama_stack_bind_address="0.0.0.0",
                                ollama_stack_publish_beyond_loopback=True)
    assert returncode == 0, output
    warning = output[output.index("[WARNING]: gpu-a01: ollama_stack_bind_address is 0.0.0.0"):]
    assert "Ollama on port 11434, 11435 and the runner on port 8000, 8001 listen beyond this host" in warning
    assert "Ollama has no authentication" in warning


def test_an_empty_address_is_refused_even_with_the_opt_in(tmp_path):
    returncode, output = checks(tmp_path, ollama_stack_bind_address="", ollama_stack_publish_beyond_loopback=True)
    assert returncode != 0
    assert 'gpu-a01: ollama_stack_bind_address is "", which compose reads as every interface' in output


def test_warn_is_a_warning_and_refuses_an_empty_message(tmp_path):
    returncode, output = play(tmp_path, [{"name": "Warn", "lpfleet.ai.warn": {"msg": "the disk is nearly full"}}])
    assert returncode == 0 and "[WARNING]: the disk is nearly full" in output
    returncode, output = play(tmp_path, [{"name": "Warn", "lpfleet.ai.warn": {"msg": " "}}])
    assert returncode != 0 and "lpfleet.ai.warn needs msg, a non-empty string" in output
