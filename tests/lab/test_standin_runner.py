"""The LLM runner stand-in against go-livepeer's runner contract (ai-runner.md, ai-runner.openapi.yaml).

Answers are validated against the response schemas the OpenAPI document gives for
each path, method and status, read from ../shared/contracts/ at test time.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from standins import (  # noqa: E402
    REPO_ROOT,
    RUNNER_OPENAPI,
    free_port,
    http_call,
    http_json,
    ollama_fixture,  # noqa: F401 - the "ollama" fixture
    pulled_ollama_fixture,  # noqa: F401 - the "pulled_ollama" fixture
    registry_fixture,  # noqa: F401 - the "registry" fixture
    runner_fixture,  # noqa: F401 - the "runner" fixture
    start_runner,
)

LLAMA = "meta-llama/Meta-Llama-3.1-8B-Instruct"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello runner"}]


@pytest.fixture(scope="module")
def contract():
    """validate(path, method, status, body) against the OpenAPI document's response schema."""
    if not RUNNER_OPENAPI.is_file():
        pytest.skip(f"runner OpenAPI document not found at {RUNNER_OPENAPI} (the shared contracts are absent)")
    document = yaml.safe_load(RUNNER_OPENAPI.read_text())

    def validate(path: str, method: str, status: int, body: object) -> None:
        response = document["paths"][path][method]["responses"][str(status)]
        schema = dict(response["content"]["application/json"]["schema"])
        schema["components"] = document["components"]
        jsonschema.Draft202012Validator(schema).validate(body)

    return validate


def post_llm(runner, body: object, token: str | None = None) -> tuple[int, dict, bytes]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return http_call("POST", runner.url + "/llm", body, headers=headers, timeout=30)


def sse_events(payload: bytes) -> list[str]:
    return [line.removeprefix("data: ") for line in payload.decode().splitlines() if line.startswith("data: ")]


def fake_nvidia_smi(directory: Path) -> Path:
    """An nvidia-smi on PATH that answers the runner's --query-gpu call for two GPUs."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        "  *--query-gpu=*compute_cap*)\n"
        '    echo "0, GPU-11111111-aaaa, NVIDIA GeForce RTX 4090, 24564, 24000, 7, 3, 8.9"\n'
        '    echo "1, GPU-22222222-bbbb, NVIDIA GeForce RTX 2060, 6144, 6000, 0, 0, 7.5";;\n'
        "  *) exit 6;;\n"
        "esac\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return directory


def test_health_hardware_and_version_follow_the_contract(tmp_path, pulled_ollama, contract):
    bin_dir = fake_nvidia_smi(tmp_path / "bin")
    runner = start_runner(tmp_path, pulled_ollama.url, PATH=f"{bin_dir}:/usr/bin:/bin")
    try:
        answers = {path: http_call("GET", runner.url + path) for path in ("/health", "/hardware/info", "/version")}
        answers["/hardware/stats"] = http_call("GET", runner.url + "/hardware/stats")
    finally:
        runner.stop()
    for path, (status, headers, body) in answers.items():
        assert status == 200 and headers["content-type"].startswith("application/json"), path
        contract(path, "get", 200, json.loads(body))

    assert json.loads(answers["/health"][2]) == {"status": "OK"}
    info = json.loads(answers["/hardware/info"][2])
    assert (info["pipeline"], info["model_id"]) == ("llm", LLAMA)
    assert info["gpu_info"]["0"] == {
        "id": "GPU-11111111-aaaa",
        "name": "NVIDIA GeForce RTX 4090",
        "memory_total": 24564 * 1024 * 1024,
        "memory_free": 24000 * 1024 * 1024,
        "major": 8,
        "minor": 9,
    }
    assert json.loads(answers["/hardware/stats"][2])["gpu_stats"]["1"]["name"] == "NVIDIA GeForce RTX 2060"
    version = json.loads(answers["/version"][2])
    assert (version["pipeline"], version["model_id"]) == ("llm", LLAMA)


def test_gpu_facts_come_from_nvml_when_libnvidia_ml_loads(tmp_path, ollama):
    """Cross-check with the lab's NVML stand-in (lab/driver), which GPU containers get in the lab."""
    build, profile = REPO_ROOT / "lab" / "driver" / "build.sh", REPO_ROOT / "lab" / "profiles" / "docs-4090-2060.json"
    if not build.is_file() or not profile.is_file() or shutil.which("gcc") is None:
        pytest.skip("the lab's NVML stand-in (lab/driver/build.sh, lab/profiles/) or gcc is not available")
    subprocess.run(["bash", str(build), str(tmp_path / "lib")], check=True, capture_output=True, timeout=120)
    runner = start_runner(
        tmp_path,
        ollama.url,
        LD_LIBRARY_PATH=str(tmp_path / "lib"),
        LPFLEET_LAB_GPU_PROFILE=str(profile),
        PATH="/usr/bin:/bin",
    )
    try:
        info = http_json("GET", runner.url + "/hardware/info")[1]["gpu_info"]
        stats = http_json("GET", runner.url + "/hardware/stats")[1]["gpu_stats"]
    finally:
        runner.stop()
    gpus = json.loads(profile.read_text())["gpus"]
    assert sorted(info) == sorted(stats) == [str(gpu["index"]) for gpu in gpus]
    for gpu in gpus:
        major, minor = (int(part) for part in gpu["compute_capability"].split("."))
        assert info[str(gpu["index"])] == {
            "id": gpu["uuid"],
            "name": gpu["name"],
            "memory_total": gpu["memory_total_mib"] * 1024 * 1024,
            "memory_free": (gpu["memory_total_mib"] - gpu["memory_used_mib"]) * 1024 * 1024,
            "major": major,
            "minor": minor,
        }


