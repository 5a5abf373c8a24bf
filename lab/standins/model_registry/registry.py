#!/usr/bin/env python3
"""Ollama model registry: lpfleet-lab stand-in for registry.ollama.ai.

Speaks the subset of the OCI distribution protocol that `ollama pull` uses:

    GET|HEAD /v2/                                   -> 200 {}
    GET|HEAD /v2/<namespace>/<model>/manifests/<tag> -> manifest v2 JSON
    GET|HEAD /v2/<namespace>/<model>/blobs/sha256:<hex>
                                                    -> blob bytes; honours `Range: bytes=a-[b]` (206)

It serves small synthetic models generated deterministically at start-up under the
real tags of the Livepeer docs' catalog (llama3.1:8b, mistral:7b, gemma2:9b,
llama3.1:70b, qwen2.5:7b, phi3:mini, llama3.2:3b and their `latest` aliases). Each
model has the layers Ollama expects (model, template, license, params) and a config
blob whose fields (`model_family`, `model_type`, `file_type`) Ollama shows as details.

Lab control API (not part of any real registry):

    POST   /_lab/faults        {"model": "llama3.1:8b", "mode": "cut"|"stall"|"error5xx"|"corrupt"|"slow",
                                "times": 1 (-1 = forever), "after_bytes": 0,
                                "status": 503 (error5xx), "stall_seconds": 3600 (stall),
                                "rate_kibps": 256 (slow)}
    GET    /_lab/faults        list of active faults
    DELETE /_lab/faults        clear them (and release stalled connections)
    GET    /_lab/stats         bytes served per model and per client IP, request counts, recent requests
    POST   /_lab/stats/reset   zero the statistics
    GET    /_lab/models        the catalog: names, digests, sizes

Faults apply to GET requests of the faulted model's model layer (the big blob): `cut`
closes the connection after `after_bytes` bytes of the response, `stall` sends
`after_bytes` bytes then hangs (until `stall_seconds` pass or the faults are cleared),
`error5xx` answers `status`, `corrupt` flips the byte at blob offset `after_bytes`,
`slow` throttles the response to `rate_kibps`.

Only the Python standard library is used. This is a stand-in for the lpfleet lab; it
is not a registry to use anywhere else.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import random
import re
import socket
import struct
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

VERSION = "1.0.0"
STAND_IN = "lpfleet-lab stand-in"
SERVER_NAME = f"{STAND_IN} ollama-registry/{VERSION}"

MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_MODEL = "application/vnd.ollama.image.model"
LAYER_TEMPLATE = "application/vnd.ollama.image.template"
LAYER_LICENSE = "application/vnd.ollama.image.license"
LAYER_PARAMS = "application/vnd.ollama.image.params"

MIB = 1024 * 1024
CHUNK = 64 * 1024
RECENT_REQUESTS = 500
FAULT_MODES = ("cut", "stall", "error5xx", "corrupt", "slow")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What a catalog entry looks like before its blobs are generated."""

    name: str  # namespace/model:tag
    family: str
    parameter_size: str
    quantization: str
    default_size: int
    aliases: tuple[str, ...] = ()
    fixed_size: bool = False


CATALOG = (
    ModelSpec("library/llama3.1:8b", "llama", "8.0B", "Q4_K_M", 8 * MIB, ("library/llama3.1:latest",)),
    ModelSpec("library/llama3.1:70b", "llama", "70.6B", "Q4_K_M", 16 * MIB),
    ModelSpec("library/mistral:7b", "llama", "7.2B", "Q4_0", 7 * MIB, ("library/mistral:latest",)),
    ModelSpec("library/gemma2:9b", "gemma2", "9.2B", "Q4_0", 9 * MIB, ("library/gemma2:latest",)),
    ModelSpec("library/qwen2.5:7b", "qwen2", "7.6B", "Q4_K_M", 7 * MIB, ("library/qwen2.5:latest",)),
    ModelSpec("library/phi3:mini", "phi3", "3.8B", "Q4_0", 4 * MIB, ("library/phi3:latest",)),
    ModelSpec("library/llama3.2:3b", "llama", "3.2B", "Q4_K_M", 3 * MIB, ("library/llama3.2:latest",)),
)

