"""Preflight's disk check (plugin_utils/disk.py, filter preflight_disk) and Ollama's manifest paths."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.lpfleet.ai.plugins.filter.ollama_name_filters import ollama_manifest_path
from ansible_collections.lpfleet.ai.plugins.filter.records import preflight_disk

PLAN = {"ollama_tags": ["llama3.1:8b", "mistral"],
        "stacks": [{"models": [{"ollama_tag": "llama3.1:8b", "download_mb": 4920},
                               {"ollama_tag": "mistral", "download_mb": None}]},
                   {"models": [{"ollama_tag": "llama3.1:8b", "download_mb": 4920}]}]}
MOUNTS = [{"mount": "/", "size_available": 10_000_000_000}, {"mount": "/var/lib", "size_available": 6_000_000_000},
          {"mount": "/var/lib/docker-other", "size_available": 1}]


def stat(tag, exists):
    return {"item": tag, "stat": {"exists": exists}}


@pytest.mark.parametrize("name, path", [
    ("mistral", "registry.ollama.ai/library/mistral/latest"),
    ("llama3.1:8b", "registry.ollama.ai/library/llama3.1/8b"),
    ("someone/m:q4", "registry.ollama.ai/someone/m/q4"),
    ("hf.co/bartowski/Llama-3.2-1B-GGUF:Q4_K_M", "hf.co/bartowski/Llama-3.2-1B-GGUF/Q4_K_M"),
])
def test_manifest_paths_are_ollamas(name, path):
    assert ollama_manifest_path(name) == path


def test_a_bad_name_has_no_manifest_path():
    with pytest.raises(AnsibleFilterError, match="ollama_manifest_path: Ollama model name 'a b'"):
        ollama_manifest_path("a b")


def test_missing_models_their_size_and_the_mount_of_the_data_root():
    need = preflight_disk(PLAN, [stat("llama3.1:8b", False), stat("mistral", True)], MOUNTS, "/var/lib/docker", 1000)
    assert (need["missing"], need["download_mb"], need["needed_mb"]) == (["llama3.1:8b"], 4920, 5920)
    assert need["mount"]["mount"] == "/var/lib" and need["free_mb"] == 6000 and need["ok"]
    tight = preflight_disk(PLAN, [stat("llama3.1:8b", False), stat("mistral", True)], MOUNTS, "/var/lib/docker", 2000)
    assert not tight["ok"] and tight["needed_mb"] == 6920


def test_nothing_to_download_needs_only_the_margin_and_a_size_unknown_counts_zero():
    need = preflight_disk(PLAN, [stat("llama3.1:8b", True), stat("mistral", False)], MOUNTS, "/srv/docker", 0)
    assert (need["missing"], need["download_mb"], need["mount"]["mount"], need["ok"]) == (["mistral"], 0, "/", True)


def test_no_mount_found_is_not_ok():
    need = preflight_disk(PLAN, [], [], "/var/lib/docker", 0)
    assert need["mount"] is None and not need["ok"] and need["missing"] == ["llama3.1:8b", "mistral"]


def test_bad_input_is_refused():
    with pytest.raises(AnsibleFilterError, match="preflight_disk"):
        preflight_disk(PLAN, [{"stat": {}}], MOUNTS, "/", "lots")