def test_llm_maps_the_hugging_face_id_to_the_ollama_tag(runner, contract):
    status, headers, body = post_llm(runner, {"model": LLAMA, "messages": MESSAGES, "max_tokens": 64})
    assert status == 200 and headers["content-type"] == "application/json"
    answer = json.loads(body)
    contract("/llm", "post", 200, answer)
    assert answer["id"].startswith("chatcmpl-") and answer["model"] == LLAMA
    [choice] = answer["choices"]
    assert (choice["index"], choice["finish_reason"], choice["message"]["role"]) == (0, "stop", "assistant")
    assert "llama3.1:8b" in choice["message"]["content"] and "Hello runner" in choice["message"]["content"]
    usage = answer["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


def test_llm_streams_server_sent_events_ending_with_done(runner, contract):
    _, _, whole = post_llm(runner, {"model": LLAMA, "messages": MESSAGES})
    status, headers, body = post_llm(runner, {"model": LLAMA, "messages": MESSAGES, "stream": True})
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    *chunks, done = sse_events(body)
    assert done == "[DONE]"
    parsed = [json.loads(chunk) for chunk in chunks]
    for chunk in parsed:
        contract("/llm", "post", 200, chunk)
    assert [chunk["choices"][0]["finish_reason"] for chunk in parsed][-1] == "stop"
    assert all(chunk["choices"][0]["finish_reason"] == "" for chunk in parsed[:-1])
    streamed = "".join(chunk["choices"][0]["delta"]["content"] for chunk in parsed)
    assert streamed == json.loads(whole)["choices"][0]["message"]["content"]
    assert len({chunk["id"] for chunk in parsed}) == 1


def test_max_tokens_limits_the_answer(runner):
    _, _, body = post_llm(runner, {"messages": MESSAGES, "max_tokens": 2})
    answer = json.loads(body)
    assert answer["usage"]["completion_tokens"] == 2
    assert answer["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize(
    ("body", "loc", "kind"),
    [
        ({"model": LLAMA}, ["body", "messages"], "missing"),
        ({"messages": "hello"}, ["body", "messages"], "list_type"),
        ({"messages": [{"role": "user"}]}, ["body", "messages", 0, "content"], "missing"),
        ({"messages": MESSAGES, "max_tokens": "many"}, ["body", "max_tokens"], "int_parsing"),
        ({"messages": MESSAGES, "stream": "maybe"}, ["body", "stream"], "bool_parsing"),
        (b"{not json", ["body", 1], "json_invalid"),
        ([MESSAGES], ["body"], "model_attributes_type"),
    ],
)
def test_malformed_bodies_get_422_with_fastapi_details(runner, contract, body, loc, kind):
    status, _, payload = post_llm(runner, body)
    assert status == 422
    answer = json.loads(payload)
    contract("/llm", "post", 422, answer)
    assert {"loc": loc, "type": kind} in [{"loc": item["loc"], "type": item["type"]} for item in answer["detail"]]


def test_unknown_model_is_400_and_extra_mappings_come_from_the_environment(tmp_path, pulled_ollama, contract):
    status, _ = http_json("POST", pulled_ollama.url + "/api/pull", {"model": "qwen2.5:7b", "stream": False})
    assert status == 200
    runner = start_runner(tmp_path, pulled_ollama.url, RUNNER_MODEL_MAP='{"Qwen/Qwen2.5-7B-Instruct": "qwen2.5:7b"}')
    try:
        refused = post_llm(runner, {"model": "llama3.1:8b", "messages": MESSAGES})
        mapped = post_llm(runner, {"model": "Qwen/Qwen2.5-7B-Instruct", "messages": MESSAGES})
    finally:
        runner.stop()
    assert refused[0] == 400
    contract("/llm", "post", 400, json.loads(refused[2]))
    assert "llama3.1:8b" in json.loads(refused[2])["detail"]["msg"]
    assert mapped[0] == 200 and "qwen2.5:7b" in json.loads(mapped[2])["choices"][0]["message"]["content"]


def test_empty_model_means_the_runner_model_id(tmp_path, pulled_ollama):
    assert http_json("POST", pulled_ollama.url + "/api/pull", {"model": "mistral:7b", "stream": False})[0] == 200
    runner = start_runner(tmp_path, pulled_ollama.url, MODEL_ID="mistralai/Mistral-7B-Instruct-v0.3")
    try:
        _, _, body = post_llm(runner, {"model": "", "messages": MESSAGES})
        version = http_json("GET", runner.url + "/version")[1]
    finally:
        runner.stop()
    answer = json.loads(body)
    assert answer["model"] == version["model_id"] == "mistralai/Mistral-7B-Instruct-v0.3"
    assert "mistral:7b" in answer["choices"][0]["message"]["content"]


def test_bearer_token_is_required_when_auth_token_is_set(tmp_path, pulled_ollama, contract):
    runner = start_runner(tmp_path, pulled_ollama.url, AUTH_TOKEN="s3cret-token")
    try:
        missing = post_llm(runner, {"messages": MESSAGES})
        wrong = post_llm(runner, {"messages": MESSAGES}, token="guess")
        right = post_llm(runner, {"messages": MESSAGES}, token="s3cret-token")
        health = http_json("GET", runner.url + "/health")
    finally:
        runner.stop()
    for status, headers, body in (missing, wrong):
        assert status == 401 and headers["www-authenticate"] == "Bearer"
        assert json.loads(body) == {"detail": {"msg": "Invalid bearer token"}}
        contract("/llm", "post", 401, json.loads(body))
    assert right[0] == 200
    assert health == (200, {"status": "OK"})


def test_unreachable_ollama_makes_health_error_and_llm_500(tmp_path, contract):
    runner = start_runner(tmp_path, f"http://127.0.0.1:{free_port()}")
    try:
        health = http_json("GET", runner.url + "/health")
        failed = post_llm(runner, {"messages": MESSAGES})
    finally:
        runner.stop()
    assert health == (200, {"status": "ERROR"})
    contract("/health", "get", 200, health[1])
    assert failed[0] == 500
    contract("/llm", "post", 500, json.loads(failed[2]))
    assert "unreachable" in json.loads(failed[2])["detail"]["msg"]


def test_require_model_reports_loading_until_ollama_has_it(tmp_path, ollama):
    runner = start_runner(tmp_path, ollama.url, RUNNER_REQUIRE_MODEL="1")
    try:
        before = http_json("GET", runner.url + "/health")
        http_json("POST", ollama.url + "/api/pull", {"model": "llama3.1:8b", "stream": False})
        after = http_json("GET", runner.url + "/health")
    finally:
        runner.stop()
    assert (before, after) == ((200, {"status": "LOADING"}), (200, {"status": "OK"}))


def test_unknown_paths_and_methods(runner):
    assert http_json("GET", runner.url + "/text-to-image") == (404, {"detail": "Not Found"})
    assert http_json("GET", runner.url + "/llm") == (405, {"detail": "Method Not Allowed"})


# --- lab-only misbehaviours (RUNNER_LAB_*): what lpfleet's verify must catch ---------------------

MISTRAL = "mistralai/Mistral-7B-Instruct-v0.3"


def ollama_tags(ollama) -> list[str]:
    return sorted(model["name"] for model in http_json("GET", ollama.url + "/api/tags")[1]["models"])


def ollama_loaded(ollama) -> list[str]:
    return sorted(model["name"] for model in http_json("GET", ollama.url + "/api/ps")[1]["models"])


def test_ask_tag_asks_ollama_for_another_tag_whatever_the_mapping(tmp_path, pulled_ollama):
    assert http_json("POST", pulled_ollama.url + "/api/pull", {"model": "mistral:7b", "stream": False})[0] == 200
    runner = start_runner(tmp_path, pulled_ollama.url, RUNNER_LAB_ASK_TAG="mistral:7b")
    try:
        status, _, body = post_llm(runner, {"model": LLAMA, "messages": MESSAGES})
        absent = start_runner(tmp_path, pulled_ollama.url, RUNNER_LAB_ASK_TAG="llama3.1:8b-instruct-q8_0")
        try:
            missing = post_llm(absent, {"model": LLAMA, "messages": MESSAGES})
        finally:
            absent.stop()
    finally:
        runner.stop()
    answer = json.loads(body)
    assert status == 200 and answer["model"] == LLAMA and "mistral:7b" in answer["choices"][0]["message"]["content"]
    assert "mistral:7b" in ollama_loaded(pulled_ollama)
    assert missing[0] == 500 and "llama3.1:8b-instruct-q8_0" in json.loads(missing[2])["detail"]["msg"]
    assert "not found" in json.loads(missing[2])["detail"]["msg"]


def test_pull_downloads_the_tag_it_asks_for(tmp_path, pulled_ollama):
    assert "llama3.2:3b" not in ollama_tags(pulled_ollama)
    runner = start_runner(tmp_path, pulled_ollama.url, RUNNER_LAB_ASK_TAG="llama3.2:3b", RUNNER_LAB_PULL="1")
    try:
        status = post_llm(runner, {"model": LLAMA, "messages": MESSAGES})[0]
    finally:
        runner.stop()
    assert status == 200 and "llama3.2:3b" in ollama_tags(pulled_ollama)


def test_ignore_model_serves_its_own_model_id(tmp_path, pulled_ollama):
    runner = start_runner(tmp_path, pulled_ollama.url, RUNNER_LAB_IGNORE_MODEL="1")
    try:
        status, _, body = post_llm(runner, {"model": MISTRAL, "messages": MESSAGES})
    finally:
        runner.stop()
    assert status == 200 and json.loads(body)["model"] == LLAMA


def test_ignore_token_serves_requests_without_it(tmp_path, pulled_ollama):
    runner = start_runner(tmp_path, pulled_ollama.url, AUTH_TOKEN="s3cret-token", RUNNER_LAB_IGNORE_TOKEN="1")
    try:
        status = post_llm(runner, {"messages": MESSAGES})[0]
    finally:
        runner.stop()
    assert status == 200


def test_health_text_answers_200_without_a_json_content_type(tmp_path, pulled_ollama):
    runner = start_runner(tmp_path, pulled_ollama.url, RUNNER_LAB_HEALTH_TEXT="1")
    try:
        status, headers, body = http_call("GET", runner.url + "/health")
    finally:
        runner.stop()
    assert (status, headers["content-type"], body) == (200, "text/plain; charset=utf-8", b"OK")


def test_protocol_2024_wants_the_old_form_and_answers_the_old_shape(tmp_path, pulled_ollama):
    runner = start_runner(tmp_path, pulled_ollama.url, RUNNER_LAB_PROTOCOL="2024")
    try:
        current = post_llm(runner, {"model": LLAMA, "messages": MESSAGES})
        form = http_call("POST", runner.url + "/llm", b"prompt=Hello+runner&model_id=" + LLAMA.encode(),
                         headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30)
    finally:
        runner.stop()
    assert current[0] == 422 and json.loads(current[2])["detail"][0]["loc"] == ["body", "prompt"]
    answer = json.loads(form[2])
    assert form[0] == 200 and set(answer) == {"response", "tokens_used"} and "Hello runner" in answer["response"]


def test_ollama_url_overrides_the_ollama_base_url(tmp_path, pulled_ollama):
    runner = start_runner(tmp_path, f"http://127.0.0.1:{free_port()}", RUNNER_LAB_OLLAMA_URL=pulled_ollama.url)
    try:
        health = http_json("GET", runner.url + "/health")
    finally:
        runner.stop()
    assert health == (200, {"status": "OK"})