TEMPLATES = {
    "llama": "<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>",
    "gemma2": "<start_of_turn>user\n{{ .Prompt }}<end_of_turn>\n<start_of_turn>model\n{{ .Response }}<end_of_turn>\n",
    "qwen2": "<|im_start|>user\n{{ .Prompt }}<|im_end|>\n<|im_start|>assistant\n{{ .Response }}<|im_end|>\n",
    "phi3": "<|user|>\n{{ .Prompt }}<|end|>\n<|assistant|>\n{{ .Response }}<|end|>\n",
}
STOP_WORDS = {
    "llama": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    "gemma2": ["<start_of_turn>", "<end_of_turn>"],
    "qwen2": ["<|im_start|>", "<|im_end|>"],
    "phi3": ["<|end|>", "<|user|>", "<|assistant|>"],
}


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def short_name(full: str) -> str:
    """`library/llama3.1:8b` -> `llama3.1:8b` (how operators and Ollama name it)."""
    return full.removeprefix("library/")


def canonical_name(name: str) -> str:
    """Accept `llama3.1:8b`, `library/llama3.1:8b` or `registry.ollama.ai/library/llama3.1:8b`."""
    name = name.strip()
    parts = name.split("/")
    if len(parts) == 3:
        parts = parts[1:]
    if len(parts) == 1:
        parts = ["library", parts[0]]
    repo = "/".join(parts)
    if ":" not in parts[-1]:
        repo += ":latest"
    return repo


def parse_size(text: str) -> int:
    """`2MiB`, `512KiB`, `1048576` -> bytes."""
    match = re.fullmatch(r"\s*(\d+)\s*(B|KiB|MiB|GiB)?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"invalid size {text!r}: use a number of bytes or <n>KiB/MiB/GiB")
    scale = {"b": 1, "kib": 1024, "mib": MIB, "gib": 1024 * MIB}[(match.group(2) or "b").lower()]
    size = int(match.group(1)) * scale
    if size < 64:
        raise ValueError(f"invalid size {text!r}: a model layer needs at least 64 bytes")
    return size


@dataclasses.dataclass
class Model:
    """A generated model: its manifest and the digests of its blobs."""

    name: str
    manifest: bytes
    model_digest: str
    layer_digests: list[str]
    size: int

    @property
    def manifest_digest(self) -> str:
        return sha256_digest(self.manifest)


def gguf_bytes(seed: str, size: int) -> bytes:
    """Deterministic pseudo-GGUF content: the GGUF magic and version, then seeded noise."""
    header = b"GGUF" + struct.pack("<IQQ", 3, 0, 0)
    noise = random.Random(seed).randbytes(max(0, size - len(header)))
    return (header + noise)[:size]


class Catalog:
    """All models and blobs, generated once at start-up and read-only afterwards."""

    def __init__(self, specs: list[ModelSpec], size_override: int | None) -> None:
        self.blobs: dict[str, bytes] = {}
        self.models: dict[str, Model] = {}
        self.aliases: dict[str, str] = {}
        for spec in specs:
            size = spec.default_size if size_override is None or spec.fixed_size else size_override
            self.models[spec.name] = self._generate(spec, size)
            for alias in spec.aliases:
                self.aliases[alias] = spec.name

    def _add_blob(self, data: bytes) -> str:
        digest = sha256_digest(data)
        self.blobs[digest] = data
        return digest

    def _generate(self, spec: ModelSpec, size: int) -> Model:
        model_layer = gguf_bytes(f"lpfleet-lab:{spec.name}", size)
        template = TEMPLATES.get(spec.family, "{{ .Prompt }}").encode()
        license_text = (
            f"Synthetic weights for {short_name(spec.name)} served by the {STAND_IN} model registry.\n"
            "They are random bytes, not a model, and carry no licence of the real model.\n"
        ).encode()
        params = json.dumps({"stop": STOP_WORDS.get(spec.family, [])}).encode()
        layers = [
            (LAYER_MODEL, model_layer),
            (LAYER_TEMPLATE, template),
            (LAYER_LICENSE, license_text),
            (LAYER_PARAMS, params),
        ]
        layer_entries = [
            {"mediaType": media, "digest": self._add_blob(data), "size": len(data)} for media, data in layers
        ]
        config = json.dumps(
            {
                "model_format": "gguf",
                "model_family": spec.family,
                "model_families": [spec.family],
                "model_type": spec.parameter_size,
                "file_type": spec.quantization,
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [entry["digest"] for entry in layer_entries]},
                "lpfleet_lab": STAND_IN,
            }
        ).encode()
        config_entry = {"mediaType": CONFIG_MEDIA_TYPE, "digest": self._add_blob(config), "size": len(config)}
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST_MEDIA_TYPE,
                "config": config_entry,
                "layers": layer_entries,
            }
        ).encode()
        total = sum(entry["size"] for entry in layer_entries) + config_entry["size"]
        return Model(
            name=spec.name,
            manifest=manifest,
            model_digest=layer_entries[0]["digest"],
            layer_digests=[entry["digest"] for entry in layer_entries] + [config_entry["digest"]],
            size=total,
        )

    def resolve(self, name: str) -> Model | None:
        full = canonical_name(name)
        return self.models.get(self.aliases.get(full, full))

    def owner_of_blob(self, repository: str, digest: str) -> Model | None:
        """The catalog model in `repository` whose layers include `digest` (aliases excluded)."""
        for model in self.models.values():
            if model.name.split(":")[0] == repository and digest in model.layer_digests:
                return model
        return None

    def describe(self) -> list[dict[str, Any]]:
        aliases_of: dict[str, list[str]] = {}
        for alias, target in self.aliases.items():
            aliases_of.setdefault(target, []).append(short_name(alias))
        return [
            {
                "name": short_name(model.name),
                "aliases": sorted(aliases_of.get(model.name, [])),
                "manifest_digest": model.manifest_digest,
                "model_digest": model.model_digest,
                "model_size": len(self.blobs[model.model_digest]),
                "size": model.size,
                "blobs": model.layer_digests,
            }
            for model in self.models.values()
        ]


