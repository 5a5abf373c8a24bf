"""lpfleet.ai.site_model against the real site cache server (roles/site_cache/files/lpfleet-site-cache.py),
run on 127.0.0.1 over a temporary Ollama store: a model is copied whole and checked, a cache that is gone
or gives a wrong blob means a fallback to upstream with nothing half-written, and the server gives only
manifests and complete blobs."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from http_servers import run_module

from ansible_collections.lpfleet.ai.plugins.modules import site_model

PROGRAM = Path(__file__).resolve().parents[2] / "roles" / "site_cache" / "files" / "lpfleet-site-cache.py"
MANIFEST = "registry.ollama.ai/library/llama3.1/8b"


def load_program() -> Any:
    spec = importlib.util.spec_from_file_location("lpfleet_site_cache", PROGRAM)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put_model(store: Path, relative: str = MANIFEST, layers: tuple[bytes, ...] = (b"model " * 5000, b"template"),
              config: bytes = b'{"model_family": "llama"}') -> dict[str, Any]:
    """Writes a model into an Ollama store as Ollama lays it out; returns its manifest."""
    (store / "blobs").mkdir(parents=True, exist_ok=True)
    for data in (*layers, config):
        (store / "blobs" / ("sha256-" + hashlib.sha256(data).hexdigest())).write_bytes(data)
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                           "digest": digest(config), "size": len(config)},
                "layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": digest(data),
                            "size": len(data)} for data in layers]}
    path = store / "manifests" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest))
    return manifest


@pytest.fixture(name="cache")
def cache_fixture(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The site cache server over the store tmp_path/cache; yields its URL and the store."""
    store = tmp_path / "cache"
    store.mkdir()
    server = load_program().make_server(str(store), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", store
    server.shutdown()
    server.server_close()


def copy(url: str, local: Path, name: str = "llama3.1:8b", **extra: Any) -> dict[str, Any]:
    return run_module(site_model.main, {"name": name, "models_dir": str(local), "cache_url": url, **extra})


def store_files(store: Path) -> dict[str, bytes]:
    return {str(path.relative_to(store)): path.read_bytes() for path in sorted(store.rglob("*")) if path.is_file()}


def test_a_model_is_copied_whole_and_ollama_would_find_it(cache, tmp_path):
    url, cached = cache
    manifest = put_model(cached)
    local = tmp_path / "local"
    result = copy(url, local)
    assert result["changed"] and result["source"] == "site-cache" and not result["fallback"]
    assert result["manifest"] == MANIFEST
    sizes = [entry["size"] for entry in (*manifest["layers"], manifest["config"])]
    assert result["bytes_copied"] == sum(sizes)
    assert store_files(local) == store_files(cached)


def test_a_model_already_in_the_store_is_left_alone(cache, tmp_path):
    url, cached = cache
    put_model(cached)
    local = tmp_path / "local"
    put_model(local)
    before = {path: stat.st_mtime_ns for path, stat in ((p, p.stat()) for p in local.rglob("*"))}
    result = copy(url, local)
    assert not result["changed"] and result["source"] == "local" and result["bytes_copied"] == 0
    assert before == {path: stat.st_mtime_ns for path, stat in ((p, p.stat()) for p in local.rglob("*"))}


def test_only_the_blobs_this_host_lacks_are_copied(cache, tmp_path):
    url, cached = cache
    shared, weights = b"template shared by both", b"weights " * 1000
    put_model(cached, layers=(weights, shared))
    local = tmp_path / "local"
    put_model(local, relative="registry.ollama.ai/library/other/latest", layers=(b"other weights", shared))
    result = copy(url, local)
    # The template and the config (both models have the same) are there already.
    assert sorted(result["blobs_present"]) == sorted([digest(shared), digest(b'{"model_family": "llama"}')])
    assert result["blobs_copied"] == [digest(weights)] and result["bytes_copied"] == len(weights)


def test_check_mode_says_what_it_would_copy_and_writes_nothing(cache, tmp_path):
    url, cached = cache
    put_model(cached)
    local = tmp_path / "local"
    local.mkdir()
    result = copy(url, local, _ansible_check_mode=True)
    assert result["changed"] and len(result["blobs_copied"]) == 3
    assert store_files(local) == {}


def test_a_cache_that_is_gone_means_upstream_and_nothing_written(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    local = tmp_path / "local"
    local.mkdir()
    result = copy(f"http://127.0.0.1:{port}", local, timeout=5)
    assert not result.get("failed") and not result["changed"]
    assert result["fallback"] and result["source"] == "upstream" and "no answer" in result["reason"]
    assert store_files(local) == {}


def test_a_model_the_cache_lacks_means_upstream(cache, tmp_path):
    url, _ = cache
    result = copy(url, tmp_path / "local")
    assert result["fallback"] and "HTTP 404" in result["reason"] and MANIFEST in result["reason"]


def test_a_blob_whose_digest_differs_is_refused_and_not_kept(cache, tmp_path):
    url, cached = cache
    manifest = put_model(cached)
    model = manifest["layers"][0]["digest"].replace(":", "-")
    blob = cached / "blobs" / model
    data = bytearray(blob.read_bytes())
    data[100] ^= 0xFF
    blob.write_bytes(bytes(data))
    local = tmp_path / "local"
    result = copy(url, local)
    assert result["fallback"] and "digest" in result["reason"]
    assert not (local / "manifests").exists()
    assert model not in [path.name for path in (local / "blobs").iterdir()]
    assert not [path for path in (local / "blobs").iterdir() if path.name.endswith("-lpfleet-partial")]


def test_a_manifest_that_is_not_one_means_upstream(cache, tmp_path):
    url, cached = cache
    path = cached / "manifests" / MANIFEST
    path.parent.mkdir(parents=True)
    path.write_text('{"layers": [{"digest": "md5:abc", "size": 3}]}')
    result = copy(url, tmp_path / "local")
    assert result["fallback"] and "not an Ollama manifest" in result["reason"]


@pytest.mark.parametrize("name, option", [("Bad Name!", "name="), ("llama3.1:8b", "cache_url=")])
def test_bad_options_fail_naming_the_option(tmp_path, name, option):
    result = copy("ftp://cache" if option == "cache_url=" else "http://127.0.0.1:1", tmp_path, name=name)
    assert result["failed"] and option in result["msg"]


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - a local test server
            return response.status, response.read()
    except urllib.error.HTTPError as answer:
        return answer.code, b""


def test_the_server_gives_manifests_and_complete_blobs_only(cache):
    url, cached = cache
    manifest = put_model(cached)
    hexdigest = manifest["config"]["digest"][7:]
    (cached / "blobs" / ("sha256-" + "0" * 64 + "-partial")).write_bytes(b"half")
    (cached / "secret").write_text("no")
    assert fetch(url + "/manifests/" + MANIFEST)[0] == 200
    assert fetch(url + "/blobs/sha256-" + hexdigest) == (200, b'{"model_family": "llama"}')
    for path in ("/blobs/sha256-" + "0" * 64 + "-partial", "/blobs/", "/manifests/", "/secret",
                 "/manifests/registry.ollama.ai/library/../../../secret", "/manifests/../secret",
                 "/blobs/sha256-" + "1" * 64):
        assert fetch(url + path)[0] == 404, path
