"""The Ollama stand-in against the official `ollama` Python client and the API subset of ollama.md."""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
from pathlib import Path

import ollama as ollama_client
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from standins import (  # noqa: E402
    free_port,
    http_call,
    http_json,
    ndjson_lines,
    ollama_fixture,  # noqa: F401 - the "ollama" fixture
    pulled_ollama_fixture,  # noqa: F401 - the "pulled_ollama" fixture
    registry_fixture,  # noqa: F401 - the "registry" fixture
    run_ollama_cli,
    start_ollama,
)

MIB = 1024 * 1024


def client(service) -> ollama_client.Client:
    return ollama_client.Client(host=service.url, timeout=30)


def test_root_and_version(ollama):
    status, headers, body = http_call("GET", ollama.url + "/")
    assert (status, body) == (200, b"Ollama is running")
    status, version = http_json("GET", ollama.url + "/api/version")
    assert status == 200 and version["version"].startswith("0.")


def test_pull_streams_progress_and_stores_the_model_like_ollama(ollama):
    api = client(ollama)
    assert api.list().models == []

    progress = list(api.pull("llama3.1:8b", stream=True))

    statuses = [item.status for item in progress]
    assert statuses[0] == "pulling manifest"
    assert statuses[-4:] == ["verifying sha256 digest", "writing manifest", "removing any unused layers", "success"]
    layers = [item for item in progress if item.digest]
    assert all(item.status == f"pulling {item.digest[7:19]}" for item in layers)
    model_layer = max(layers, key=lambda item: item.total)
    assert (model_layer.total, model_layer.completed) == (2 * MIB, 2 * MIB)

    store = ollama.models
    manifest = store / "manifests" / "registry.ollama.ai" / "library" / "llama3.1" / "8b"
    assert manifest.is_file()
    blob = store / "blobs" / f"sha256-{model_layer.digest[7:]}"
    assert "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest() == model_layer.digest
    assert not list((store / "blobs").glob("*partial*"))

    [listed] = api.list().models
    assert listed.model == "llama3.1:8b"
    assert listed.digest == hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert listed.size > 2 * MIB
    assert (listed.details.family, listed.details.parameter_size) == ("llama", "8.0B")


def test_pull_without_streaming_answers_one_object(ollama):
    status, body = http_json("POST", ollama.url + "/api/pull", {"name": "mistral:7b", "stream": False})
    assert (status, body) == (200, {"status": "success"})
    status, body = http_json("POST", ollama.url + "/api/pull", {"model": "nosuch:1b", "stream": False})
    assert status == 500 and body == {"error": "pull model manifest: file does not exist"}


def test_errors_arrive_inside_the_stream_after_200(ollama, tmp_path):
    status, _, payload = http_call("POST", ollama.url + "/api/pull", {"model": "nosuch:1b"})
    assert status == 200
    assert ndjson_lines(payload) == [
        {"status": "pulling manifest"},
        {"error": "pull model manifest: file does not exist"},
    ]
    with pytest.raises(ollama_client.ResponseError, match="file does not exist"):
        list(client(ollama).pull("nosuch:1b", stream=True))

    dead_port = free_port()
    orphan = start_ollama(tmp_path, f"http://127.0.0.1:{dead_port}")
    try:
        _, _, payload = http_call("POST", orphan.url + "/api/pull", {"model": "llama3.1:8b"})
    finally:
        orphan.stop()
    error = ndjson_lines(payload)[-1]["error"]
    assert error == (
        f'pull model manifest: Get "http://127.0.0.1:{dead_port}/v2/library/llama3.1/manifests/8b": '
        f"dial tcp 127.0.0.1:{dead_port}: connect: connection refused"
    )


def test_invalid_and_missing_names_are_bad_requests(ollama):
    assert http_json("POST", ollama.url + "/api/pull", {"model": "a/b/c/d:1"}) == (400, {"error": "invalid model name"})
    assert http_json("POST", ollama.url + "/api/pull", {}) == (400, {"error": "model is required"})


def test_show_copy_delete(pulled_ollama):
    api = client(pulled_ollama)
    shown = api.show("llama3.1:8b")
    assert shown.details.quantization_level == "Q4_K_M"
    assert "{{ .Prompt }}" in shown.template and shown.modelinfo["general.architecture"] == "llama"

    api.copy("llama3.1:8b", "fleet/llama:pinned")
    assert {model.model for model in api.list().models} == {"llama3.1:8b", "fleet/llama:pinned"}
    api.delete("llama3.1:8b")
    assert [model.model for model in api.list().models] == ["fleet/llama:pinned"]
    blobs = list((pulled_ollama.models / "blobs").iterdir())
    assert len(blobs) == 5, "the copy still references every blob"

    api.delete("fleet/llama:pinned")
    assert list((pulled_ollama.models / "blobs").iterdir()) == []
    for call in (lambda: api.delete("fleet/llama:pinned"), lambda: api.show("llama3.1:8b")):
        with pytest.raises(ollama_client.ResponseError) as missing:
            call()
        assert missing.value.status_code == 404


