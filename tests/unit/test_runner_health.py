"""lpfleet.ai.runner_health against the runner-like fixture server (the module run in this process)."""

import json
from pathlib import Path

import pytest
import yaml
from http_servers import FakeClock, RunnerServer, run_module

from ansible_collections.lpfleet.ai.plugins.module_utils import http
from ansible_collections.lpfleet.ai.plugins.modules import runner_health

MODEL_ID = RunnerServer.MODEL_ID
# Deadlines and intervals are on the fake clock (see fake_clock); socket timeouts are real and generous.
FAST = {"interval": 0.05, "deadline": 1, "llm_timeout": 10, "request_timeout": 10}
OPENAPI = Path(__file__).resolve().parents[2] / ".." / "shared" / "contracts" / "ai-runner.openapi.yaml"


@pytest.fixture(autouse=True)
def fake_clock(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(http, "CLOCK", clock)
    monkeypatch.setattr(runner_health, "CLOCK", clock)
    return clock


def run(server, **args):
    return run_module(runner_health.main, dict({"url": server.url, "model_id": MODEL_ID}, **dict(FAST, **args)))


def test_a_healthy_runner_passes_every_check():
    with RunnerServer() as server:
        result = run(server, stream=True)
    assert result["ok"] and not result.get("failed") and not result["changed"]
    assert result["status"] == "OK"
    checks = result["checks"]
    assert all(checks[name]["ok"] for name in ("health", "hardware_info", "version", "llm", "llm_stream"))
    assert checks["version"]["version"] == "0.14.1" and checks["hardware_info"]["gpu_info"]["0"]["major"] == 8
    assert checks["llm"]["content"] == "OK" and checks["llm"]["usage"]["total_tokens"] == 11
    assert checks["llm_stream"]["content"] == "OK" and checks["llm_stream"]["events"] == 3


def test_the_smoke_request_is_what_go_livepeer_sends():
    with RunnerServer() as server:
        run(server, max_tokens=7, stream=True)
    plain, streamed = (call["body"] for call in server.calls("/llm"))
    assert plain["model"] == MODEL_ID and plain["max_tokens"] == 7 and plain["stream"] is False
    assert plain["messages"][0]["role"] == "user" and isinstance(plain["messages"][0]["content"], str)
    assert streamed["stream"] is True


def test_loading_then_ok_is_retried_until_ready():
    with RunnerServer(health=["LOADING", "LOADING", "OK"]) as server:
        result = run(server)
    assert result["ok"] and result["checks"]["health"]["attempts"] == 3


def test_loading_counts_as_ready_when_allowed():
    with RunnerServer(health=["LOADING"]) as server:
        result = run(server, allow_loading=True, smoke=False)
    assert result["ok"] and result["status"] == "LOADING"
    assert result["checks"]["llm"] == {"ok": None, "detail": "skipped (smoke is false)"}


def test_loading_until_the_deadline_fails():
    with RunnerServer(health=["LOADING"]) as server:
        result = run(server, deadline=0.3)
    assert result["failed"] and result["status"] == "LOADING" and result["checks"]["health"]["attempts"] > 1
    assert "runner check health failed" in result["msg"] and "still LOADING" in result["msg"]
    assert result["checks"]["llm"]["ok"] is None


def test_error_fails_and_says_so():
    with RunnerServer(health=["ERROR"]) as server:
        result = run(server, deadline=0.2)
    assert result["failed"] and result["status"] == "ERROR"
    assert "reports ERROR" in result["msg"] and server.url + "/health" in result["msg"]


def test_a_health_answer_without_a_json_content_type_fails():
    with RunnerServer(health=["text/plain"]) as server:
        result = run(server)
    health = result["checks"]["health"]
    assert result["failed"] and health["attempts"] == 1  # a wrong content type does not fix itself
    assert (health["status_code"], health["content_type"], health["body_head"]) == (200, "text/plain; charset=utf-8",
                                                                                     "OK")
    assert "expected a JSON content type" in result["msg"] and "text/plain" in result["msg"]


def test_a_500_health_is_retried_then_fails_showing_the_body():
    with RunnerServer(health=["500"]) as server:
        result = run(server, deadline=0.3)
    assert result["failed"] and result["checks"]["health"]["attempts"] > 1
    assert "status 500" in result["msg"] and "internal fault" in result["msg"]


def test_401_without_the_token():
    with RunnerServer(token="s3cret-token") as server:
        result = run(server)
    assert result["failed"] and result["checks"]["health"]["status_code"] == 401
    assert "set token" in result["msg"] and result["checks"]["health"]["attempts"] == 1


def test_the_token_is_sent_and_never_shown():
    with RunnerServer(token="s3cret-token") as server:
        result = run(server, token="s3cret-token", stream=True)
    assert result["ok"]
    assert {call["authorization"] for call in server.requests} == {"Bearer s3cret-token"}
    assert "s3cret-token" not in json.dumps(result)


def test_a_slow_llm_answer_fails_the_llm_check():
    with RunnerServer(llm="slow", llm_delay=5) as server:
        result = run(server, llm_timeout=0.2, deadline=0.5)
    assert result["failed"] and result["checks"]["health"]["ok"] and not result["checks"]["llm"]["ok"]
    assert "runner check llm failed" in result["msg"] and "no answer within 0.2 s" in result["msg"]


def test_a_malformed_llm_answer_fails_at_once():
    with RunnerServer(llm="malformed") as server:
        result = run(server)
    llm = result["checks"]["llm"]
    assert result["failed"] and llm["attempts"] == 1 and "malformed LLMResponse" in llm["detail"]
    assert '"text": "OK"' in llm["body_head"]


def test_a_500_llm_answer_is_retried():
    with RunnerServer(llm="500") as server:
        result = run(server, deadline=0.3)
    llm = result["checks"]["llm"]
    assert result["failed"] and llm["attempts"] > 1 and llm["status_code"] == 500


def test_a_wrong_model_id_is_refused():
    with RunnerServer() as server:
        result = run_module(runner_health.main, dict(FAST, url=server.url, model_id="llama3.1:8b"))
    assert result["failed"] and result["checks"]["llm"]["status_code"] == 400
    assert "not served here" in result["msg"]


def test_a_stream_without_done_fails():
    with RunnerServer(llm="no_done") as server:
        result = run(server, stream=True)
    assert result["failed"] and result["checks"]["llm"]["ok"] and not result["checks"]["llm_stream"]["ok"]
    assert "without data: [DONE]" in result["msg"]


def test_hardware_info_failing_only_warns_as_in_go_livepeer(capsys):
    with RunnerServer(hardware=False) as server:
        result = run(server)
    assert result["ok"] and result["checks"]["hardware_info"]["status_code"] == 404
    # In-process, Ansible returns the warning in the result, or prints it once its controller Display is loaded.
    shown = json.dumps(result.get("warnings", [])) + capsys.readouterr().err
    assert "runner check hardware_info failed (go-livepeer only logs this)" in shown


def test_a_runner_that_is_down_fails_at_the_deadline():
    with RunnerServer() as server:
        url = server.url
    result = run_module(runner_health.main, dict(FAST, url=url, model_id=MODEL_ID, deadline=0.2))
    assert result["failed"] and "cannot connect" in result["msg"] and result["status"] is None


@pytest.mark.parametrize("args, message", [
    ({"url": "localhost:8000"}, "url='localhost:8000' is not an http:// or https:// URL"),
    ({"deadline": -1}, "deadline=-1.0 must be 0 or more"),
    ({"interval": 0}, "interval=0.0 must be a positive number"),
    ({"llm_timeout": -5}, "llm_timeout=-5.0 must be a positive number"),
    ({"max_tokens": 0}, "max_tokens=0 must be 1 or more"),
    ({"model_id": None}, "model_id is required when smoke is true"),
])
def test_bad_inputs_fail_before_any_request(args, message):
    with RunnerServer() as server:
        result = run_module(runner_health.main, dict({"url": server.url, "model_id": MODEL_ID}, **args))
    assert result["failed"] and message in result["msg"] and server.requests == []


# The fixture must speak the contract, or the tests above prove nothing.

def contract_validator(schema_name):
    if not OPENAPI.is_file():
        pytest.skip(f"the runner contract {OPENAPI} is not in this checkout")
    jsonschema = pytest.importorskip("jsonschema")
    document = yaml.safe_load(OPENAPI.read_text())
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]}
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path, schema_name", [
    ("/health", "HealthCheck"), ("/hardware/info", "HardwareInformation"), ("/version", "Version")])
def test_fixture_get_answers_match_the_contract(path, schema_name):
    validator = contract_validator(schema_name)
    with RunnerServer() as server:
        validator.validate(http.get_json(server.url + path))


def test_fixture_llm_answers_match_the_contract():
    validator = contract_validator("LLMResponse")
    payload = {"messages": [{"role": "user", "content": "hi"}], "model": MODEL_ID, "max_tokens": 4}
    with RunnerServer() as server:
        validator.validate(http.post_json(server.url + "/llm", payload))
        with http.Stream("POST", server.url + "/llm", dict(payload, stream=True)) as stream:
            events = [data for data in http.sse_data(stream.lines()) if data != "[DONE]"]
    for event in events:
        validator.validate(json.loads(event))
