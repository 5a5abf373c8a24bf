"""The go-livepeer start-up stand-in against go-livepeer-aimodels.md.

Each fatal case checks the message go-livepeer prints for it; runners are either the
runner stand-in (backed by the Ollama stand-in) or a scripted local HTTP server.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from standins import (  # noqa: E402
    ORCHESTRATOR_PROGRAM,
    PYTHON,
    base_env,
    free_port,
    http_json,
    json_health,
    ollama_fixture,  # noqa: F401 - the "ollama" fixture
    pulled_ollama_fixture,  # noqa: F401 - the "pulled_ollama" fixture
    recording_runner_fixture,  # noqa: F401 - the "recording_runner" fixture
    registry_fixture,  # noqa: F401 - the "registry" fixture
    run_orchestrator,
    runner_fixture,  # noqa: F401 - the "runner" fixture
)

LLAMA = "meta-llama/Meta-Llama-3.1-8B-Instruct"

# The Livepeer docs' multi-pipeline example (seed 001), with the USD example's string price
# ("0.5e-3USD") written the way go-livepeer accepts it: a JSON number plus "currency".
DOCS_EXAMPLE = [
    {
        "pipeline": "text-to-image",
        "model_id": "SG161222/RealVisXL_V4.0_Lightning",
        "price_per_unit": 0.5e-3,
        "currency": "USD",
        "warm": True,
        "optimization_flags": {"SFAST": True},
    },
    {"pipeline": "image-to-image", "model_id": "ByteDance/SDXL-Lightning", "price_per_unit": 4768371},
    {"pipeline": "audio-to-text", "model_id": "openai/whisper-large-v3", "price_per_unit": 12882811, "warm": True},
    {
        "pipeline": "llm",
        "model_id": LLAMA,
        "warm": True,
        "price_per_unit": 0.18,
        "currency": "USD",
        "pixels_per_unit": 1000000,
        "url": "http://llm_runner:8000",
    },
]
LLM_ENTRY = {"pipeline": "llm", "model_id": LLAMA, "price_per_unit": 0.18, "currency": "USD"}


def write(tmp_path: Path, content: object | str) -> str:
    path = tmp_path / "aiModels.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2))
    return str(path)


def check(tmp_path: Path, content: object | str, *flags: str) -> tuple[int, dict]:
    return run_orchestrator("-aiModels", write(tmp_path, content), *flags)


def test_docs_example_with_numeric_prices_starts(tmp_path, runner):
    entries = copy.deepcopy(DOCS_EXAMPLE)
    entries[3]["url"] = runner.url
    code, report = check(tmp_path, entries, "-nvidia", "0,1")

    assert (code, report["ok"], report["fatal"]) == (0, True, None)
    registered = {entry["pipeline"]: entry for entry in report["registered"]}
    assert list(registered) == ["text-to-image", "image-to-image", "audio-to-text", "llm"]
    assert registered["text-to-image"]["gpu_slots"] == ["0"] and registered["audio-to-text"]["gpu_slots"] == ["1"]
    assert registered["image-to-image"]["status"] == "managed-cold"
    llm = registered["llm"]
    assert (llm["url"], llm["warm"], llm["capacity"], llm["status"]) == (runner.url, True, 1, "OK")
    assert llm["version"] == http_json("GET", runner.url + "/version")[1]["version"]
    assert llm["hardware"]["pipeline"] == "llm"
    assert llm["price"] == {
        "price_per_unit": "0.18",
        "pixels_per_unit": "1000000",
        "currency": "USD",
        "gateway": "default",
        "wei_per_pixel": "60000000.000",
    }
    assert registered["text-to-image"]["price"]["price_per_unit"] == "0.0005"


FATAL_CASES = {
    "trailing comma in an object": (
        '[{"pipeline": "llm", "model_id": "x", "price_per_unit": 1,}]',
        "Error parsing -aiModels: invalid character '}' looking for beginning of object key string",
    ),
    "trailing comma in the array": (
        '[{"pipeline": "llm", "model_id": "x", "price_per_unit": 1},]',
        "Error parsing -aiModels: invalid character ']' looking for beginning of value",
    ),
    "not a list": (
        {"pipeline": "llm"},
        "Error parsing -aiModels: json: cannot unmarshal object into Go value of type []core.AIModelConfig",
    ),
    "warm as a string": (
        [LLM_ENTRY | {"warm": "true"}],
        "Error parsing -aiModels: json: cannot unmarshal string into Go struct field AIModelConfig.warm of type bool",
    ),
    "capacity as a string": (
        [LLM_ENTRY | {"capacity": "2"}],
        "Error parsing -aiModels: json: cannot unmarshal string into Go struct field AIModelConfig.capacity "
        "of type int",
    ),
    "url as a number": (
        [LLM_ENTRY | {"url": 5}],
        "Error parsing -aiModels: json: cannot unmarshal number into Go struct field AIModelConfig.url of type string",
    ),
    "price as a string with currency": (
        [LLM_ENTRY | {"price_per_unit": "0.5e-3USD"}],
        'Error parsing -aiModels: value is not a number: "0.5e-3USD"',
    ),
    "price as a numeric string": (
        [LLM_ENTRY | {"price_per_unit": "0.18"}],
        'Error parsing -aiModels: value is not a number: "0.18"',
    ),
    "missing price": (
        [{"pipeline": "llm", "model_id": LLAMA}],
        f"panic: 'pricePerUnit' must be set for model '{LLAMA}' in pipeline 'llm'",
    ),
    "negative price": (
        [LLM_ENTRY | {"price_per_unit": -1}],
        f"panic: 'pricePerUnit' value specified for model '{LLAMA}' in pipeline 'llm' must be a valid positive "
        "number, provided -1.00",
    ),
    "fractional pixels_per_unit": (
        [LLM_ENTRY | {"pixels_per_unit": 0.5}],
        f"panic: 'pixelsPerUnit' value specified for model '{LLAMA}' in pipeline 'llm' must be a valid positive "
        "integer, provided 0.50",
    ),
    "zero pixels_per_unit": (
        [LLM_ENTRY | {"pixels_per_unit": 0}],
        f"panic: 'pixelsPerUnit' value specified for model '{LLAMA}' in pipeline 'llm' must be a valid positive "
        "integer, provided 0.00",
    ),
    "pipeline in upper case": ([LLM_ENTRY | {"pipeline": "LLM"}], "panic: Pipeline is not valid capability: LLM"),
    "warm managed pipeline not spelled exactly": (
        [{"pipeline": "Text to image", "model_id": "a/b", "price_per_unit": 1, "warm": True}],
        "panic: runtime error: slice bounds out of range",
    ),
    "same model warm and cold": (
        [
            {"pipeline": "audio-to-text", "model_id": "openai/whisper-large-v3", "price_per_unit": 1, "warm": True},
            {"pipeline": "audio-to-text", "model_id": "openai/whisper-large-v3", "price_per_unit": 1},
        ],
        "panic: Cannot have same model_id (openai/whisper-large-v3) as cold and warm in same AI worker, "
        "please fix aiModels json config",
    ),
    "more warm managed models than GPU slots": (
        [
            {"pipeline": "text-to-image", "model_id": "a/b", "price_per_unit": 1, "warm": True},
            {"pipeline": "image-to-image", "model_id": "c/d", "price_per_unit": 1, "warm": True},
            {"pipeline": "upscale", "model_id": "e/f", "price_per_unit": 1, "warm": True},
        ],
        "Error AI worker warming upscale container: insufficient capacity",
    ),
}


@pytest.mark.parametrize(("content", "message"), list(FATAL_CASES.values()), ids=list(FATAL_CASES))
def test_fatal_configurations_stop_the_node_with_go_livepeers_message(tmp_path, content, message):
    code, report = check(tmp_path, content, "-nvidia", "0,1")
    assert report["ok"] is False
    assert report["fatal"].strip() == message
    assert code == (2 if message.startswith("panic: ") else 1)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"pipeline": "llm"', "unexpected end of JSON input"),
        ("", "unexpected end of JSON input"),
        ("[tru]", "invalid character ']' in literal true (expecting 'e')"),
        ("[01]", "invalid character '1' after array element"),
        ('[{"pipeline" "llm"}]', "invalid character '\"' after object key"),
        ('[{"pipeline": "llm" "model_id": "x"}]', "invalid character '\"' after object key:value pair"),
        ("[1.]", "invalid character ']' after decimal point in numeric literal"),
        ("[-]", "invalid character ']' in numeric literal"),
        ("[1e]", "invalid character ']' in exponent of numeric literal"),
        ("[] []", "invalid character '[' after top-level value"),
        ('["a\\x"]', "invalid character 'x' in string escape code"),
        ("\ufeff[]", "invalid character '\u00ef' looking for beginning of value"),
        ("[{'pipeline': 'llm'}]", "invalid character '\\'' looking for beginning of object key string"),
    ],
)
def test_syntax_errors_use_go_scanner_messages(tmp_path, content, message):
    code, report = check(tmp_path, content)
    assert (code, report["fatal"]) == (1, f"Error parsing -aiModels: {message}")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (LLM_ENTRY | {"price_per_unit": None}, "value is not a number: null"),
        (LLM_ENTRY | {"pixels_per_unit": True}, "value is not a number: true"),
        (
            LLM_ENTRY | {"optimization_flags": {"SFAST": 1}},
            "json: cannot unmarshal number into Go struct field AIModelConfig.optimization_flags of type string",
        ),
        (
            LLM_ENTRY | {"capacity": 1.5},
            "json: cannot unmarshal number 1.5 into Go struct field AIModelConfig.capacity of type int",
        ),
    ],
)
def test_go_decoding_rules_for_prices_flags_and_numbers(tmp_path, entry, message):
    code, report = check(tmp_path, [entry])
    assert (code, report["fatal"]) == (1, f"Error parsing -aiModels: {message}")


def test_a_path_that_does_not_exist_is_parsed_as_an_inline_list(tmp_path):
    code, report = run_orchestrator("-aiModels", str(tmp_path / "missing" / "aiModels.json"))
    assert code == 1
    assert report["fatal"] == "Error parsing -aiModels: invalid AI model config expected <pipeline>:<model_id>:<warm>"


def test_inline_list_and_its_warm_flag(tmp_path):
    code, report = run_orchestrator("-aiModels", "text-to-image:a/b:maybe")
    assert report["fatal"] == 'Error parsing -aiModels: strconv.ParseBool: parsing "maybe": invalid syntax'
    code, report = run_orchestrator("-aiModels", "text-to-image:a/b:true", "-pricePerUnit", "10")
    assert code == 0 and report["registered"][0]["warm"] is True
    assert report["warnings"][-1].startswith("No 'pricePerUnit' specified for model 'a/b'")


def test_keys_match_case_insensitively_and_unknown_keys_are_ignored(tmp_path):
    entry = {"Pipeline": "llm", "MODEL_ID": LLAMA, "Price_Per_Unit": 0.18, "currency": "USD", "colour": "blue"}
    code, report = check(tmp_path, [entry])
    assert code == 0
    assert (report["registered"][0]["pipeline"], report["registered"][0]["model_id"]) == ("llm", LLAMA)


def test_pipelines_are_looked_up_by_capability_name(tmp_path):
    entries = [{"pipeline": pipeline, "model_id": "a/b", "price_per_unit": 1}
               for pipeline in ("Llm", "text to image", "segment-anything-2", "h.264")]
    code, report = check(tmp_path, entries)
    assert code == 0, report
    assert [entry["pipeline"] for entry in report["registered"]] == ["Llm", "text to image", "segment-anything-2",
                                                                      "h.264"]


def test_offchain_nodes_skip_the_price_checks(tmp_path):
    code, report = check(tmp_path, [{"pipeline": "llm", "model_id": LLAMA}], "-network", "offchain")
    assert (code, report["ok"]) == (0, True)


def test_runner_answering_text_plain_is_not_ready(tmp_path, recording_runner):
    runner = recording_runner((200, "text/plain; charset=utf-8", b"OK"))
    code, report = check(tmp_path, [LLM_ENTRY | {"url": runner.url}], "-maxWait", "5")
    assert (code, report["ok"]) == (2, False)
    assert report["fatal"].startswith(
        "panic: Error AI worker warming llm container: runtime error: invalid memory address or nil pointer dereference"
    )
    assert "not JSON" in report["fatal"] and "not ready" in report["fatal"]


def test_runner_in_error_state_stops_the_node(tmp_path, recording_runner):
    runner = recording_runner(json_health("ERROR"))
    code, report = check(tmp_path, [LLM_ENTRY | {"url": runner.url}])
    assert (code, report["fatal"]) == (1, "Error AI worker warming llm container: runner is in error state")


def test_unreachable_runner_times_out_like_go_livepeer(tmp_path):
    port = free_port()
    started = time.monotonic()
    code, report = check(tmp_path, [LLM_ENTRY | {"url": f"http://127.0.0.1:{port}"}], "-maxWait", "1.5")
    assert 1.4 < time.monotonic() - started < 10
    assert code == 1
    assert report["fatal"] == (
        "Error AI worker warming llm container: timed out waiting for runner: "
        f'Get "http://127.0.0.1:{port}/health": dial tcp 127.0.0.1:{port}: connect: connection refused'
    )


def test_probe_retries_every_half_second_sends_the_token_and_never_calls_llm(tmp_path, recording_runner):
    runner = recording_runner(
        (503, "application/json", b'{"detail": "starting"}'),
        (200, "application/json", b"{not json"),
        json_health("LOADING"),
    )
    started = time.monotonic()
    code, report = check(tmp_path, [LLM_ENTRY | {"url": runner.url, "token": "t0ken", "capacity": 3}])
    elapsed = time.monotonic() - started
    assert code == 0
    [entry] = report["registered"]
    assert (entry["status"], entry["loading"], entry["health_tries"], entry["capacity"]) == ("LOADING", True, 3, 3)
    assert 1.4 < elapsed < 10
    assert entry["version"] == "0.1.1"
    paths = [(method, path) for method, path, _ in runner.requests]
    assert paths == [("GET", "/health")] * 3 + [("GET", "/hardware/info"), ("GET", "/version")]
    assert {auth for _, _, auth in runner.requests} == {"Bearer t0ken"}


def test_serve_mode_reports_on_status(tmp_path, runner):
    port = free_port()
    path = write(tmp_path, [LLM_ENTRY | {"url": runner.url, "warm": True}])
    process = subprocess.Popen(
        [PYTHON, str(ORCHESTRATOR_PROGRAM), "serve", "-aiModels", path, "-httpAddr", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=base_env(),
    )
    try:
        deadline, answer = time.monotonic() + 15, None
        while time.monotonic() < deadline:
            try:
                answer = http_json("GET", f"http://127.0.0.1:{port}/status", timeout=1)
            except OSError:
                answer = None
            if answer and answer[1].get("state") == "running":
                break
            time.sleep(0.1)
        assert answer is not None and answer[0] == 200, answer
        assert answer[1]["ok"] is True and answer[1]["registered"][0]["status"] == "OK"
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(timeout=5)


def test_warm_managed_containers_take_the_nvidia_devices_in_file_order(tmp_path):
    """go-livepeer's allocation rule: the n-th warm managed entry on the n-th -nvidia device; url entries take none."""
    entries = [
        {"pipeline": "audio-to-text", "model_id": "openai/whisper-large-v3", "warm": True, "price_per_unit": 1},
        {"pipeline": "image-to-image", "model_id": "ByteDance/SDXL-Lightning", "price_per_unit": 1},
        {"pipeline": "text-to-image", "model_id": "SG161222/RealVisXL_V4.0_Lightning", "warm": True,
         "price_per_unit": 1},
    ]
    code, report = check(tmp_path, entries, "-nvidia", "1,0", "-network", "offchain")
    assert code == 0, report
    assert [(w["model_id"], w["gpu"]) for w in report["warm_gpus"]] == [
        ("openai/whisper-large-v3", "1"), ("SG161222/RealVisXL_V4.0_Lightning", "0")]
    code, report = check(tmp_path, entries[::-1], "-nvidia", "1,0", "-network", "offchain")
    assert [(w["model_id"], w["gpu"]) for w in report["warm_gpus"]] == [
        ("SG161222/RealVisXL_V4.0_Lightning", "1"), ("openai/whisper-large-v3", "0")]


@pytest.mark.parametrize(("health", "status", "logged"), [
    # An error exit: go-livepeer logs it and returns from main, so the process ends with status 0.
    (json_health("ERROR"), 0, "Error AI worker warming llm container: runner is in error state"),
    # A panic ends with Go's status 2.
    ((200, "text/plain", b"OK"), 2, "panic: Error AI worker warming llm container: runtime error"),
])
def test_serve_mode_exits_like_go_livepeer_when_it_stops(tmp_path, recording_runner, health, status, logged):
    """Contract, "How the node ends": status 0 after Error AI worker warming, 2 after a panic."""
    runner = recording_runner(health)
    path = write(tmp_path, [LLM_ENTRY | {"url": runner.url, "warm": True}])
    done = subprocess.run(
        [PYTHON, str(ORCHESTRATOR_PROGRAM), "serve", "-aiModels", path, "-httpAddr", f"127.0.0.1:{free_port()}",
         "-maxWait", "5"],
        capture_output=True, text=True, env=base_env(), timeout=60, check=False)
    assert done.returncode == status, done
    assert logged in done.stderr
    assert json.loads(done.stdout)["node_exit_status"] == status
