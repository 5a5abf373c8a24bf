"""The model registry stand-in against Ollama's pull protocol (ollama.md) and its lab control API."""

from __future__ import annotations

import hashlib
import http.client
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from standins import (  # noqa: E402
    catalog_entry,
    http_call,
    http_json,
    inject_fault,
    registry_fixture,  # noqa: E402, F401 - the "registry" fixture
    registry_stats,
    start_registry,
)

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
DOCS_TAGS = ["llama3.1:8b", "mistral:7b", "gemma2:9b", "llama3.1:70b", "qwen2.5:7b", "phi3:mini", "llama3.2:3b"]
MIB = 1024 * 1024


def manifest_of(registry, repository: str, tag: str) -> tuple[dict, dict]:
    status, headers, body = http_call("GET", f"{registry.url}/v2/{repository}/manifests/{tag}")
    assert status == 200, body
    return json.loads(body), headers


def blob_url(registry, repository: str, digest: str) -> str:
    return f"{registry.url}/v2/{repository}/blobs/{digest}"


@pytest.mark.parametrize("tag", DOCS_TAGS)
def test_every_docs_tag_has_a_manifest_with_ollama_layers(registry, tag):
    model, _, version = tag.partition(":")
    manifest, headers = manifest_of(registry, f"library/{model}", version)

    assert headers["content-type"] == MANIFEST_TYPE
    assert headers["docker-content-digest"].startswith("sha256:")
    assert manifest["schemaVersion"] == 2 and manifest["mediaType"] == MANIFEST_TYPE
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        "application/vnd.ollama.image.model",
        "application/vnd.ollama.image.template",
        "application/vnd.ollama.image.license",
        "application/vnd.ollama.image.params",
    ]
    assert manifest["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
    assert manifest["layers"][0]["size"] == 2 * MIB  # --model-size 2MiB


def test_blobs_match_their_digests_and_the_config_describes_the_model(registry):
    manifest, _ = manifest_of(registry, "library/llama3.1", "8b")
    for layer in manifest["layers"] + [manifest["config"]]:
        status, headers, body = http_call("GET", blob_url(registry, "library/llama3.1", layer["digest"]))
        assert status == 200
        assert int(headers["content-length"]) == layer["size"] == len(body)
        assert "sha256:" + hashlib.sha256(body).hexdigest() == layer["digest"]
    _, _, config = http_call("GET", blob_url(registry, "library/llama3.1", manifest["config"]["digest"]))
    config = json.loads(config)
    assert (config["model_format"], config["model_family"], config["model_type"]) == ("gguf", "llama", "8.0B")


def test_latest_is_an_alias_and_content_is_deterministic(registry, tmp_path):
    latest, _ = manifest_of(registry, "library/llama3.1", "latest")
    eight_b, _ = manifest_of(registry, "library/llama3.1", "8b")
    assert latest == eight_b

    other = start_registry(tmp_path)
    try:
        again, _ = manifest_of(other, "library/llama3.1", "8b")
    finally:
        other.stop()
    assert again == eight_b


def test_head_range_and_unsatisfiable_range(registry):
    entry = catalog_entry(registry, "mistral:7b")
    url = blob_url(registry, "library/mistral", entry["model_digest"])
    _, _, whole = http_call("GET", url)

    status, headers, body = http_call("HEAD", url)
    assert (status, headers["content-length"], body) == (200, str(2 * MIB), b"")
    assert headers["accept-ranges"] == "bytes"

    status, headers, body = http_call("GET", url, headers={"Range": "bytes=1000-"})
    assert status == 206
    assert headers["content-range"] == f"bytes 1000-{2 * MIB - 1}/{2 * MIB}"
    assert body == whole[1000:]

    status, headers, body = http_call("GET", url, headers={"Range": "bytes=10-19"})
    assert (status, body) == (206, whole[10:20])

    status, headers, _ = http_call("GET", url, headers={"Range": f"bytes={2 * MIB}-"})
    assert (status, headers["content-range"]) == (416, f"bytes */{2 * MIB}")


def test_unknown_manifest_and_blob_answer_oci_errors(registry):
    status, body = http_json("GET", registry.url + "/v2/library/nosuchmodel/manifests/1b")
    assert status == 404 and body["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    status, body = http_json("GET", blob_url(registry, "library/llama3.1", "sha256:" + "0" * 64))
    assert status == 404 and body["errors"][0]["code"] == "BLOB_UNKNOWN"


@pytest.mark.parametrize(
    ("fault", "complaint"),
    [
        ({"model": "nosuch:1b", "mode": "cut"}, "unknown model"),
        ({"model": "llama3.1:8b", "mode": "explode"}, "mode must be one of"),
        ({"model": "llama3.1:8b", "mode": "cut", "times": 0}, "times must be"),
        ({"model": "llama3.1:8b", "mode": "cut", "after_bytes": -5}, "after_bytes must be"),
        ({"model": "llama3.1:8b", "mode": "error5xx", "status": 404}, "status must be"),
    ],
)
def test_bad_fault_requests_are_refused(registry, fault, complaint):
    status, body = http_json("POST", registry.url + "/_lab/faults", fault)
    assert status == 400 and complaint in body["error"]
    assert http_json("GET", registry.url + "/_lab/faults")[1] == {"faults": []}


def test_cut_fault_ends_the_body_early_then_is_used_up(registry):
    entry = catalog_entry(registry, "llama3.1:8b")
    inject_fault(registry, model="llama3.1:8b", mode="cut", after_bytes=100_000)
    assert len(http_json("GET", registry.url + "/_lab/faults")[1]["faults"]) == 1
    url = blob_url(registry, "library/llama3.1", entry["model_digest"])

    with pytest.raises(http.client.IncompleteRead) as cut:
        http_call("GET", url)
    assert len(cut.value.partial) == 100_000

    status, _, body = http_call("GET", url)
    assert status == 200 and len(body) == 2 * MIB
    assert http_json("GET", registry.url + "/_lab/faults")[1] == {"faults": []}


def test_error5xx_fault_counts_times_and_clears(registry):
    entry = catalog_entry(registry, "gemma2:9b")
    url = blob_url(registry, "library/gemma2", entry["model_digest"])
    inject_fault(registry, model="gemma2:9b", mode="error5xx", times=2, status=502)
    assert [http_call("GET", url)[0] for _ in range(3)] == [502, 502, 200]

    inject_fault(registry, model="gemma2:9b", mode="error5xx", times=-1)
    assert http_call("GET", url)[0] == 503
    assert http_json("DELETE", registry.url + "/_lab/faults") == (200, {"cleared": 1})
    assert http_call("GET", url)[0] == 200


def test_corrupt_fault_flips_one_byte(registry):
    entry = catalog_entry(registry, "phi3:mini")
    url = blob_url(registry, "library/phi3", entry["model_digest"])
    _, _, clean = http_call("GET", url)
    inject_fault(registry, model="phi3:mini", mode="corrupt", after_bytes=12345)
    _, _, corrupt = http_call("GET", url)
    assert len(corrupt) == len(clean)
    assert [i for i, (a, b) in enumerate(zip(clean, corrupt, strict=True)) if a != b] == [12345]


def test_stats_count_bytes_per_model_and_client_and_reset(registry):
    entry = catalog_entry(registry, "llama3.2:3b")
    http_call("GET", registry.url + "/v2/library/llama3.2/manifests/3b")
    http_call("GET", blob_url(registry, "library/llama3.2", entry["model_digest"]), headers={"Range": "bytes=1024-"})

    stats = registry_stats(registry)
    model = stats["models"]["llama3.2:3b"]
    assert model["bytes"] == stats["clients"]["127.0.0.1"]["bytes"] == stats["total_bytes"]
    assert model["bytes"] > 2 * MIB - 1024
    assert (model["manifest_requests"], model["blob_requests"], model["range_requests"]) == (1, 1, 1)
    last = stats["requests"][-1]
    assert (last["range"], last["status"], last["bytes"]) == ("bytes=1024-", 206, 2 * MIB - 1024)

    assert http_json("POST", registry.url + "/_lab/stats/reset")[0] == 200
    assert registry_stats(registry)["total_bytes"] == 0
