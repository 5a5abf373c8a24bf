"""Faults injected in the model registry, as the Ollama stand-in's pull stream reports them.

The Ollama stand-in runs with OLLAMA_LAB_STALL_TIMEOUT=1 and no internal retries, so
every fault ends the pull with an error line; the next pull must resume from the
partial file with a Range request.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from standins import (  # noqa: E402
    catalog_entry,
    http_call,
    http_json,
    inject_fault,
    ndjson_lines,
    ollama_fixture,  # noqa: F401 - the "ollama" fixture
    registry_fixture,  # noqa: F401 - the "registry" fixture
    registry_stats,
    start_ollama,
)

MODEL = "llama3.1:8b"
MANIFEST = Path("manifests/registry.ollama.ai/library/llama3.1/8b")


def pull(ollama, name: str = MODEL) -> list[dict]:
    status, _, payload = http_call("POST", ollama.url + "/api/pull", {"model": name}, timeout=60)
    assert status == 200
    return ndjson_lines(payload)


def blob_gets(registry, digest: str) -> list[dict]:
    return [r for r in registry_stats(registry)["requests"] if r["digest"] == digest and r["method"] == "GET"]


@pytest.mark.parametrize(
    ("fault", "error", "kept"),
    [
        ({"mode": "cut", "after_bytes": 700_000}, "max retries exceeded: unexpected EOF", 700_000),
        ({"mode": "stall", "after_bytes": 500_000, "stall_seconds": 30}, "max retries exceeded: part stalled", 500_000),
        ({"mode": "error5xx"}, "max retries exceeded: 503: service unavailable (lpfleet-lab fault injection)", 0),
    ],
    ids=["cut", "stall", "error5xx"],
)
def test_fault_is_an_error_line_and_the_next_pull_resumes(registry, ollama, fault, error, kept):
    entry = catalog_entry(registry, MODEL)
    digest, size = entry["model_digest"], entry["model_size"]
    inject_fault(registry, model=MODEL, **fault)

    started = time.monotonic()
    failed = pull(ollama)
    assert time.monotonic() - started < 10
    assert failed[-1] == {"error": error}
    assert not (ollama.models / MANIFEST).exists()
    record = ollama.models / "blobs" / f"sha256-{digest[7:]}-partial-0"
    assert json.loads(record.read_text()) == {"N": 0, "Offset": 0, "Size": size, "Completed": kept}

    http_json("DELETE", registry.url + "/_lab/faults")  # also releases the stalled connection
    resumed = pull(ollama)
    assert resumed[-1] == {"status": "success"}
    first = next(item for item in resumed if item.get("digest") == digest)
    assert first["completed"] >= kept and first["total"] == size

    *_, retry = blob_gets(registry, digest)
    assert (retry["status"], retry["range"], retry["bytes"]) == (206, f"bytes={kept}-{size - 1}", size - kept)
    assert (ollama.models / "blobs" / f"sha256-{digest[7:]}").stat().st_size == size
    assert not list((ollama.models / "blobs").glob("*partial*"))


def test_corrupt_download_is_rejected_then_pulled_again(registry, ollama):
    entry = catalog_entry(registry, MODEL)
    inject_fault(registry, model=MODEL, mode="corrupt", after_bytes=4096)

    failed = pull(ollama)
    assert failed[-2] == {"status": "verifying sha256 digest"}
    assert failed[-1]["error"].startswith(
        f"digest mismatch, file must be downloaded again: want {entry['model_digest']}, got sha256:"
    )
    assert not (ollama.models / "blobs" / f"sha256-{entry['model_digest'][7:]}").exists()
    assert not (ollama.models / MANIFEST).exists()

    assert pull(ollama)[-1] == {"status": "success"}


def test_corrupted_blob_on_disk_is_rejected_and_replaced(registry, ollama):
    entry = catalog_entry(registry, MODEL)
    assert pull(ollama)[-1] == {"status": "success"}
    blob = ollama.models / "blobs" / f"sha256-{entry['model_digest'][7:]}"
    data = bytearray(blob.read_bytes())
    data[100] ^= 0xFF
    blob.write_bytes(bytes(data))

    assert pull(ollama)[-1]["error"].startswith("digest mismatch, file must be downloaded again")
    assert not blob.exists()

    assert pull(ollama)[-1] == {"status": "success"}
    assert len(blob_gets(registry, entry["model_digest"])) == 2
    assert blob.read_bytes() != bytes(data)


def test_configured_retries_hide_a_single_cut(registry, tmp_path):
    ollama = start_ollama(tmp_path, registry.url, OLLAMA_LAB_PULL_RETRIES="2", OLLAMA_LAB_RETRY_DELAY="0.05")
    try:
        entry = catalog_entry(registry, MODEL)
        inject_fault(registry, model=MODEL, mode="cut", after_bytes=300_000)
        lines = pull(ollama)
    finally:
        ollama.stop()
    assert lines[-1] == {"status": "success"}
    assert not any("error" in line for line in lines)
    ranges = [request["range"] for request in blob_gets(registry, entry["model_digest"])]
    assert ranges == [f"bytes=0-{entry['model_size'] - 1}", f"bytes=300000-{entry['model_size'] - 1}"]


def test_concurrent_pulls_share_one_download_and_its_progress(registry, ollama):
    entry = catalog_entry(registry, MODEL)
    inject_fault(registry, model=MODEL, mode="slow", rate_kibps=1024)
    results: dict[str, list[dict]] = {}

    def run(label: str) -> None:
        results[label] = pull(ollama)

    threads = [threading.Thread(target=run, args=(label,)) for label in ("first", "second")]
    threads[0].start()
    time.sleep(0.4)
    threads[1].start()
    for thread in threads:
        thread.join(timeout=30)

    assert results["first"][-1] == results["second"][-1] == {"status": "success"}
    gets = blob_gets(registry, entry["model_digest"])
    assert len(gets) == 1 and gets[0]["bytes"] == entry["model_size"]
    for lines in results.values():
        progress = [line["completed"] for line in lines if line.get("digest") == entry["model_digest"]]
        assert min(progress) < entry["model_size"] == progress[-1]
        assert progress == sorted(progress)


def test_a_client_that_goes_away_leaves_a_partial_to_resume(registry, ollama):
    entry = catalog_entry(registry, MODEL)
    inject_fault(registry, model=MODEL, mode="slow", rate_kibps=512)
    conn = http.client.HTTPConnection("127.0.0.1", ollama.port, timeout=10)
    conn.request("POST", "/api/pull", body=json.dumps({"model": MODEL}))
    response = conn.getresponse()
    seen = 0
    while seen < 200_000:
        line = json.loads(response.readline())
        seen = line.get("completed", 0) if line.get("digest") == entry["model_digest"] else seen
    conn.sock.close()
    conn.close()

    record = ollama.models / "blobs" / f"sha256-{entry['model_digest'][7:]}-partial-0"
    kept, previous, deadline = -1, -2, time.monotonic() + 10
    while kept != previous and time.monotonic() < deadline:  # until the canceled download stops writing
        previous, kept = kept, json.loads(record.read_text())["Completed"]
        time.sleep(0.3)
    assert 200_000 <= kept < entry["model_size"]

    assert pull(ollama)[-1] == {"status": "success"}
    *_, resumed = blob_gets(registry, entry["model_digest"])
    assert resumed["range"] == f"bytes={kept}-{entry['model_size'] - 1}"


# --- a full disk (issue 13): Ollama's error line, at once, on a real 1 MiB file system ------------


@pytest.fixture(name="tiny_models_disk")
def tiny_models_disk_fixture(tmp_path: Path):
    """A 1 MiB tmpfs for Ollama's model store (a 2 MiB model does not fit); skips where mount is not allowed."""
    mountpoint = tmp_path / "tiny-disk"
    mountpoint.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def test_a_full_disk_ends_the_pull_at_once_with_ollamas_error_line(registry, tmp_path, tiny_models_disk):
    """What Ollama sends when its disk fills mid-download (server/download.go: ENOSPC returns at once, no
    retry of the part; the pull's error line is the Go error's text). The contract is silent on it."""
    ollama = start_ollama(tmp_path, registry.url, OLLAMA_MODELS=str(tiny_models_disk / "models"),
                          OLLAMA_LAB_PULL_RETRIES="3", OLLAMA_LAB_RETRY_DELAY="5")
    try:
        entry = catalog_entry(registry, MODEL)
        digest, size = entry["model_digest"], entry["model_size"]
        assert size > 1024 * 1024
        # 2 MiB/s: the disk fills after about half a second, with progress lines before it (as on a real pull).
        inject_fault(registry, model=MODEL, mode="slow", rate_kibps=2048)
        started = time.monotonic()
        lines = pull(ollama)
        seconds = time.monotonic() - started
    finally:
        ollama.stop()

    partial = tiny_models_disk / "models" / "blobs" / f"sha256-{digest[7:]}-partial"
    assert lines[-1] == {"error": f"write {partial}: no space left on device"}, lines[-3:]
    assert seconds < 5, f"a full disk was retried ({seconds:.1f} s with a 5 s retry delay)"
    assert len(blob_gets(registry, digest)) == 1, "the part was fetched again"
    assert any(line.get("digest") == digest and line.get("total") == size for line in lines)
    assert not (tiny_models_disk / "models" / MANIFEST).exists()


