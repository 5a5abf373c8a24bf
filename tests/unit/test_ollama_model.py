"""lpfleet.ai.ollama_model against the Ollama-like fixture server (the module run in this process)."""

import json
import socket
from datetime import UTC, datetime, timedelta

import pytest
from http_servers import OllamaServer, go_time, run_module

from ansible_collections.lpfleet.ai.plugins.modules import ollama_model

TAG = "llama3.1:8b"
TOTAL = sum(size for _, size in OllamaServer.LAYERS)
FAST = {"retry_delay": 0.01, "stall_timeout": 0.3}


@pytest.fixture
def ollama():
    with OllamaServer() as server:
        yield server


def run(server, **args):
    return run_module(ollama_model.main, dict({"name": TAG, "url": server.url}, **args))


# present ----------------------------------------------------------------------------------------

def test_present_pulls_an_absent_model(ollama, tmp_path):
    progress_file = tmp_path / "progress.json"
    result = run(ollama, _progress_file=str(progress_file))
    assert result["changed"] and result["pulled"] and result["attempts"] == 1
    assert (result["digest"], result["size"]) == (ollama.registry[TAG]["digest"], TOTAL)
    assert result["bytes_transferred"] == TOTAL
    assert ollama.pulls[0]["body"] == {"model": TAG, "insecure": False, "stream": True}
    progress = json.loads(progress_file.read_text())
    assert (progress["tag"], progress["status"], progress["attempt"]) == (TAG, "success", 1)
    assert progress["completed"] == progress["total"] == TOTAL


def test_present_when_present_changes_nothing(ollama):
    ollama.install(TAG)
    result = run(ollama)
    assert not result["changed"] and not result["pulled"] and result["attempts"] == 0
    assert result["digest"] == ollama.registry[TAG]["digest"]
    assert ollama.pulls == []


def test_names_without_tag_mean_latest(ollama):
    ollama.registry["mistral:latest"] = {"digest": "e5" * 32, "layers": [("sha256:" + "c3" * 32, 100)]}
    ollama.install("mistral:latest")
    assert not run(ollama, name="mistral")["changed"]


def test_check_mode_reports_a_pull_without_pulling(ollama):
    result = run(ollama, _ansible_check_mode=True)
    assert result["changed"] and not result["pulled"] and result["msg"] == f"would pull {TAG}"
    assert ollama.pulls == [] and ollama.models == {}


def test_insecure_is_passed_to_the_pull(ollama):
    run(ollama, insecure=True)
    assert ollama.pulls[0]["body"]["insecure"] is True


def test_a_cut_stream_is_retried_and_resumes(ollama):
    ollama.pull_script = ["cut"]
    result = run(ollama, **FAST)
    assert result["changed"] and result["attempts"] == 2
    first_layer = OllamaServer.LAYERS[0][0]
    assert [pull["behaviour"] for pull in ollama.pulls] == ["cut", "ok"]
    assert ollama.pulls[1]["body"]["model"] == TAG
    assert ollama.pulls[1]["resumed_from"][first_layer] >= OllamaServer.LAYERS[0][1] // 2
    assert result["bytes_transferred"] == TOTAL  # resumed bytes are not counted twice


def test_a_stalled_stream_is_retried(ollama):
    ollama.pull_script = ["stall"]
    result = run(ollama, **FAST)
    assert result["changed"] and result["attempts"] == 2
    assert 0.3 <= result["duration"] < 5