@dataclasses.dataclass
class Fault:
    """One injected fault and how many more requests it applies to."""

    id: int
    model: str
    digest: str
    mode: str
    times: int
    after_bytes: int
    status: int
    stall_seconds: float
    rate_kibps: int
    triggered: int = 0

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": short_name(self.model),
            "digest": self.digest,
            "mode": self.mode,
            "times": self.times,
            "after_bytes": self.after_bytes,
            "status": self.status,
            "stall_seconds": self.stall_seconds,
            "rate_kibps": self.rate_kibps,
            "triggered": self.triggered,
        }


class FaultError(ValueError):
    """A fault request the registry cannot accept."""


class Faults:
    """The fault table: thread-safe, consumed by blob requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 1
        self.release = threading.Event()

    def add(self, catalog: Catalog, body: dict[str, Any]) -> Fault:
        model = catalog.resolve(str(body.get("model", "")))
        if model is None:
            known = ", ".join(sorted(short_name(name) for name in catalog.models))
            raise FaultError(f"unknown model {body.get('model')!r}; known models: {known}")
        mode = body.get("mode")
        if mode not in FAULT_MODES:
            raise FaultError(f"mode must be one of {', '.join(FAULT_MODES)}, got {mode!r}")
        numbers = {
            "times": _int_field(body, "times", 1, minimum=-1),
            "after_bytes": _int_field(body, "after_bytes", 0, minimum=0),
            "status": _int_field(body, "status", 503, minimum=500),
            "rate_kibps": _int_field(body, "rate_kibps", 256, minimum=1),
        }
        if numbers["times"] == 0:
            raise FaultError("times must be -1 (forever) or a positive count, got 0")
        if numbers["status"] > 599:
            raise FaultError(f"status must be a 5xx code, got {numbers['status']}")
        stall_seconds = body.get("stall_seconds", 3600)
        if not isinstance(stall_seconds, (int, float)) or isinstance(stall_seconds, bool) or stall_seconds < 0:
            raise FaultError(f"stall_seconds must be a non-negative number, got {stall_seconds!r}")
        with self._lock:
            fault = Fault(
                id=self._next_id,
                model=model.name,
                digest=model.model_digest,
                mode=mode,
                stall_seconds=float(stall_seconds),
                **numbers,
            )
            self._next_id += 1
            self._faults.append(fault)
            self.release.clear()
        return fault

    def take(self, digest: str) -> Fault | None:
        """The first fault for this blob, consuming one of its `times`."""
        with self._lock:
            for fault in self._faults:
                if fault.digest != digest:
                    continue
                fault.triggered += 1
                if fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                return dataclasses.replace(fault)
        return None

    def clear(self) -> int:
        with self._lock:
            count = len(self._faults)
            self._faults.clear()
        self.release.set()
        return count

    def listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.public() for fault in self._faults]


def _int_field(body: dict[str, Any], key: str, default: int, minimum: int) -> int:
    value = body.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise FaultError(f"{key} must be an integer >= {minimum}, got {value!r}")
    return value


class Stats:
    """Bytes and requests per model and per client, plus a ring of recent requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._models: dict[str, dict[str, int]] = {}
            self._clients: dict[str, dict[str, int]] = {}
            self._recent: list[dict[str, Any]] = []
            self._total_bytes = 0
            self._total_requests = 0
            self._since = time.time()

    def open(self, entry: dict[str, Any]) -> None:
        """Count a request as it starts; its bytes are added while they are sent."""
        with self._lock:
            self._total_requests += 1
            self._clients.setdefault(entry["client"], {"bytes": 0, "requests": 0})["requests"] += 1
            if entry.get("model"):
                model = self._model(entry["model"])
                model["requests"] += 1
                model[f"{entry['kind']}_requests"] += 1
                if entry.get("range"):
                    model["range_requests"] += 1
            self._recent.append(entry)
            del self._recent[:-RECENT_REQUESTS]

    def add_bytes(self, entry: dict[str, Any], count: int) -> None:
        with self._lock:
            entry["bytes"] += count
            self._total_bytes += count
            self._clients.setdefault(entry["client"], {"bytes": 0, "requests": 0})["bytes"] += count
            if entry.get("model"):
                self._model(entry["model"])["bytes"] += count

    def close(self, entry: dict[str, Any]) -> None:
        with self._lock:
            entry["done"] = True
            entry["duration"] = round(time.time() - entry["time"], 3)

    def _model(self, name: str) -> dict[str, int]:
        return self._models.setdefault(
            name, {"bytes": 0, "requests": 0, "manifest_requests": 0, "blob_requests": 0, "range_requests": 0}
        )

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "since": self._since,
                "total_bytes": self._total_bytes,
                "total_requests": self._total_requests,
                "models": json.loads(json.dumps(self._models)),
                "clients": json.loads(json.dumps(self._clients)),
                "requests": [dict(entry) for entry in self._recent],
            }