def test_lpfleets_pull_stops_on_the_full_disk_naming_the_space_and_where(registry, tmp_path, tiny_models_disk):
    """lpfleet.ai.ollama_model against the stand-in on the full disk: one attempt, a permanent error."""
    from ansible.module_utils.testing import patch_module_args

    from ansible_collections.lpfleet.ai.plugins.modules import ollama_model

    models = tiny_models_disk / "models"
    ollama = start_ollama(tmp_path, registry.url, OLLAMA_MODELS=str(models))
    try:
        entry = catalog_entry(registry, MODEL)
        inject_fault(registry, model=MODEL, mode="slow", rate_kibps=2048)
        output = io.StringIO()
        with patch_module_args({"name": MODEL, "url": ollama.url, "retries": 3, "retry_delay": 5,
                                "progress_interval": 0}), contextlib.redirect_stdout(output), \
                pytest.raises(SystemExit):
            ollama_model.main()
        result = json.loads(output.getvalue())
    finally:
        ollama.stop()

    assert result["failed"] and result["disk_full"] is True and result["attempts"] == 1, result
    assert f"Ollama reported: write {models}/blobs/sha256-{entry['model_digest'][7:]}-partial: no space left" \
        in result["msg"]
    assert f"in {models} (Ollama's model store" in result["msg"]
    assert "bytes (" in result["msg"] and f"the layers Ollama announced total {entry['model_size']}" in result["msg"]
    assert "reaches its registry" not in result["msg"]
