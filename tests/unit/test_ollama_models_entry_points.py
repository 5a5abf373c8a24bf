"""The ollama_models role's snapshot, restore and prune entry points, run by ansible-playbook against the
Ollama-like fixture server: they read Ollama through lpfleet.ai.ollama_info and compare names as Ollama does."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import yaml
from http_servers import OllamaServer
from test_playbooks_syntax import run_playbook, write_inventory


def entry_point(name: str, **variables) -> dict:
    # Without ".yml", as the rollout calls them: Ansible validates the inputs against the entry point's spec.
    return {"name": name, "ansible.builtin.include_role": {"name": "lpfleet.ai.ollama_models",
                                                           "tasks_from": name}, "vars": variables}


def run_tasks(tmp_path, tasks: list[dict]):
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "ghost", "gather_facts": False, "tasks": tasks}]))
    inventory = write_inventory(tmp_path / "hosts.yml", {"ghost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}})
    done = run_playbook(tmp_path, "-i", str(inventory), str(playbook), timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_restore_undoes_what_happened_since_the_snapshot_and_prune_keeps_a_tagless_planned_model(tmp_path):
    with OllamaServer() as ollama:
        ollama.registry["mistral:latest"] = {"digest": "e5" * 32, "layers": [("sha256:" + "c3" * 32, 100)]}
        ollama.registry["phi3:mini"] = {"digest": "f6" * 32, "layers": [("sha256:" + "d4" * 32, 50)]}
        for name in ("llama3.1:8b", "mistral:latest"):
            ollama.install(name)
        ollama.loaded["mistral:latest"] = datetime.now(UTC) + timedelta(days=365 * 300)
        urls = [ollama.url]
        run_tasks(tmp_path, [
            entry_point("snapshot", ollama_models_snapshot_urls=urls),
            {"name": "Keep it", "ansible.builtin.set_fact": {"before": "{{ ollama_models_snapshot }}"}},
            {"name": "Pull and load a model the snapshot lacks, unload one it has",
             "lpfleet.ai.ollama_model": {"name": "phi3:mini", "state": "loaded", "url": ollama.url}},
            {"name": "Unload mistral", "lpfleet.ai.ollama_model": {"name": "mistral", "state": "unloaded",
                                                                   "url": ollama.url}},
            entry_point("restore", ollama_models_snapshot="{{ before }}", ollama_models_snapshot_urls=urls),
            entry_point("snapshot", ollama_models_snapshot_urls=urls),
            {"name": "The same as before", "ansible.builtin.assert": {"that": [
                "before.present == ['llama3.1:8b', 'mistral:latest']",
                f"before.loaded == {{'{ollama.url}': ['mistral:latest']}}", "ollama_models_snapshot == before"]}},
            entry_point("prune", lpfleet_plan={"stacks": [{"ollama_host_url": ollama.url,
                                                           "models": [{"ollama_tag": "mistral"}]}],
                                               "ollama_tags": ["mistral"]}),
        ])
        assert sorted(ollama.models) == ["mistral:latest"]  # the plan's `mistral` kept, llama3.1:8b pruned
        deleted = [request["body"]["model"] for request in ollama.calls("/api/delete")]
        assert deleted == ["phi3:mini", "llama3.1:8b"]


def test_a_host_alone_in_its_site_pulls_as_without_a_site(tmp_path):
    """A site with one host behaves as today: site.yml (included before every pull) copies nothing and asks no
    cache host (there is none; Ansible templates the loop's delegate_to even when the block is skipped)."""
    with OllamaServer() as ollama:
        run_tasks(tmp_path, [
            {"name": "The site part of a pull", "ansible.builtin.include_role": {
                "name": "lpfleet.ai.ollama_models", "tasks_from": "site.yml"},
             "vars": {"lpfleet_site": "dc-1", "ollama_models_site_tags": ["mistral:7b"],
                      "site_cache_ollama_url": ollama.url}},
            {"name": "Nothing came from a cache", "ansible.builtin.assert": {"that": [
                "ollama_models_site_outcome is not defined"]}},
        ])
        assert ollama.calls("/api/pull") == []
