"""lpfleet.ai.runner_health against the runner-like fixture server (the module run in this process)."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from http_servers import FakeClock, OllamaServer, RunnerServer, run_module

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
    assert result["ok"] and result["checks"]["token"]["ok"] and result["checks"]["token"]["status_code"] == 401
    *with_token, probe = server.requests
    assert {call["authorization"] for call in with_token} == {"Bearer s3cret-token"}
    assert (probe["path"], probe["authorization"], probe["body"]["max_tokens"]) == ("/llm", None, 1)
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


# --- what go-livepeer's protocol demands, and failures that retrying cannot change ------------------

MISTRAL_ID = "mistralai/Mistral-7B-Instruct-v0.3"


def test_an_answer_for_another_model_fails_at_once(fake_clock):
    with RunnerServer(ignore_model=True) as server:
        result = run(server, model_id=MISTRAL_ID, deadline=120)
    llm = result["checks"]["llm"]
    assert result["failed"] and llm["attempts"] == 1 and fake_clock.slept == []
    assert f"the answer's model is '{MODEL_ID}', not the requested '{MISTRAL_ID}'" in result["msg"]
    assert "ignores the request's model" in result["msg"]


@pytest.mark.parametrize("llm", ["form_protocol", "form_answer"])
def test_a_runner_of_the_pre_2025_protocol_is_named_as_such(llm, fake_clock):
    with RunnerServer(llm=llm) as server:
        result = run(server, deadline=120)
    assert result["failed"] and result["checks"]["llm"]["attempts"] == 1 and fake_clock.slept == []
    assert "pre-2025 /llm protocol (a form with prompt and model_id" in result["msg"]


def test_a_stream_event_without_choices_fails_as_in_go_livepeer():
    with RunnerServer(llm="no_choices_event") as server:
        result = run(server, stream=True)
    stream = result["checks"]["llm_stream"]
    assert result["failed"] and result["checks"]["llm"]["ok"] and stream["attempts"] == 1
    assert "a stream event without choices" in result["msg"] and "CUDA out of memory" in result["msg"]


def installed_ollama(*tags: str, registry: tuple[str, ...] = ()) -> OllamaServer:
    """An OllamaServer holding TAGS; REGISTRY: more tags a pull can fetch."""
    server = OllamaServer()
    for tag in (*tags, *registry):
        server.registry.setdefault(tag, {"digest": tag.encode().hex()[:64].ljust(64, "0"),
                                         "layers": list(OllamaServer.LAYERS)})
    for tag in tags:
        server.install(tag)
    return server


def watch(ollama: OllamaServer, tag: str = "llama3.1:8b", **more) -> dict:
    return dict({"ollama_url": ollama.url, "ollama_name": "ollama", "ollama_tag": tag, "planned_tags": [tag]}, **more)


def test_a_model_not_found_fails_at_once_naming_the_tag_asked_for(fake_clock):
    with installed_ollama("llama3.1:8b") as ollama, \
            RunnerServer(ollama=ollama, ask_tag="llama3.1:8b-instruct-q8_0") as server:
        result = run(server, deadline=120, **watch(ollama))
    llm = result["checks"]["llm"]
    assert result["failed"] and llm["attempts"] == 1 and fake_clock.slept == [] and llm["status_code"] == 500
    assert ("the runner says the model is not found (it asked for the tag llama3.1:8b-instruct-q8_0, the plan "
            f"serves {MODEL_ID} as llama3.1:8b): retrying cannot fix it") in result["msg"]
    assert result["checks"]["served"]["ok"] is None


def test_a_500_that_is_not_about_the_model_is_still_retried():
    with RunnerServer(llm="500") as server:
        result = run(server, deadline=0.3)
    assert result["checks"]["llm"]["attempts"] > 1 and "not found" not in result["msg"]


def test_the_planned_tag_served_by_the_planned_ollama_passes():
    with installed_ollama("llama3.1:8b", "mistral:7b") as ollama, RunnerServer(ollama=ollama) as server:
        result = run(server, stream=True, **watch(ollama, planned_tags=["llama3.1:8b", "mistral:7b"]))
    served = result["checks"]["served"]
    assert result["ok"] and served["ok"] and served["findings"] == []
    assert served["before"]["loaded"] == [] and served["after"]["loaded"] == ["llama3.1:8b"]
    assert served["after"]["tags"] == ["llama3.1:8b", "mistral:7b"]


def test_a_runner_mapping_the_model_to_another_present_tag_fails():
    with installed_ollama("llama3.1:8b", "mistral:7b") as ollama, \
            RunnerServer(ollama=ollama, ask_tag="mistral:7b") as server:
        result = run(server, **watch(ollama))
    served = result["checks"]["served"]
    assert result["failed"] and result["checks"]["llm"]["ok"] and served["ok"] is False
    assert result["msg"].startswith("runner check served failed: ")
    assert (f"after the smoke requests for {MODEL_ID}, Ollama ollama does not have the plan's tag llama3.1:8b loaded "
            "(its /api/ps lists: mistral:7b)") in result["msg"]
    assert ("Ollama ollama has mistral:7b loaded, which the plan does not put there (it plans llama3.1:8b): the "
            f"runner maps {MODEL_ID} to another tag") in result["msg"]


def test_a_tag_loaded_before_the_smoke_requests_is_reported_as_such():
    with installed_ollama("llama3.1:8b", "mistral:7b") as ollama, RunnerServer(ollama=ollama) as server:
        ollama.loaded["mistral:7b"] = datetime.now(UTC)
        result = run(server, **watch(ollama))
    assert result["failed"] and len(result["checks"]["served"]["findings"]) == 1
    assert (f"Ollama ollama had mistral:7b loaded before the smoke requests for {MODEL_ID}, which the plan does not "
            "put there (it plans llama3.1:8b): an earlier request loaded it") in result["msg"]


def test_a_runner_pulling_its_own_copy_fails():
    own = "llama3.1:8b-instruct-q4_K_M"
    with installed_ollama("llama3.1:8b", registry=(own,)) as ollama, \
            RunnerServer(ollama=ollama, ask_tag=own, pull=True) as server:
        result = run(server, **watch(ollama))
    served = result["checks"]["served"]
    assert result["failed"] and served["before"]["tags"] == ["llama3.1:8b"]
    assert (f"{own} appeared in Ollama ollama during the smoke requests for {MODEL_ID}; the plan pulled llama3.1:8b: "
            "the runner pulls its own copy of the model") in result["msg"]


def test_a_runner_talking_to_another_gpus_ollama_fails():
    with installed_ollama("llama3.1:8b", "mistral:7b") as planned, \
            installed_ollama("llama3.1:8b", "mistral:7b") as other, RunnerServer(ollama=other) as server:
        result = run(server, **watch(planned, ollama_name="ollama_gpu1", other_ollamas=[
            {"name": "ollama_gpu0", "url": other.url, "tags": ["mistral:7b"]}]))
    served = result["checks"]["served"]
    assert result["failed"] and served["others"] == {"ollama_gpu0": ["llama3.1:8b"]}
    assert (f"{MODEL_ID} (tag llama3.1:8b) is loaded in Ollama ollama_gpu0, which the plan does not give it; the plan "
            "serves it from Ollama ollama_gpu1: the runner talks to another GPU's Ollama") in result["msg"]


def test_another_ollama_that_plans_the_same_tag_is_not_asked():
    with installed_ollama("llama3.1:8b") as ollama, installed_ollama("llama3.1:8b") as other, \
            RunnerServer(ollama=ollama) as server:
        other.loaded["llama3.1:8b"] = datetime.now(UTC)
        result = run(server, **watch(ollama, other_ollamas=[{"name": "twin", "url": other.url,
                                                             "tags": ["llama3.1:8b"]}]))
    assert result["ok"] and result["checks"]["served"]["others"] == {} and other.calls("/api/ps") == []


def test_an_ollama_that_cannot_be_read_fails_the_served_check():
    with installed_ollama("llama3.1:8b") as ollama:
        url = ollama.url
    with RunnerServer() as server:
        result = run(server, ollama_url=url, ollama_tag="llama3.1:8b")
    assert result["failed"] and result["checks"]["llm"]["ok"]
    assert f"runner check served failed: cannot read Ollama {url}: cannot connect" in result["msg"]


def test_a_runner_that_ignores_its_token_fails():
    with RunnerServer() as server:
        result = run(server, token="s3cret-token")
    token = result["checks"]["token"]
    assert result["failed"] and token["ok"] is False and token["status_code"] == 200 and token["attempts"] == 1
    assert "a request without the runner's token got HTTP 200, not 401: the runner ignores its AUTH_TOKEN" \
        in result["msg"]
    assert "s3cret-token" not in json.dumps(result)


def test_a_runner_that_ignores_its_token_only_warns_when_asked(capsys):
    with RunnerServer() as server:
        result = run(server, token="s3cret-token", token_check="warn")
    shown = json.dumps(result.get("warnings", [])) + capsys.readouterr().err
    assert result["ok"] and result["checks"]["token"]["ok"] is False
    assert "runner check token failed (token_check: warn)" in shown


def test_token_check_skip_sends_no_request_without_the_token():
    with RunnerServer(token="s3cret-token") as server:
        result = run(server, token="s3cret-token", token_check="skip")
    assert result["ok"] and result["checks"]["token"]["ok"] is None
    assert all(call["authorization"] for call in server.requests)


@pytest.mark.parametrize("args, message", [
    ({"ollama_url": "http://127.0.0.1:11434"}, "ollama_url and ollama_tag go together"),
    ({"ollama_url": "127.0.0.1:11434", "ollama_tag": "llama3.1:8b"}, "ollama_url='127.0.0.1:11434' is not an http"),
    ({"ollama_url": "http://127.0.0.1:11434", "ollama_tag": "llama3.1:8b",
      "other_ollamas": [{"name": "gpu0", "url": "ollama_gpu0"}]}, "other_ollamas[0].url='ollama_gpu0' is not an http"),
])
def test_bad_ollama_options_fail_before_any_request(args, message):
    with RunnerServer() as server:
        result = run(server, **args)
    assert result["failed"] and message in result["msg"] and server.requests == []


@pytest.mark.parametrize("args, message", [
    ({"url": "localhost:8000"}, "url='localhost:8000' is not an http:// or https:// URL"),
    ({"deadline": -1}, "deadline=-1.0 must be a finite number from 0 to"),
    ({"interval": 0}, "interval=0.0 must be a finite number from 0.001"),
    ({"llm_timeout": -5}, "llm_timeout=-5.0 must be a finite number from 0.001"),
    ({"max_tokens": 0}, "max_tokens=0 must be a finite number from 1"),
    # issue 12: nan and inf would hang or crash the retry loop; out-of-range numbers are refused
    ({"deadline": "nan"}, "deadline=nan must be a finite number"),
    ({"deadline": "inf"}, "deadline=inf must be a finite number"),
    ({"interval": "nan"}, "interval=nan must be a finite number"),
    ({"request_timeout": "inf"}, "request_timeout=inf must be a finite number"),
    ({"request_timeout": "-inf"}, "request_timeout=-inf must be a finite number"),
    ({"llm_timeout": "nan"}, "llm_timeout=nan must be a finite number"),
    ({"deadline": 10**9}, "deadline=1000000000.0 must be a finite number from 0 to 86400"),
    ({"max_tokens": 10**7}, "max_tokens=10000000 must be a finite number from 1 to 1000000"),
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