def test_a_500_is_retried_with_back_off(ollama):
    ollama.pull_script = ["500", "500"]
    result = run(ollama, retry_delay=0.05)
    assert result["attempts"] == 3 and result["changed"]
    gaps = [later["at"] - earlier["at"] for earlier, later in zip(ollama.pulls, ollama.pulls[1:], strict=False)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1  # the delay doubles


def test_retries_run_out(ollama):
    ollama.pull_script = ["500", "500", "500"]
    result = run(ollama, retries=1, retry_delay=0.01)
    assert result["failed"] and result["attempts"] == 2 and result["status_code"] == 500
    assert "failed after 2 attempt(s)" in result["msg"] and "an internal fault" in result["msg"]
    assert "retries" in result["msg"]  # the fix


def test_an_error_inside_a_200_stream_fails_at_once_with_the_server_message(ollama):
    ollama.pull_script = ["error"]
    result = run(ollama, **FAST)
    assert result["failed"] and result["attempts"] == 1 and len(ollama.pulls) == 1
    assert "Ollama reported: pull model manifest: file does not exist" in result["msg"]
    assert "check the model name" in result["msg"].lower()


def test_an_error_line_for_a_download_ollama_gave_up_on_is_retried_and_resumes(ollama):
    ollama.pull_script = ["gave_up"]
    result = run(ollama, **FAST)
    assert result["changed"] and result["attempts"] == 2
    assert [pull["behaviour"] for pull in ollama.pulls] == ["gave_up", "ok"]
    first_layer = OllamaServer.LAYERS[0][0]
    assert ollama.pulls[1]["resumed_from"][first_layer] >= OllamaServer.LAYERS[0][1] // 2


def test_error_lines_for_a_download_it_gave_up_on_fail_after_the_retries(ollama):
    ollama.pull_script = ["gave_up"] * 5
    result = run(ollama, retries=2, **FAST)
    assert result["failed"] and result["attempts"] == 3
    assert "max retries exceeded: unexpected EOF" in result["msg"]


@pytest.mark.parametrize("message,permanent", [
    ("pull model manifest: file does not exist", True),
    ("pull model manifest: 404 manifest unknown", True),
    ("max retries exceeded: unexpected EOF", False),
    ("part stalled", False),
    ("503: Service Unavailable", False),
])
def test_which_stream_errors_are_permanent(message, permanent):
    assert ollama_model.is_permanent_pull_error(message) is permanent


def test_an_unknown_model_fails_with_the_server_message(ollama):
    result = run(ollama, name="nosuch:1b", **FAST)
    assert result["failed"] and "file does not exist" in result["msg"] and "nosuch:1b" in result["msg"]


def test_the_overall_timeout_stops_a_slow_pull():
    with OllamaServer(line_delay=0.2) as server:
        result = run(server, timeout=0.5, **FAST)
    assert result["failed"] and "overall timeout" in result["msg"]
    assert result["duration"] < 10  # generous: the point is that it stops, not how fast on a busy machine


def test_a_server_that_is_down_fails_naming_url_and_fix():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    result = run_module(ollama_model.main, {"name": TAG, "url": url, "retries": 1, "retry_delay": 0.01})
    assert result["failed"] and "cannot connect" in result["msg"] and url in result["msg"]
    assert f"Check that Ollama runs at {url}" in result["msg"]


def test_update_pulls_a_new_digest(ollama):
    ollama.install(TAG, digest="0ld" * 8)
    result = run(ollama, update=True)
    assert result["changed"] and result["pulled"] and result["digest"] == ollama.registry[TAG]["digest"]


def test_update_without_a_new_digest_changes_nothing(ollama):
    ollama.install(TAG)
    result = run(ollama, update=True)
    assert result["pulled"] and not result["changed"] and result["msg"] == f"{TAG} is up to date"


def test_update_in_check_mode_does_not_pull(ollama):
    ollama.install(TAG, digest="0ld" * 8)
    result = run(ollama, update=True, _ansible_check_mode=True)
    assert not result["changed"] and ollama.pulls == []


# absent -----------------------------------------------------------------------------------------

def test_absent_deletes(ollama):
    ollama.install(TAG)
    ollama.loaded[TAG] = datetime.now(UTC) + timedelta(minutes=5)
    result = run(ollama, state="absent")
    assert result["changed"] and result["digest"] is None
    assert ollama.models == {} and ollama.calls("/api/delete")[0]["body"] == {"model": TAG}


def test_absent_when_absent_changes_nothing(ollama):
    result = run(ollama, state="absent")
    assert not result["changed"] and ollama.calls("/api/delete") == []


def test_absent_in_check_mode_deletes_nothing(ollama):
    ollama.install(TAG)
    assert run(ollama, state="absent", _ansible_check_mode=True)["changed"]
    assert TAG in ollama.models


# loaded / unloaded ------------------------------------------------------------------------------

def test_loaded_pulls_then_loads_forever(ollama):
    result = run(ollama, state="loaded")
    assert result["changed"] and result["pulled"]
    assert ollama.calls("/api/generate")[0]["body"] == {"model": TAG, "keep_alive": -1, "stream": False}
    assert "prompt" not in ollama.calls("/api/generate")[0]["body"]
    assert ollama.loaded[TAG] > datetime.now(UTC) + timedelta(days=3650)


def test_loaded_when_loaded_changes_nothing(ollama):
    run(ollama, state="loaded")
    result = run(ollama, state="loaded")
    assert not result["changed"] and result["msg"] == f"{TAG} is loaded"
    assert len(ollama.calls("/api/generate")) == 1


def test_loaded_with_a_short_expiry_is_loaded_again_for_ever(ollama):
    ollama.install(TAG)
    ollama.loaded[TAG] = datetime.now(UTC) + timedelta(minutes=4)
    assert run(ollama, state="loaded")["changed"]
    assert ollama.loaded[TAG] > datetime.now(UTC) + timedelta(days=3650)


@pytest.mark.parametrize("minutes_left, changed", [(28, False), (10, True), (600, True)])
def test_loaded_with_a_finite_keep_alive(ollama, minutes_left, changed):
    ollama.install(TAG)
    ollama.loaded[TAG] = datetime.now(UTC) + timedelta(minutes=minutes_left)
    assert run(ollama, state="loaded", keep_alive="30m")["changed"] is changed
    generated = ollama.calls("/api/generate")
    assert [call["body"]["keep_alive"] for call in generated] == (["30m"] if changed else [])


def test_loaded_in_check_mode_touches_nothing(ollama):
    result = run(ollama, state="loaded", _ansible_check_mode=True)
    assert result["changed"] and "would pull and load" in result["msg"]
    ollama.install(TAG)
    assert run(ollama, state="loaded", _ansible_check_mode=True)["changed"]
    assert ollama.pulls == [] and ollama.calls("/api/generate") == [] and ollama.loaded == {}


def test_unloaded_unloads(ollama):
    ollama.install(TAG)
    ollama.loaded[TAG] = datetime.now(UTC) + timedelta(minutes=5)
    assert run(ollama, state="unloaded")["changed"]
    assert ollama.loaded == {} and ollama.calls("/api/generate")[0]["body"]["keep_alive"] == 0
    assert TAG in ollama.models


def test_unloaded_when_not_loaded_changes_nothing(ollama):
    ollama.install(TAG)
    assert not run(ollama, state="unloaded")["changed"]
    assert ollama.calls("/api/generate") == []


# bad inputs -------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    ({"url": "127.0.0.1:11434"}, "url='127.0.0.1:11434' is not an http:// or https:// URL"),
    ({"url": "ftp://x"}, "is not an http:// or https:// URL"),
    ({"state": "running"}, "value of state must be one of"),
    ({"timeout": -1}, "timeout=-1.0 must be a finite number from"),
    ({"stall_timeout": 0}, "stall_timeout=0.0 must be a finite number from"),
    ({"retries": -2}, "retries=-2 must be a finite number from 0 to 100"),
    ({"name": "llama 3"}, "name='llama 3' is not an Ollama name"),
    ({"name": ""}, "name='' is empty"),
    ({"state": "loaded", "keep_alive": "forever"}, "keep_alive='forever' is not seconds"),
    # issue 12: non-finite numbers, numbers out of range, names Ollama refuses
    ({"timeout": "nan"}, "timeout=nan must be a finite number"),
    ({"timeout": "inf"}, "timeout=inf must be a finite number"),
    ({"stall_timeout": "inf"}, "stall_timeout=inf must be a finite number"),
    ({"retry_delay": "nan"}, "retry_delay=nan must be a finite number"),
    ({"retry_delay": "-inf"}, "retry_delay=-inf must be a finite number"),
    ({"progress_interval": "nan"}, "progress_interval=nan must be a finite number"),
    ({"retries": 10**6}, "retries=1000000 must be a finite number from 0 to 100"),
    ({"state": "loaded", "keep_alive": "inf"}, "keep_alive='inf' is not a finite number"),
    ({"state": "loaded", "keep_alive": "nan"}, "keep_alive='nan' is not a finite number"),
    ({"name": "llama3.1:8b\n"}, "has whitespace around it"),
    ({"name": "llama3.1:8b\x00x"}, "holds a control character"),
    ({"name": "llama3.1::8b"}, "is not an Ollama name"),
    ({"name": "/llama3"}, "is not an Ollama name"),
    ({"name": "llama3:" + "x" * 81}, "is not an Ollama name"),
])
def test_bad_inputs_fail_before_any_request(ollama, args, message):
    result = run_module(ollama_model.main, dict({"name": TAG, "url": ollama.url}, **args))
    assert result["failed"] and message in result["msg"]
    assert ollama.requests == []


