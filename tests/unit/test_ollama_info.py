"""lpfleet.ai.ollama_info against the Ollama-like fixture server (the module run in this process)."""

import socket
from datetime import UTC, datetime, timedelta

import pytest
from http_servers import OllamaServer, go_time, run_module

from ansible_collections.lpfleet.ai.plugins.modules import ollama_info

FAST = {"retry_delay": 0.01}


@pytest.fixture
def ollama():
    with OllamaServer() as server:
        server.registry["mistral:latest"] = {"digest": "e5" * 32, "layers": [("sha256:" + "c3" * 32, 100)]}
        server.registry["phi3:mini"] = {"digest": "f6" * 32, "layers": [("sha256:" + "d4" * 32, 50)]}
        yield server


def run(server, **args):
    return run_module(ollama_info.main, dict({"url": server.url}, **args))


def test_an_empty_ollama_holds_nothing_and_every_name_is_missing(ollama):
    result = run(ollama, names=["mistral"])
    assert not result.get("failed") and not result["changed"]
    assert (result["models"], result["loaded"], result["unnamed"]) == ([], [], [])
    assert result["missing"] == result["not_loaded"] == ["mistral"]
    assert result["wanted"] == [{"name": "mistral", "canonical": "mistral:latest", "present": False, "loaded": False,
                                 "digest": None}]


def test_models_and_loaded_carry_digest_size_and_expiry(ollama):
    ollama.install("llama3.1:8b")
    expiry = datetime.now(UTC) + timedelta(minutes=30)
    ollama.loaded["llama3.1:8b"] = expiry
    result = run(ollama)
    total = sum(size for _, size in OllamaServer.LAYERS)
    [model] = result["models"]
    assert (model["name"], model["canonical"], model["digest"], model["size"]) == (
        "llama3.1:8b", "llama3.1:8b", "d1" * 32, total)
    assert model["modified_at"].startswith(str(datetime.now(UTC).year))
    [loaded] = result["loaded"]
    assert (loaded["canonical"], loaded["size_vram"], loaded["expires_at"]) == ("llama3.1:8b", total, go_time(expiry))


@pytest.mark.parametrize("name", ["mistral", "mistral:latest", "Mistral:Latest", "registry.ollama.ai/library/mistral",
                                  "library/mistral:latest"])
def test_a_name_matches_as_ollama_matches_it(ollama, name):
    ollama.install("mistral:latest")
    ollama.loaded["mistral:latest"] = datetime.now(UTC) + timedelta(minutes=5)
    result = run(ollama, names=[name])
    assert result["wanted"] == [{"name": name, "canonical": ollama_info.canonical_name(name), "present": True,
                                 "loaded": True, "digest": "e5" * 32}]
    assert result["missing"] == result["not_loaded"] == result["unnamed"] == result["unnamed_loaded"] == []


def test_a_different_tag_is_a_different_model(ollama):
    ollama.install("mistral:latest")
    result = run(ollama, names=["mistral:7b"])
    assert result["missing"] == ["mistral:7b"] and result["unnamed"] == ["mistral:latest"]


def test_models_the_names_leave_out_are_listed(ollama):
    for name in ("llama3.1:8b", "mistral:latest", "phi3:mini"):
        ollama.install(name)
    ollama.loaded["phi3:mini"] = datetime.now(UTC) + timedelta(minutes=5)
    ollama.loaded["mistral:latest"] = datetime.now(UTC) + timedelta(minutes=5)
    result = run(ollama, names=["llama3.1:8b", "mistral"])
    assert result["unnamed"] == ["phi3:mini"] and result["unnamed_loaded"] == ["phi3:mini"]
    assert result["not_loaded"] == ["llama3.1:8b"] and result["missing"] == []


def test_check_mode_reads_the_same_and_only_reads(ollama):
    ollama.install("llama3.1:8b")
    normal = run(ollama, names=["llama3.1:8b"])
    checked = run(ollama, names=["llama3.1:8b"], _ansible_check_mode=True)
    for result in (normal, checked):
        result.pop("invocation", None)
        result["models"][0].pop("modified_at")  # the fixture says "now"
    assert checked == normal and not checked["changed"]
    assert {(request["method"], request["path"]) for request in ollama.requests} == {
        ("GET", "/api/tags"), ("GET", "/api/ps")}


