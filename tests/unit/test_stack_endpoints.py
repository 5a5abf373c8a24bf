"""ollama_stack's discover entry point: where the host reaches the running containers (filter stack_endpoints)."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.lpfleet.ai.plugins.filter.records import stack_endpoints


def container(name, *ports):
    return {"Names": ["/" + name], "Ports": [dict(port, PrivatePort=11434) for port in ports]}


def test_each_container_at_its_published_port_as_the_host_reaches_it():
    results = [
        {"item": "ollama", "containers": [
            container("ollama_gpu1", {"IP": "0.0.0.0", "PublicPort": 11435}),
            container("ollama_gpu0", {"IP": "127.0.0.1", "PublicPort": 11434}),
            container("ollama_v6", {"IP": "::", "PublicPort": 11436}),
            container("ollama_lan", {"IP": "fd00::5", "PublicPort": 11437}),
            container("ollama_private")]},
        {"item": "runner", "containers": [container("llm_runner", {"PrivatePort": 8000},
                                                    {"IP": "10.0.0.5", "PublicPort": 8000})]},
    ]
    assert stack_endpoints(results) == {
        "ollama": [{"container": "ollama_gpu0", "url": "http://127.0.0.1:11434"},
                   {"container": "ollama_gpu1", "url": "http://127.0.0.1:11435"},
                   {"container": "ollama_lan", "url": "http://[fd00::5]:11437"},
                   {"container": "ollama_v6", "url": "http://[::1]:11436"}],
        "runners": [{"container": "llm_runner", "url": "http://10.0.0.5:8000"}]}


def test_no_container_found():
    assert stack_endpoints([{"item": "ollama", "containers": []}, {"item": "runner"}]) == {"ollama": [], "runners": []}


def test_bad_results_are_refused():
    with pytest.raises(AnsibleFilterError, match="stack_endpoints"):
        stack_endpoints([{"item": "database", "containers": []}])