class ByteRange:
    """A satisfiable `Range: bytes=` request against a blob of `size` bytes."""

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.end = end  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | None | str:
    """None when absent (whole blob), a ByteRange, or "unsatisfiable"."""
    if not header:
        return None
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if not match or (match.group(1) == "" and match.group(2) == ""):
        return None  # RFC 9110: ignore a Range header we do not understand
    first, last = match.groups()
    if first == "":
        suffix = int(last)
        if suffix == 0:
            return "unsatisfiable"
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return "unsatisfiable"
    return ByteRange(start, end)


class RegistryServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], catalog: Catalog, rate_kibps: int) -> None:
        super().__init__(address, RegistryHandler)
        self.catalog = catalog
        self.faults = Faults()
        self.stats = Stats()
        self.rate_kibps = rate_kibps


MANIFEST_PATH = re.compile(r"^/v2/(?P<repo>[^?]+)/manifests/(?P<ref>[^/?]+)$")
BLOB_PATH = re.compile(r"^/v2/(?P<repo>[^?]+)/blobs/(?P<digest>sha256:[0-9a-f]{64})$")


class RegistryHandler(BaseHTTPRequestHandler):
    server: RegistryServer
    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:
        return SERVER_NAME

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"[registry] {self.address_string()} {format % args}\n")

    # -- plumbing ------------------------------------------------------------------------------

    def _path(self) -> str:
        return self.path.split("?", 1)[0]

    def _entry(self, kind: str, model: str | None = None, digest: str | None = None) -> dict[str, Any]:
        return {
            "time": time.time(),
            "client": self.client_address[0],
            "method": self.command,
            "path": self._path(),
            "kind": kind,
            "model": model,
            "digest": digest,
            "range": self.headers.get("Range"),
            "status": 0,
            "bytes": 0,
            "fault": None,
            "done": False,
        }

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> int:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
            return len(data)
        return 0

    def _oci_error(self, status: int, code: str, message: str, detail: Any = None) -> int:
        return self._send_json(status, {"errors": [{"code": code, "message": message, "detail": detail}]})

    def _read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return {}
        return json.loads(raw)

    # -- verbs ---------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        path = self._path()
        if path == "/_lab/faults":
            self._post_fault()
        elif path == "/_lab/stats/reset":
            self.server.stats.reset()
            self._send_json(200, {"reset": True})
        else:
            self._oci_error(404, "NOT_FOUND", "not found")

    def do_DELETE(self) -> None:
        if self._path() == "/_lab/faults":
            self._send_json(200, {"cleared": self.server.faults.clear()})
        else:
            self._oci_error(404, "NOT_FOUND", "not found")

    def _dispatch(self) -> None:
        path = self._path()
        if path in ("/v2", "/v2/"):
            self._send_json(200, {})
        elif path == "/_lab/faults":
            self._send_json(200, {"faults": self.server.faults.listing()})
        elif path == "/_lab/stats":
            self._send_json(200, self.server.stats.snapshot())
        elif path == "/_lab/models":
            self._send_json(200, {"stand_in": STAND_IN, "models": self.server.catalog.describe()})
        elif path == "/_lab/health":
            self._send_json(200, {"status": "ok", "stand_in": STAND_IN, "version": VERSION})
        elif match := MANIFEST_PATH.match(path):
            self._manifest(match.group("repo"), match.group("ref"))
        elif match := BLOB_PATH.match(path):
            self._blob(match.group("repo"), match.group("digest"))
        else:
            self._oci_error(404, "NOT_FOUND", "not found")

    def _post_fault(self) -> None:
        try:
            body = self._read_json()
            if not isinstance(body, dict):
                raise FaultError("the body must be a JSON object")
            fault = self.server.faults.add(self.server.catalog, body)
        except json.JSONDecodeError as exc:
            self._send_json(400, {"error": f"invalid JSON body: {exc}"})
            return
        except FaultError as exc:
            self._send_json(400, {"error": str(exc)})
            return
        self.log_message("fault added: %s", json.dumps(fault.public()))
        self._send_json(201, fault.public())

    def _manifest(self, repo: str, ref: str) -> None:
        catalog = self.server.catalog
        model = catalog.resolve(f"{repo}:{ref}") if not ref.startswith("sha256:") else None
        if model is None and ref.startswith("sha256:"):
            model = next((m for m in catalog.models.values() if m.manifest_digest == ref), None)
        entry = self._entry("manifest", model=short_name(model.name) if model else None)
        self.server.stats.open(entry)
        try:
            self._send_manifest(model, repo, ref, entry)
        finally:
            self.server.stats.close(entry)

    def _send_manifest(self, model: Model | None, repo: str, ref: str, entry: dict[str, Any]) -> None:
        if model is None:
            entry["status"] = 404
            sent = self._oci_error(404, "MANIFEST_UNKNOWN", "manifest unknown", {"name": repo, "tag": ref})
            self.server.stats.add_bytes(entry, sent)
            return
        entry["status"] = 200
        self.send_response(200)
        self.send_header("Content-Type", MANIFEST_MEDIA_TYPE)
        self.send_header("Content-Length", str(len(model.manifest)))
        self.send_header("Docker-Content-Digest", model.manifest_digest)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.end_headers()
        if self.command != "HEAD":
            self.server.stats.add_bytes(entry, len(model.manifest))
            self.wfile.write(model.manifest)

    def _blob(self, repo: str, digest: str) -> None:
        catalog = self.server.catalog
        owner = catalog.owner_of_blob(repo, digest)
        entry = self._entry("blob", model=short_name(owner.name) if owner else None, digest=digest)
        self.server.stats.open(entry)
        try:
            if owner is None or digest not in catalog.blobs:
                entry["status"] = 404
                sent = self._oci_error(404, "BLOB_UNKNOWN", "blob unknown to registry", digest)
                self.server.stats.add_bytes(entry, sent)
                return
            self._serve_blob(catalog.blobs[digest], digest, entry)
        finally:
            self.server.stats.close(entry)

    def _serve_blob(self, data: bytes, digest: str, entry: dict[str, Any]) -> None:
        wanted = parse_range(self.headers.get("Range"), len(data))
        if wanted == "unsatisfiable":
            entry["status"] = 416
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        fault = self.server.faults.take(digest) if self.command == "GET" else None
        if fault is not None:
            entry["fault"] = fault.mode
            self.log_message("fault %s (id %d) on %s", fault.mode, fault.id, digest[:19])
        if fault is not None and fault.mode == "error5xx":
            entry["status"] = fault.status
            self.server.stats.add_bytes(entry, self._plain_error(fault.status))
            return
        start, end = (wanted.start, wanted.end) if isinstance(wanted, ByteRange) else (0, len(data) - 1)
        status = 206 if isinstance(wanted, ByteRange) else 200
        entry["status"] = status
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Docker-Content-Digest", digest)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.end_headers()
        if self.command == "HEAD":
            return
        body = memoryview(data)[start : end + 1]
        if fault is not None and fault.mode == "corrupt" and start <= fault.after_bytes <= end:
            tampered = bytearray(body)
            tampered[fault.after_bytes - start] ^= 0xFF
            body = memoryview(bytes(tampered))
        self._stream(body, fault, entry)

    def _plain_error(self, status: int) -> int:
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Server Error"
        data = f"{phrase.lower()} (lpfleet-lab fault injection)".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        return len(data)

    def _stream(self, body: memoryview, fault: Fault | None, entry: dict[str, Any]) -> None:
        limit = len(body)
        if fault is not None and fault.mode in ("cut", "stall"):
            limit = min(limit, fault.after_bytes)
        rate = fault.rate_kibps if fault is not None and fault.mode == "slow" else self.server.rate_kibps
        sent = 0
        started = time.monotonic()
        try:
            while sent < limit:
                if rate:
                    time.sleep(max(0.0, started + sent / (rate * 1024) - time.monotonic()))
                piece = body[sent : min(limit, sent + CHUNK)]
                self.server.stats.add_bytes(entry, len(piece))  # counted before the client can see them
                self.wfile.write(piece)
                sent += len(piece)
            self.wfile.flush()
            if fault is not None and fault.mode == "stall" and sent < len(body):
                self.server.faults.release.wait(fault.stall_seconds)
            if sent < len(body):
                self._drop_connection()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _drop_connection(self) -> None:
        """End the response short of its Content-Length: the client sees an unexpected EOF."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="registry.py",
        description=f"Ollama model registry ({STAND_IN}): synthetic models over the OCI pull protocol, "
        "with fault injection (/_lab/faults) and statistics (/_lab/stats).",
    )
    parser.add_argument("--host", default=os.environ.get("LAB_REGISTRY_HOST", "0.0.0.0"), help="address to bind")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("LAB_REGISTRY_PORT", "80")), help="port (default 80)"
    )
    parser.add_argument(
        "--model-size",
        default=os.environ.get("LAB_REGISTRY_MODEL_SIZE"),
        help="size of every model layer (bytes or <n>KiB/MiB); default: 1 MiB per billion parameters, 3-16 MiB",
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[m for m in os.environ.get("LAB_REGISTRY_EXTRA_MODELS", "").split(",") if m.strip()],
        metavar="NAME[=SIZE]",
        help="serve an extra model, e.g. library/tinyllama:1b=2MiB (repeatable; env LAB_REGISTRY_EXTRA_MODELS)",
    )
    parser.add_argument(
        "--rate-kibps",
        type=int,
        default=int(os.environ.get("LAB_REGISTRY_RATE_KIBPS", "0")),
        help="throttle every blob response to this many KiB/s (0 = unlimited)",
    )
    parser.add_argument("--version", action="version", version=f"ollama-registry {VERSION} ({STAND_IN})")
    return parser


def extra_specs(entries: list[str]) -> list[ModelSpec]:
    specs = []
    for entry in entries:
        name, _, size = entry.strip().partition("=")
        layer_size = parse_size(size) if size else 2 * MIB
        specs.append(ModelSpec(canonical_name(name), "llama", "1.0B", "Q4_0", layer_size, (), bool(size)))
    return specs


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        size = parse_size(args.model_size) if args.model_size else None
        specs = list(CATALOG) + extra_specs(args.model)
    except ValueError as exc:
        print(f"registry.py: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    catalog = Catalog(specs, size)
    server = RegistryServer((args.host, args.port), catalog, args.rate_kibps)
    print(
        f"{SERVER_NAME}: {len(catalog.models)} models generated in {time.monotonic() - started:.2f}s, "
        f"listening on {args.host}:{server.server_address[1]}",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.faults.clear()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