# pure helpers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("value, seconds", [
    (-1, None), ("-1", None), ("-1m", None), (0, 0), (600, 600), ("600", 600), ("30m", 1800), ("1h30m", 5400),
    ("1.5h", 5400), ("500ms", 0.5),
])
def test_keep_alive_seconds(value, seconds):
    assert ollama_model.keep_alive_seconds(value) == seconds


@pytest.mark.parametrize("value", ["", "5 m", "5x", "m", "forever", "1h-2m"])
def test_keep_alive_seconds_rejects(value):
    with pytest.raises(ValueError, match="keep_alive="):
        ollama_model.keep_alive_seconds(value)


def test_keep_alive_payload_keeps_numbers_numeric():
    assert [ollama_model.keep_alive_payload(v) for v in (-1, "-1", "600", "30m", 1.5)] == [-1, -1, 600, "30m", 1.5]


def test_parse_expiry_reads_go_times():
    parsed = ollama_model.parse_expiry("2024-06-04T14:38:31.837530417-07:00")
    assert parsed == datetime(2024, 6, 4, 21, 38, 31, 837530, tzinfo=UTC)
    assert ollama_model.parse_expiry("2318-01-01T00:00:00Z").year == 2318
    assert ollama_model.parse_expiry("soon") is None


def test_keep_alive_satisfied():
    now = datetime(2025, 1, 1, tzinfo=UTC)
    forever = go_time(now + timedelta(days=300 * 365))
    soon = go_time(now + timedelta(minutes=5))
    assert ollama_model.keep_alive_satisfied(forever, None, now)
    assert not ollama_model.keep_alive_satisfied(soon, None, now)
    assert ollama_model.keep_alive_satisfied(soon, 300, now)
    assert not ollama_model.keep_alive_satisfied(soon, 3600, now)
    assert not ollama_model.keep_alive_satisfied("", 300, now)


