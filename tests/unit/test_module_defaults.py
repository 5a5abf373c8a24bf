"""`module_defaults` reaches lpfleet's Ollama modules through the action group in meta/runtime.yml.

A playbook sets `group/lpfleet.ai.ollama: {url, retries}` once and calls `lpfleet.ai.ollama_model`
(module and action plugin) and `lpfleet.ai.ollama_info` with neither: the Ollama-like fixture server
on 127.0.0.1 must see the pull, tried once only (its first pull answers 500; ollama_model's own
default of 3 retries would have pulled), and ollama_info must read that server. A group default
reaches every module of the group, so it may hold only options both take (url, retries,
retry_delay); anything else fails the task, as the last test shows.
"""

from __future__ import annotations

import sys

import yaml
from http_servers import OllamaServer
from test_playbooks_syntax import REPO, run_playbook, write_inventory

TAG = "llama3.1:8b"


def run_play(tmp_path, defaults: dict, tasks: list[dict]):
    play = [{"hosts": "ghost", "gather_facts": False,
             "module_defaults": {"group/lpfleet.ai.ollama": defaults}, "tasks": tasks}]
    playbook = tmp_path / "defaults.yml"
    playbook.write_text(yaml.safe_dump(play))
    inventory = write_inventory(tmp_path / "hosts.yml", {"ghost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}})
    return run_playbook(tmp_path, "-i", str(inventory), str(playbook), timeout=120)


def test_runtime_yml_groups_exactly_the_ollama_modules():
    runtime = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())
    assert runtime["action_groups"] == {"ollama": ["ollama_model", "ollama_info"]}
    modules = {path.stem for path in (REPO / "plugins" / "modules").glob("*.py")}
    assert set(runtime["action_groups"]["ollama"]) <= modules


def test_group_defaults_set_the_url_and_retries_of_both_ollama_modules(tmp_path):
    with OllamaServer() as ollama:
        ollama.pull_script = ["500"]
        done = run_play(tmp_path, {"url": ollama.url, "retries": 0, "retry_delay": 0.01}, [
            {"name": "Pull with only the name given", "lpfleet.ai.ollama_model": {"name": TAG},
             "register": "pulled", "ignore_errors": True},
            {"name": "Read with no option given", "lpfleet.ai.ollama_info": None, "register": "info"},
            {"name": "Check both", "ansible.builtin.assert": {"that": [
                "pulled is failed", "pulled.attempts == 1", f"info.url == '{ollama.url}'",
                "info.models == []"]}}])
        assert done.returncode == 0, done.stdout + done.stderr
        assert [pull["body"]["model"] for pull in ollama.pulls] == [TAG]
        assert [request["path"] for request in ollama.requests].count("/api/tags") >= 2


def test_an_option_only_one_module_takes_fails_the_other(tmp_path):
    with OllamaServer() as ollama:
        done = run_play(tmp_path, {"url": ollama.url, "insecure": True},
                        [{"name": "Read", "lpfleet.ai.ollama_info": None}])
    assert done.returncode != 0
    assert "Unsupported parameters for (lpfleet.ai.ollama_info) module: insecure" in done.stdout