@pytest.mark.parametrize("name, says", [("llama 3", "is not an Ollama name"), ("", "is empty"),
                                        ("mistral:", "empty tag")])
def test_a_bad_name_fails_before_any_request(ollama, name, says):
    result = run(ollama, names=["mistral", name])
    assert result["failed"] and result["msg"].startswith(f"names[1]={name!r}") and says in result["msg"]
    assert ollama.requests == []


@pytest.mark.parametrize("option, value", [("url", "127.0.0.1:11434"), ("timeout", 0), ("retries", -1),
                                           ("retry_delay", float("nan"))])
def test_bad_options_fail_naming_the_option(ollama, option, value):
    result = run(ollama, **{option: value})
    assert result["failed"] and option in result["msg"] and ollama.requests == []


def test_a_5xx_is_retried(ollama):
    ollama.install("mistral:latest")
    ollama.answer_script["/api/tags"] = [(503, "application/json", b'{"error":"busy"}')]
    result = run(ollama, names=["mistral"], **FAST)
    assert not result.get("failed") and result["missing"] == []
    assert len(ollama.calls("/api/tags")) == 2


def test_retries_run_out_with_the_status_and_body(ollama):
    ollama.answer_script["/api/ps"] = [(500, "application/json", b'{"error":"an internal fault"}')] * 3
    result = run(ollama, retries=1, **FAST)
    assert result["failed"] and result["status_code"] == 500 and result["attempts"] == 2
    assert result["request_url"] == ollama.url + "/api/ps" and "an internal fault" in result["msg"]


def test_an_answer_that_is_not_a_model_list_fails_at_once(ollama):
    ollama.answer_script["/api/tags"] = [(200, "text/html", b"<html>proxy login</html>")]
    result = run(ollama, **FAST)
    assert result["failed"] and "expected a JSON content type" in result["msg"] and result["attempts"] == 1
    ollama.answer_script["/api/tags"] = [(200, "application/json", b'{"tags": []}')]
    result = run(ollama, **FAST)
    assert result["failed"] and "expected a body with a list of models" in result["msg"]


def test_models_null_is_an_empty_list(ollama):
    ollama.answer_script["/api/ps"] = [(200, "application/json", b'{"models": null}')]
    assert run(ollama)["loaded"] == []


def test_no_server_fails_saying_it_cannot_connect():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_module(ollama_info.main, {"url": f"http://127.0.0.1:{port}", "retries": 0})
    assert result["failed"] and "cannot connect" in result["msg"] and result["status_code"] is None


# The snapshot the ollama_models role records from ollama_info's results --------------------------

from ansible.errors import AnsibleFilterError  # noqa: E402

from ansible_collections.lpfleet.ai.plugins.filter.records import ollama_snapshot  # noqa: E402


def test_a_snapshot_of_two_servers_sharing_a_volume(ollama):
    with OllamaServer() as second:
        for server in (ollama, second):
            server.install("llama3.1:8b")
        ollama.install("mistral:latest")
        second.loaded["llama3.1:8b"] = datetime.now(UTC) + timedelta(minutes=5)
        results = [dict(run(server), item=server.url) for server in (ollama, second)]
        assert ollama_snapshot(results) == {"present": ["llama3.1:8b", "mistral:latest"],
                                            "loaded": {ollama.url: [], second.url: ["llama3.1:8b"]}}
    assert ollama_snapshot([]) == {"present": [], "loaded": {}}


@pytest.mark.parametrize("results", [None, [{"item": "http://x", "failed": True}], "results"])
def test_a_snapshot_needs_ollama_info_results(results):
    with pytest.raises(AnsibleFilterError, match="ollama_snapshot: expected the results of lpfleet.ai.ollama_info"):
        ollama_snapshot(results)