# A full disk (issue 13): a permanent error naming the space needed and where, not a network fault ----

@pytest.mark.parametrize("behaviour", ["disk_full", "disk_full_500"])
def test_a_full_disk_fails_at_once_naming_the_space_needed_and_where(ollama, behaviour):
    ollama.pull_script = [behaviour] * 3
    result = run(ollama, retries=2, **FAST)
    assert result["failed"] and result["attempts"] == 1 and len(ollama.pulls) == 1, result
    assert result["disk_full"] is True
    msg = result["msg"]
    assert "no space left on device" in msg and "Ollama's disk is full: pulling llama3.1:8b needs" in msg
    assert "in /root/.ollama/models (Ollama's model store" in msg and "Retrying cannot help" in msg
    assert "Fix: free that much on the file system that holds /root/.ollama/models" in msg
    assert "reaches its registry" not in msg and "check the model name" not in msg.lower()
    if behaviour == "disk_full":  # half the first layer arrived: the rest is what it needs
        first_size = OllamaServer.LAYERS[0][1]
        done = ollama.partial[OllamaServer.LAYERS[0][0]]
        assert f"at least {first_size - done} bytes" in msg and f"total {first_size} bytes, {done} of them" in msg
    else:
        assert "the model's size (Ollama announced no layer before the error)" in msg


def test_other_failures_are_not_disk_full(ollama):
    ollama.pull_script = ["error"]
    result = run(ollama, **FAST)
    assert result["failed"] and result["disk_full"] is False


@pytest.mark.parametrize("message,directory", [
    ("write /root/.ollama/models/blobs/sha256-ab12-partial: no space left on device", "/root/.ollama/models"),
    ("open /data/ollama/manifests/registry.ollama.ai/library/x/y: no space left on device", "/data/ollama"),
    ("write /srv/m/somefile: disk quota exceeded", "/srv/m"),
    ("no space left on device", "Ollama's model directory (OLLAMA_MODELS)"),
])
def test_the_model_directory_is_read_from_ollamas_error(message, directory):
    assert ollama_model.models_directory(message) == directory