def test_keep_alive_loads_and_unloads(pulled_ollama):
    api = client(pulled_ollama)
    assert api.ps().models == []

    loaded = api.generate(model="llama3.1:8b", keep_alive=-1)
    assert (loaded.done, loaded.done_reason) == (True, "load")
    [running] = api.ps().models
    assert running.model == "llama3.1:8b" and running.size_vram == running.size
    assert running.expires_at.year > dt.datetime.now().year + 100

    api.generate(model="llama3.1:8b", keep_alive="10m")
    remaining = api.ps().models[0].expires_at - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=9) < remaining <= dt.timedelta(minutes=10)

    unloaded = api.generate(model="llama3.1:8b", keep_alive=0)
    assert unloaded.done_reason == "unload"
    assert api.ps().models == []

    with pytest.raises(ollama_client.ResponseError) as missing:
        api.generate(model="gemma2:9b", keep_alive=-1)
    assert missing.value.status_code == 404


def test_chat_answers_deterministically_with_and_without_streaming(pulled_ollama):
    api = client(pulled_ollama)
    messages = [{"role": "user", "content": "Which model are you?"}]

    answer = api.chat(model="llama3.1:8b", messages=messages)
    assert answer.message.role == "assistant"
    assert "llama3.1:8b" in answer.message.content and "Which model are you?" in answer.message.content
    assert answer.done_reason == "stop" and answer.eval_count > 1

    parts = list(api.chat(model="llama3.1:8b", messages=messages, stream=True))
    assert "".join(part.message.content for part in parts) == answer.message.content
    assert [part.done for part in parts].count(True) == 1 and parts[-1].done

    short = api.chat(model="llama3.1:8b", messages=messages, options={"num_predict": 3})
    assert (short.eval_count, short.done_reason) == (3, "length")
    assert [model.model for model in api.ps().models] == ["llama3.1:8b"]


def test_cli_list_pull_rm_and_version(ollama):
    pulled = run_ollama_cli(ollama, "pull", "phi3:mini")
    assert pulled.returncode == 0, pulled.stderr
    assert "success" in pulled.stderr

    listed = run_ollama_cli(ollama, "list")
    assert listed.returncode == 0
    header, row = listed.stdout.splitlines()
    assert header.split() == ["NAME", "ID", "SIZE", "MODIFIED"]
    assert row.split()[0] == "phi3:mini"

    failed = run_ollama_cli(ollama, "pull", "nosuch:1b")
    assert failed.returncode == 1
    assert "Error: pull model manifest: file does not exist" in failed.stderr

    assert run_ollama_cli(ollama, "rm", "phi3:mini").stdout.strip() == "deleted 'phi3:mini'"
    assert run_ollama_cli(ollama, "list").stdout.splitlines()[1:] == []
    version = run_ollama_cli(ollama, "--version")
    assert "lpfleet-lab stand-in" in version.stdout


def test_cli_fails_when_no_server_answers(ollama):
    ollama.stop()
    listed = run_ollama_cli(ollama, "list")
    assert listed.returncode == 1
    assert listed.stderr.startswith("Error: could not connect to ollama")


def test_a_named_registry_needs_insecure_for_plain_http_and_copy_gives_the_canonical_name(ollama, registry):
    named = f"127.0.0.1:{registry.port}/library/phi3:mini"
    refused = ndjson_lines(http_call("POST", ollama.url + "/api/pull", {"model": named})[2])
    assert refused[-1]["error"] == (
        f'pull model manifest: Get "https://127.0.0.1:{registry.port}/v2/library/phi3/manifests/mini": '
        "http: server gave HTTP response to HTTPS client"
    )

    api = client(ollama)
    assert api.pull(named, insecure=True).status == "success"
    assert (ollama.models / "manifests" / f"127.0.0.1:{registry.port}" / "library" / "phi3" / "mini").is_file()
    api.copy(named, "registry.ollama.ai/library/phi3:mini")
    assert sorted(model.model for model in api.list().models) == [named, "phi3:mini"]


def test_a_store_copied_behind_the_servers_back_is_listed_at_once_and_survives_a_restart(pulled_ollama, registry,
                                                                                        tmp_path):
    """What lpfleet.ai.site_model relies on, as Ollama does it (docs/internals.md, "Models and images once per
    site"): /api/tags and /api/show read the manifests from disk on every call (Ollama's syncManifests), and the
    start-up prune removes only blobs no manifest names (Ollama after an hour's grace, the stand-in at once)."""
    other = start_ollama(tmp_path, registry.url)
    try:
        assert client(other).list().models == []
        source = pulled_ollama.models
        for path in sorted(source.rglob("*")):
            if path.is_file():
                target = other.models / path.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(path.read_bytes())
        assert [model.model for model in client(other).list().models] == ["llama3.1:8b"]
        shown = client(other).show("llama3.1:8b")
        assert shown.details.family == client(pulled_ollama).show("llama3.1:8b").details.family
        orphan = other.models / "blobs" / ("sha256-" + "0" * 64)
        orphan.write_bytes(b"no manifest names me")
    finally:
        other.stop()
    again = start_ollama(tmp_path, registry.url, OLLAMA_MODELS=str(other.models))
    try:
        assert [model.model for model in client(again).list().models] == ["llama3.1:8b"]
        assert not orphan.exists()
        assert sorted(path.name for path in (other.models / "blobs").iterdir()) == sorted(
            path.name for path in (pulled_ollama.models / "blobs").iterdir())
    finally:
        again.stop()
