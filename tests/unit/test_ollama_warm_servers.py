"""The filter ollama_warm_servers: each Ollama of a plan and its warm models (warm.json, applied_state's watch)."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.lpfleet.ai.plugins.filter.ollama_warm_servers import warm_servers


def stack(url, *models):
    return {"name": "s", "ollama_host_url": url,
            "models": [{"ollama_tag": tag, "model_id": tag, "warm": warm} for tag, warm in models]}


def test_one_server_per_stack_with_only_its_warm_models_in_order():
    plan = {"stacks": [stack("http://127.0.0.1:11434", ("llama3.1:8b", True), ("phi3:mini", False),
                             ("mistral:latest", True)),
                       stack("http://127.0.0.1:11435", ("phi3:mini", False))]}
    assert warm_servers(plan) == [{"url": "http://127.0.0.1:11434", "models": ["llama3.1:8b", "mistral:latest"]},
                                  {"url": "http://127.0.0.1:11435", "models": []}]


def test_planned_adds_every_model_of_each_stack_warm_or_cold_for_applied_states_watch():
    plan = {"stacks": [stack("http://127.0.0.1:11434", ("llama3.1:8b", True), ("phi3:mini", False)),
                       stack("http://127.0.0.1:11435")]}
    assert warm_servers(plan, planned=True) == [
        {"url": "http://127.0.0.1:11434", "models": ["llama3.1:8b"], "planned": ["llama3.1:8b", "phi3:mini"]},
        {"url": "http://127.0.0.1:11435", "models": [], "planned": []}]


def test_a_plan_without_stacks_has_no_server():
    assert warm_servers({"stacks": []}) == []


def test_not_a_plan_is_refused_by_name():
    with pytest.raises(AnsibleFilterError, match="ollama_warm_servers: not a plan"):
        warm_servers({"stacks": [{"models": []}]})
