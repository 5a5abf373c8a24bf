"""`module_defaults` reaches lpfleet's Ollama modules through the action group in meta/runtime.yml.

A playbook sets `group/lpfleet.ai.ollama: {url, insecure}` once and calls `lpfleet.ai.ollama_model`
(module and action plugin) without either; the Ollama-like fixture server on 127.0.0.1 must then
see the pull, with `insecure` as the group gave it.
"""

from __future__ import annotations

import sys

import yaml
from http_servers import OllamaServer
from test_playbooks_syntax import REPO, run_playbook, write_inventory

TAG = "llama3.1:8b"


def test_runtime_yml_groups_exactly_the_ollama_modules():
    runtime = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())
    assert runtime["action_groups"] == {"ollama": ["ollama_model", "ollama_info"]}


def test_group_defaults_set_the_url_and_options_of_ollama_model(tmp_path):
    with OllamaServer() as ollama:
        play = [{
            "hosts": "ghost", "gather_facts": False,
            "module_defaults": {"group/lpfleet.ai.ollama": {"url": ollama.url, "insecure": True}},
            "tasks": [{"name": "Pull with only the name given", "lpfleet.ai.ollama_model": {"name": TAG},
                       "register": "pulled"},
                      {"name": "Show it", "ansible.builtin.assert": {"that": ["pulled is changed"]}}],
        }]
        playbook = tmp_path / "defaults.yml"
        playbook.write_text(yaml.safe_dump(play))
        inventory = write_inventory(tmp_path / "hosts.yml", {"ghost": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable}})
        done = run_playbook(tmp_path, "-i", str(inventory), str(playbook), timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert [pull["body"] for pull in ollama.pulls] == [{"model": TAG, "insecure": True, "stream": True}]
        assert TAG in ollama.models
