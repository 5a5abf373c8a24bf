#!/usr/bin/env python3
"""Ollama: lpfleet-lab stand-in for the `ollama` binary (server and CLI).

Installed as /bin/ollama in the lab's Ollama image. It implements the part of
Ollama's HTTP API that lpfleet and an LLM runner use, over a real on-disk model
store, so that roles and modules see what they would see against the real server:

    GET  /                      "Ollama is running"
    GET  /api/version           {"version"}
    GET  /api/tags              models in $OLLAMA_MODELS
    POST /api/show              details of one model (404 when absent)
    POST /api/pull              NDJSON progress stream (errors inside the stream), or one object with stream:false
    DELETE /api/delete          remove a model and the blobs nothing else uses
    POST /api/copy              copy a model under another name
    GET  /api/ps                loaded models with expires_at
    POST /api/generate          without a prompt: load (keep_alive) or unload (keep_alive 0); with one: text
    POST /api/chat              deterministic answer from the stand-in model (streaming NDJSON or one object)

The model store is Ollama's: `manifests/<host>/<namespace>/<model>/<tag>` and
`blobs/sha256-<hex>`; interrupted downloads stay as `blobs/sha256-<hex>-partial`
(+ `-partial-0`, the progress record) and resume with an HTTP Range request; every
blob is checked against its sha256 digest before the manifest is written; concurrent
pulls of one blob share one download and its progress. A full disk ends the pull at once,
not retried, with the Go error's text as Ollama's error line, `write <models>/blobs/
sha256-<hex>-partial: no space left on device` (Ollama's server/download.go returns at once
on ENOSPC; it checks no free space before a pull; the contract is silent on this).

Pulls of names without a registry host go to $OLLAMA_LAB_REGISTRY (for example
http://ollama-registry:80) instead of https://registry.ollama.ai, and the model is
stored under its canonical name (`registry.ollama.ai/library/llama3.1/8b`).

Environment: OLLAMA_HOST (default 127.0.0.1:11434), OLLAMA_MODELS (default
~/.ollama/models), OLLAMA_KEEP_ALIVE (default 5m), OLLAMA_NOPRUNE, and the lab's own
OLLAMA_LAB_REGISTRY, OLLAMA_LAB_PULL_RETRIES (default 0: the first failed transfer
ends the pull with an error line; the real Ollama retries a part up to 6 times),
OLLAMA_LAB_RETRY_DELAY (seconds, default 1, doubled per retry), OLLAMA_LAB_STALL_TIMEOUT
(seconds without a byte before a transfer counts as stalled, default 30),
OLLAMA_LAB_LOAD_SECONDS (time to "load" a model, default 0), OLLAMA_LAB_TOKEN_DELAY
(seconds between streamed tokens, default 0.005).

CLI: serve, list|ls, ps, pull [--insecure], rm, cp, show, stop, run, --version. The
CLI talks to the server at $OLLAMA_HOST over HTTP, like the real one.

Only the Python standard library is used. This is a stand-in for the lpfleet lab,
not Ollama: it has no inference engine and its "models" are random bytes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import errno
import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

VERSION = "0.6.8-lpfleet-lab-stand-in"
STAND_IN = "lpfleet-lab stand-in"
DEFAULT_REGISTRY = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
DEFAULT_PORT = 11434
MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CHUNK = 64 * 1024
FOREVER = dt.timedelta(days=365 * 292)
USER_AGENT = f"ollama/{VERSION} (amd64 linux) Go/go1.24.0 ({STAND_IN})"

Emit = Callable[[dict[str, Any]], None]


# ---------------------------------------------------------------------------------------------
# Settings and small Go-compatible helpers
# ---------------------------------------------------------------------------------------------


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"Error: {name}={raw!r} is not a number") from None


@dataclasses.dataclass
class Settings:
    models_dir: Path
    lab_registry: str
    keep_alive: float | None  # seconds; None = forever
    noprune: bool
    pull_retries: int
    retry_delay: float
    stall_timeout: float
    load_seconds: float
    token_delay: float

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("HOME") or "/root")
        models = os.environ.get("OLLAMA_MODELS") or str(home / ".ollama" / "models")
        keep_alive_raw = os.environ.get("OLLAMA_KEEP_ALIVE", "").strip() or "5m"
        try:
            keep_alive = parse_keep_alive(keep_alive_raw if not _is_number(keep_alive_raw) else float(keep_alive_raw))
        except ValueError as exc:
            raise SystemExit(f"Error: OLLAMA_KEEP_ALIVE: {exc}") from None
        return cls(
            models_dir=Path(models),
            lab_registry=os.environ.get("OLLAMA_LAB_REGISTRY", "").strip().rstrip("/"),
            keep_alive=keep_alive,
            noprune=bool(os.environ.get("OLLAMA_NOPRUNE", "").strip()),
            pull_retries=max(0, int(env_float("OLLAMA_LAB_PULL_RETRIES", 0))),
            retry_delay=env_float("OLLAMA_LAB_RETRY_DELAY", 1.0),
            stall_timeout=env_float("OLLAMA_LAB_STALL_TIMEOUT", 30.0),
            load_seconds=env_float("OLLAMA_LAB_LOAD_SECONDS", 0.0),
            token_delay=env_float("OLLAMA_LAB_TOKEN_DELAY", 0.005),
        )


def _is_number(text: str) -> bool:
    return re.fullmatch(r"-?\d+(\.\d+)?", text) is not None


GO_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(text: str) -> float:
    """Go's time.ParseDuration, in seconds."""
    original = text
    sign = 1.0
    if text[:1] in "+-":
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    if not text:
        raise ValueError(f'time: invalid duration "{original}"')
    total = 0.0
    pattern = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)?")
    position = 0
    while position < len(text):
        match = pattern.match(text, position)
        if not match:
            raise ValueError(f'time: invalid duration "{original}"')
        if match.group(2) is None:
            raise ValueError(f'time: missing unit in duration "{original}"')
        total += float(match.group(1)) * GO_DURATION_UNITS[match.group(2)]
        position = match.end()
    return sign * total


def parse_keep_alive(value: Any) -> float | None:
    """Ollama's api.Duration: a number of seconds or a Go duration; negative = forever."""
    if isinstance(value, bool):
        raise ValueError(f"json: cannot unmarshal bool into keep_alive: {value}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = parse_go_duration(value.strip())
    else:
        raise ValueError(f"Unsupported type: '{type(value).__name__}'")
    return None if seconds < 0 else seconds


def human_bytes(size: float) -> str:
    """Ollama's format.HumanBytes (decimal units)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            value = size / scale
            if value >= 10 or value == int(value):
                return f"{int(value)} {unit}"
            return f"{value:.1f} {unit}"
    return f"{int(size)} B"


def human_age(then: dt.datetime, now: dt.datetime | None = None, future: bool = False) -> str:
    now = now or dt.datetime.now(dt.UTC)
    seconds = (then - now).total_seconds() if future else (now - then).total_seconds()
    suffix = "from now" if future else "ago"
    for unit, size in (("year", 31536000), ("month", 2592000), ("week", 604800), ("day", 86400), ("hour", 3600)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count > 1 else ''} {suffix}"
    if seconds >= 60:
        count = int(seconds // 60)
        return f"{count} minute{'s' if count > 1 else ''} {suffix}"
    return f"Less than a second {suffix}" if seconds < 1 else f"{int(seconds)} seconds {suffix}"


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone().isoformat()


def utc_stamp() -> str:
    return now_utc().isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------------
# Model names
# ---------------------------------------------------------------------------------------------

PART_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,79}$")
HOST_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*(:\d+)?$")


class InvalidName(ValueError):
    """Ollama answers "invalid model name"."""


@dataclasses.dataclass(frozen=True)
class ModelName:
    host: str
    namespace: str
    model: str
    tag: str

    @classmethod
    def parse(cls, text: str) -> ModelName:
        name = (text or "").strip()
        if "://" in name:
            name = name.split("://", 1)[1]
        name = name.split("@", 1)[0]
        if not name:
            raise InvalidName("invalid model name")
        path, tag = name, DEFAULT_TAG
        last = name.rsplit("/", 1)[-1]
        if ":" in last:
            path, tag = name.rsplit(":", 1)
        parts = path.split("/")
        if len(parts) > 3 or any(not part for part in parts):
            raise InvalidName("invalid model name")
        host, namespace = DEFAULT_REGISTRY, DEFAULT_NAMESPACE
        if len(parts) == 3:
            host, namespace, model = parts
        elif len(parts) == 2:
            namespace, model = parts
        else:
            model = parts[0]
        if not (HOST_RE.match(host) and PART_RE.match(namespace) and PART_RE.match(model) and PART_RE.match(tag)):
            raise InvalidName("invalid model name")
        return cls(host, namespace, model, tag)

    @property
    def display(self) -> str:
        """Ollama's DisplayShortest: `llama3.1:8b`, `user/model:tag`, `host/ns/model:tag`."""
        if self.host == DEFAULT_REGISTRY and self.namespace == DEFAULT_NAMESPACE:
            return f"{self.model}:{self.tag}"
        if self.host == DEFAULT_REGISTRY:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    @property
    def repository(self) -> str:
        return f"{self.namespace}/{self.model}"

    def manifest_parts(self) -> tuple[str, str, str, str]:
        return (self.host, self.namespace, self.model, self.tag)


# ---------------------------------------------------------------------------------------------
# The on-disk store
# ---------------------------------------------------------------------------------------------

DIGEST_RE = re.compile(r"^sha256[:-]([0-9a-f]{64})$")


class Store:
    """$OLLAMA_MODELS: manifests and content-addressed blobs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifests = root / "manifests"
        self.blobs = root / "blobs"
        self.lock = threading.RLock()
        self.manifests.mkdir(parents=True, exist_ok=True)
        self.blobs.mkdir(parents=True, exist_ok=True)

    def blob_path(self, digest: str) -> Path:
        match = DIGEST_RE.match(digest)
        if not match:
            raise ValueError(f"invalid digest format: {digest}")
        return self.blobs / f"sha256-{match.group(1)}"

    def manifest_path(self, name: ModelName) -> Path:
        return self.manifests.joinpath(*name.manifest_parts())

    def read_manifest(self, name: ModelName) -> tuple[dict[str, Any], bytes] | None:
        path = self.manifest_path(name)
        try:
            raw = path.read_bytes()
            return json.loads(raw), raw
        except (OSError, ValueError):
            return None

    def write_manifest(self, name: ModelName, raw: bytes) -> None:
        path = self.manifest_path(name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            try:
                tmp.write_bytes(raw)
            except OSError:
                tmp.unlink(missing_ok=True)
                raise
            os.replace(tmp, path)
        except OSError as exc:
            raise go_path_error("write", path, exc) from exc

    def remove_manifest(self, name: ModelName) -> None:
        path = self.manifest_path(name)
        path.unlink()
        for parent in (path.parent, path.parent.parent, path.parent.parent.parent):
            with contextlib.suppress(OSError):
                parent.rmdir()

    def all_models(self) -> list[tuple[ModelName, dict[str, Any], bytes, float]]:
        found = []
        for path in sorted(self.manifests.glob("*/*/*/*")):
            if not path.is_file() or path.name.endswith(".tmp"):
                continue
            host, namespace, model, tag = path.relative_to(self.manifests).parts
            try:
                name = ModelName(host, namespace, model, tag)
                raw = path.read_bytes()
                found.append((name, json.loads(raw), raw, path.stat().st_mtime))
            except (OSError, ValueError):
                continue
        return found

    def referenced_digests(self) -> set[str]:
        used = set()
        for _, manifest, _, _ in self.all_models():
            for layer in layers_of(manifest):
                used.add(layer.get("digest", ""))
        return used

    def remove_unused(self, candidates: set[str]) -> list[str]:
        """Delete the candidate blobs that no manifest references any more."""
        with self.lock:
            unused = candidates - self.referenced_digests()
            removed = []
            for digest in sorted(unused):
                with contextlib.suppress(OSError, ValueError):
                    self.blob_path(digest).unlink()
                    removed.append(digest)
            return removed

    def prune(self) -> list[str]:
        """Start-up pruning: every complete blob no manifest references (partials are kept)."""
        candidates = {"sha256:" + path.name[7:] for path in self.blobs.glob("sha256-*") if DIGEST_RE.match(path.name)}
        return self.remove_unused(candidates)


def layers_of(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    layers = list(manifest.get("layers") or [])
    if manifest.get("config"):
        layers.append(manifest["config"])
    return layers


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Talking to a registry, with Go-style error texts
# ---------------------------------------------------------------------------------------------


class PullError(Exception):
    """A pull failure; the message is what Ollama puts in the stream's error line."""


class TransferError(Exception):
    """One failed blob transfer attempt (resumable)."""


# Go's text for the errno values a full file system gives (syscall.Errno.Error()).
GO_ERRNO_TEXT = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}


def go_path_error(op: str, path: Path, exc: OSError) -> PullError:
    """The pull's end as Ollama words it: Go's *PathError, `write <path>: no space left on device`."""
    text = GO_ERRNO_TEXT.get(exc.errno or 0, (exc.strerror or str(exc)).lower())
    return PullError(f"{op} {path}: {text}")


class Canceled(Exception):
    """Every client waiting on a download went away."""


def go_transport_error(method: str, url: str, exc: BaseException) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if isinstance(exc, socket.gaierror):
        detail = f"dial tcp: lookup {host}: no such host"
    elif isinstance(exc, ConnectionRefusedError):
        detail = f"dial tcp {host}:{port}: connect: connection refused"
    elif isinstance(exc, (TimeoutError, socket.timeout)):
        detail = f"dial tcp {host}:{port}: i/o timeout"
    elif isinstance(exc, ssl.SSLError):
        detail = "http: server gave HTTP response to HTTPS client" if "WRONG_VERSION" in str(exc) else str(exc)
    elif isinstance(exc, ConnectionResetError):
        detail = f"read tcp {host}:{port}: read: connection reset by peer"
    else:
        detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f'{method.title()} "{url}": {detail}'


def open_connection(url: str, timeout: float) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return http.client.HTTPSConnection(parts.hostname or "", parts.port or 443, timeout=timeout)
    return http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=timeout)


def registry_request(
    method: str, url: str, headers: dict[str, str], timeout: float
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """Send a request; connection failures become PullError with Go's wording."""
    parts = urlsplit(url)
    conn = open_connection(url, timeout)
    try:
        conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers)
        return conn, conn.getresponse()
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        raise PullError(go_transport_error(method, url, exc)) from exc


def status_error(response: http.client.HTTPResponse) -> str:
    """makeRequestWithRetry's wording: 404 is os.ErrNotExist, other errors are "<code>: <body>"."""
    if response.status == 404:
        return "file does not exist"
    body = response.read(4096).decode("utf-8", "replace").strip()
    return f"{response.status}: {body}"


# ---------------------------------------------------------------------------------------------
# Blob downloads: one per digest, shared by every pull that needs it
# ---------------------------------------------------------------------------------------------


class BlobDownload:
    """Download one blob into `<blob>-partial`, recording progress in `<blob>-partial-0`."""

    def __init__(self, store: Store, settings: Settings, digest: str, url: str) -> None:
        self.store = store
        self.settings = settings
        self.digest = digest
        self.url = url
        self.path = store.blob_path(digest)
        self.partial = self.path.with_name(self.path.name + "-partial")
        self.record = self.path.with_name(self.path.name + "-partial-0")
        self.total = 0
        self.completed = 0
        self.error: str | None = None
        self.done = threading.Event()
        self.cancel = threading.Event()
        self.lock = threading.Lock()
        self.references = 0

    # -- preparing: resume from the record or ask the registry for the size -----------------

    def prepare(self) -> None:
        if self._resume_from_record():
            return
        conn, response = registry_request("HEAD", self.url, {"User-Agent": USER_AGENT}, self.settings.stall_timeout)
        try:
            if response.status >= 400:
                raise PullError(status_error(response))
            self.total = int(response.getheader("Content-Length") or 0)
        finally:
            conn.close()
        self.completed = 0
        self.partial.touch()
        self._save_record()

    def _resume_from_record(self) -> bool:
        try:
            record = json.loads(self.record.read_text())
            total, completed = int(record["Size"]), int(record["Completed"])
        except (OSError, ValueError, KeyError, TypeError):
            return False
        on_disk = self.partial.stat().st_size if self.partial.exists() else -1
        if total <= 0 or completed < 0 or completed > total or on_disk < completed:
            return False
        self.total, self.completed = total, completed
        return True

    def _save_record(self) -> None:
        """Best effort, like the progress it records: on a full disk the older record stays (a resume then
        fetches a little again) and the blob write names the full disk."""
        record = {"N": 0, "Offset": 0, "Size": self.total, "Completed": self.completed}
        tmp = self.record.with_name(self.record.name + ".tmp")
        try:
            tmp.write_text(json.dumps(record) + "\n")
            os.replace(tmp, self.record)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno not in GO_ERRNO_TEXT:
                raise

    # -- running ---------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._run()
        except Canceled:
            self.error = "context canceled"
        except PullError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a stand-in reports every failure in the stream
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.done.set()

    def _run(self) -> None:
        attempts = self.settings.pull_retries + 1
        last: TransferError | None = None
        for attempt in range(attempts):
            try:
                self._transfer()
                break
            except TransferError as exc:
                last = exc
                log(f"{self.digest[7:19]} part 0 attempt {attempt} failed: {exc}")
                if attempt + 1 < attempts and self.cancel.wait(self.settings.retry_delay * (2**attempt)):
                    raise Canceled() from exc
        else:
            raise PullError(f"max retries exceeded: {last}")
        with self.store.lock:
            os.replace(self.partial, self.path)
            self.record.unlink(missing_ok=True)

    def _transfer(self) -> None:
        if self.cancel.is_set():
            raise Canceled()
        if self.completed >= self.total:
            return
        headers = {"User-Agent": USER_AGENT, "Range": f"bytes={self.completed}-{self.total - 1}"}
        try:
            conn, response = registry_request("GET", self.url, headers, self.settings.stall_timeout)
        except PullError as exc:
            raise TransferError(str(exc)) from exc
        try:
            if response.status == 200:
                self.completed = 0  # the registry ignored the Range header: start over
            elif response.status != 206:
                raise TransferError(status_error(response))
            self._copy_body(response)
        finally:
            self._save_record()
            conn.close()

    def _copy_body(self, response: http.client.HTTPResponse) -> None:
        # Unbuffered: a write the disk refuses fails here, not later in close().
        with self.partial.open("r+b", buffering=0) as out:
            out.seek(self.completed)
            while self.completed < self.total:
                if self.cancel.is_set():
                    raise Canceled()
                try:
                    block = response.read1(min(CHUNK, self.total - self.completed))
                except TimeoutError as exc:
                    raise TransferError("part stalled") from exc
                except (OSError, http.client.HTTPException) as exc:
                    raise TransferError(go_transport_error("GET", self.url, exc).split(": ", 1)[-1]) from exc
                if not block:
                    raise TransferError("unexpected EOF")
                try:
                    view = memoryview(block)
                    while view:
                        view = view[out.write(view):]
                except OSError as exc:
                    # Ollama returns at once on ENOSPC, without retrying the part.
                    raise go_path_error("write", self.partial, exc) from exc
                with self.lock:
                    self.completed += len(block)

    # -- waiting: every pull that needs this blob waits here ---------------------------------

    def wait(self, emit: Emit) -> None:
        with self.lock:
            self.references += 1
        try:
            while not self.done.wait(0.1):
                emit(self.progress())
            if self.error:
                raise PullError(self.error)
            emit(self.progress())
        finally:
            with self.lock:
                self.references -= 1
                orphaned = self.references == 0 and not self.done.is_set()
            if orphaned:
                self.cancel.set()

    def progress(self) -> dict[str, Any]:
        return {
            "status": f"pulling {self.digest[7:19]}",
            "digest": self.digest,
            "total": self.total,
            "completed": self.completed,
        }


class Downloads:
    """blobDownloadManager: at most one download per digest at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[str, BlobDownload] = {}

    def get_or_start(self, store: Store, settings: Settings, digest: str, url: str) -> BlobDownload:
        with self._lock:
            download = self._active.get(digest)
            if download is not None:
                return download
            download = BlobDownload(store, settings, digest, url)
            self._active[digest] = download
        try:
            download.prepare()
        except BaseException:
            with self._lock:
                self._active.pop(digest, None)
            raise
        threading.Thread(target=self._run, args=(download,), name=f"download-{digest[7:19]}", daemon=True).start()
        return download

    def _run(self, download: BlobDownload) -> None:
        try:
            download.run()
        finally:
            with self._lock:
                if self._active.get(download.digest) is download:
                    del self._active[download.digest]


# ---------------------------------------------------------------------------------------------
# The server's model operations
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class LoadedModel:
    name: ModelName
    digest: str
    size: int
    details: dict[str, Any]
    expires_at: dt.datetime


class NotFound(Exception):
    """The model is not in the store."""


class Ollama:
    """Everything the HTTP handlers do, independent of HTTP."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.models_dir)
        self.downloads = Downloads()
        self.loaded: dict[str, LoadedModel] = {}
        self.loaded_lock = threading.Lock()

    # -- describing models -------------------------------------------------------------------

    def config_of(self, manifest: dict[str, Any]) -> dict[str, Any]:
        digest = (manifest.get("config") or {}).get("digest", "")
        try:
            return json.loads(self.store.blob_path(digest).read_text())
        except (OSError, ValueError):
            return {}

    def details_of(self, manifest: dict[str, Any]) -> dict[str, Any]:
        config = self.config_of(manifest)
        return {
            "parent_model": "",
            "format": config.get("model_format", "gguf"),
            "family": config.get("model_family", ""),
            "families": config.get("model_families") or None,
            "parameter_size": config.get("model_type", ""),
            "quantization_level": config.get("file_type", ""),
        }

    @staticmethod
    def size_of(manifest: dict[str, Any]) -> int:
        return sum(int(layer.get("size", 0)) for layer in layers_of(manifest))

    def require(self, text: str) -> tuple[ModelName, dict[str, Any], bytes]:
        name = ModelName.parse(text)
        found = self.store.read_manifest(name)
        if found is None:
            raise NotFound(text)
        manifest, raw = found
        return name, manifest, raw

    def tags(self) -> list[dict[str, Any]]:
        entries = []
        for name, manifest, raw, mtime in self.store.all_models():
            entries.append(
                {
                    "name": name.display,
                    "model": name.display,
                    "modified_at": rfc3339(dt.datetime.fromtimestamp(mtime, dt.UTC)),
                    "size": self.size_of(manifest),
                    "digest": hashlib.sha256(raw).hexdigest(),
                    "details": self.details_of(manifest),
                }
            )
        return sorted(entries, key=lambda entry: entry["modified_at"], reverse=True)

    def layer_text(self, manifest: dict[str, Any], media_type: str) -> str:
        for layer in manifest.get("layers") or []:
            if layer.get("mediaType") == media_type:
                with contextlib.suppress(OSError, ValueError):
                    return self.store.blob_path(layer["digest"]).read_text()
        return ""

    def show(self, text: str) -> dict[str, Any]:
        name, manifest, _ = self.require(text)
        details = self.details_of(manifest)
        template = self.layer_text(manifest, "application/vnd.ollama.image.template")
        license_text = self.layer_text(manifest, "application/vnd.ollama.image.license")
        params_raw = self.layer_text(manifest, "application/vnd.ollama.image.params")
        params = json.loads(params_raw) if params_raw.strip() else {}
        parameters = "\n".join(
            f"{key:<30} {json.dumps(item)}"
            for key, values in params.items()
            for item in (values if isinstance(values, list) else [values])
        )
        model_layer = next((layer for layer in manifest.get("layers", []) if layer["mediaType"].endswith(".model")), {})
        family = details["family"] or "llama"
        modelfile = (
            f'# Modelfile generated by "ollama show" ({STAND_IN})\n'
            f"# To build a new Modelfile based on this, replace FROM with:\n# FROM {name.display}\n\n"
            f"FROM {self.store.blob_path(model_layer.get('digest', 'sha256:' + '0' * 64))}\n"
            f'TEMPLATE """{template}"""\n'
            + "".join(f"PARAMETER {line}\n" for line in parameters.splitlines())
            + f'LICENSE """{license_text}"""\n'
        )
        mtime = self.store.manifest_path(name).stat().st_mtime
        return {
            "license": license_text,
            "modelfile": modelfile,
            "parameters": parameters,
            "template": template,
            "details": details,
            "model_info": {
                "general.architecture": family,
                "general.file_type": 15,
                "general.parameter_count": int(model_layer.get("size", 0)),
                "general.quantization_version": 2,
                f"{family}.context_length": 131072,
                "lpfleet_lab.stand_in": True,
            },
            "capabilities": ["completion"],
            "modified_at": rfc3339(dt.datetime.fromtimestamp(mtime, dt.UTC)),
        }

    def delete(self, text: str) -> None:
        name, manifest, _ = self.require(text)
        with self.store.lock:
            self.store.remove_manifest(name)
            self.store.remove_unused({layer.get("digest", "") for layer in layers_of(manifest)})
        with self.loaded_lock:
            self.loaded.pop(name.display, None)

    def copy(self, source: str, destination: str) -> None:
        _, _, raw = self.require(source)
        self.store.write_manifest(ModelName.parse(destination), raw)

    # -- pulling ---------------------------------------------------------------------------

    def registry_base(self, name: ModelName, insecure: bool) -> str:
        if name.host == DEFAULT_REGISTRY and self.settings.lab_registry:
            return self.settings.lab_registry
        return f"{'http' if insecure else 'https'}://{name.host}"

    def fetch_manifest(self, base: str, name: ModelName) -> tuple[dict[str, Any], bytes]:
        url = f"{base}/v2/{name.repository}/manifests/{name.tag}"
        headers = {"Accept": MANIFEST_MEDIA_TYPE, "User-Agent": USER_AGENT}
        conn, response = registry_request("GET", url, headers, self.settings.stall_timeout)
        try:
            if response.status >= 400:
                raise PullError(status_error(response))
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise PullError(go_transport_error("GET", url, exc)) from exc
        finally:
            conn.close()
        try:
            manifest = json.loads(raw)
        except ValueError as exc:
            raise PullError(f"invalid character in manifest: {exc}") from exc
        if not isinstance(manifest, dict) or not isinstance(manifest.get("layers"), list):
            raise PullError("manifest has no layers")
        return manifest, raw

    def pull(self, text: str, insecure: bool, emit: Emit) -> None:
        name = ModelName.parse(text)
        previous = self.store.read_manifest(name)
        stale = set() if self.settings.noprune or previous is None else {d["digest"] for d in layers_of(previous[0])}
        base = self.registry_base(name, insecure)
        emit({"status": "pulling manifest"})
        try:
            manifest, raw = self.fetch_manifest(base, name)
        except PullError as exc:
            raise PullError(f"pull model manifest: {exc}") from exc
        layers = layers_of(manifest)
        for layer in layers:
            self.download_blob(base, name, layer["digest"], emit)
        emit({"status": "verifying sha256 digest"})
        for layer in layers:
            self.verify_blob(layer["digest"])
        emit({"status": "writing manifest"})
        self.store.write_manifest(name, raw)
        if not self.settings.noprune:
            emit({"status": "removing any unused layers"})
            self.store.remove_unused(stale - {layer["digest"] for layer in layers})
        emit({"status": "success"})

    def download_blob(self, base: str, name: ModelName, digest: str, emit: Emit) -> None:
        if not DIGEST_RE.match(digest or ""):
            raise PullError(f"{name.repository}: digest is empty" if not digest else f"invalid digest {digest}")
        path = self.store.blob_path(digest)
        if path.exists():
            size = path.stat().st_size
            emit({"status": f"pulling {digest[7:19]}", "digest": digest, "total": size, "completed": size})
            return
        url = f"{base}/v2/{name.repository}/blobs/{digest}"
        self.downloads.get_or_start(self.store, self.settings, digest, url).wait(emit)

    def verify_blob(self, digest: str) -> None:
        path = self.store.blob_path(digest)
        try:
            actual = file_digest(path)
        except OSError as exc:
            raise PullError(f"open {path}: no such file or directory") from exc
        if actual != digest:
            with contextlib.suppress(OSError):
                path.unlink()
            raise PullError(f"digest mismatch, file must be downloaded again: want {digest}, got {actual}")

    # -- loading and generating ----------------------------------------------------------------

    def purge_expired(self) -> None:
        now = now_utc()
        with self.loaded_lock:
            for key in [key for key, item in self.loaded.items() if item.expires_at <= now]:
                del self.loaded[key]

    def keep_alive_until(self, keep_alive: float | None) -> dt.datetime:
        return now_utc() + (FOREVER if keep_alive is None else dt.timedelta(seconds=keep_alive))

    def load(self, text: str, keep_alive: float | None) -> tuple[ModelName, bool]:
        """Load (or refresh) a model; keep_alive 0 unloads. Returns (name, unloaded)."""
        name, manifest, _ = self.require(text)
        self.purge_expired()
        if keep_alive == 0:
            with self.loaded_lock:
                self.loaded.pop(name.display, None)
            return name, True
        with self.loaded_lock:
            already = name.display in self.loaded
        if not already and self.settings.load_seconds > 0:
            time.sleep(self.settings.load_seconds)
        with self.loaded_lock:
            self.loaded[name.display] = LoadedModel(
                name=name,
                digest=hashlib.sha256(self.store.read_manifest(name)[1]).hexdigest(),
                size=self.size_of(manifest),
                details=self.details_of(manifest),
                expires_at=self.keep_alive_until(keep_alive),
            )
        return name, False

    def ps(self) -> list[dict[str, Any]]:
        self.purge_expired()
        with self.loaded_lock:
            items = list(self.loaded.values())
        return [
            {
                "name": item.name.display,
                "model": item.name.display,
                "size": item.size,
                "digest": item.digest,
                "details": item.details,
                "expires_at": rfc3339(item.expires_at),
                "size_vram": item.size,
                "context_length": 4096,
            }
            for item in items
        ]


def answer_tokens(model: str, prompt: str, limit: int | None) -> tuple[list[str], str]:
    """The stand-in's deterministic answer, split into tokens; done_reason stop or length."""
    snippet = " ".join(prompt.split())[:120]
    text = f"Hello from {model}, an {STAND_IN} model." + (f" You said: {snippet}" if snippet else "")
    tokens = re.findall(r"\s*\S+", text)
    if limit is not None and 0 <= limit < len(tokens):
        return tokens[:limit], "length"
    return tokens, "stop"


def count_words(text: str) -> int:
    return max(1, len(text.split()))


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------


class BadRequest(Exception):
    """400 with {"error": message}."""


class ClientGone(Exception):
    """The HTTP client closed the connection while we were streaming."""


def log(message: str) -> None:
    stamp = dt.datetime.now().astimezone().isoformat(timespec="milliseconds")
    sys.stderr.write(f"time={stamp} level=INFO source=lpfleet-lab msg={json.dumps(message)}\n")
    sys.stderr.flush()


class OllamaServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], ollama: Ollama) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, OllamaHandler)
        self.ollama = ollama


class OllamaHandler(BaseHTTPRequestHandler):
    server: OllamaServer
    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:
        return f"ollama/{VERSION} ({STAND_IN})"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one gin-style line per request is written by _log_request

    def _log_request(self, status: int, started: float) -> None:
        elapsed = (time.monotonic() - started) * 1000
        stamp = time.strftime("%Y/%m/%d - %H:%M:%S")
        sys.stderr.write(
            f"[GIN] {stamp} | {status:3d} | {elapsed:10.3f}ms | {self.client_address[0]:>15} | "
            f'{self.command:<7} "{self.path}"\n'
        )
        sys.stderr.flush()

    # -- responses -----------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._status = status

    def _json(self, status: int, body: Any) -> None:
        self._send(status, json.dumps(body).encode(), "application/json; charset=utf-8")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._status = 200

    def _chunk(self, data: bytes) -> None:
        try:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError) as exc:
            raise ClientGone() from exc

    def _ndjson(self, item: dict[str, Any]) -> None:
        self._chunk(json.dumps(item).encode() + b"\n")

    def _end_stream(self) -> None:
        with contextlib.suppress(OSError):
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            raise BadRequest("missing request body")
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise BadRequest(f"invalid character in request body: {exc}") from exc
        if not isinstance(body, dict):
            raise BadRequest("json: cannot unmarshal request body: expected an object")
        return body

    @staticmethod
    def _model_field(body: dict[str, Any]) -> str:
        value = body.get("model") or body.get("name") or ""
        if not isinstance(value, str):
            raise BadRequest("json: cannot unmarshal model: expected a string")
        if not value:
            raise BadRequest("model is required")
        return value

    # -- routing -------------------------------------------------------------------------------

    ROUTES = {
        ("GET", "/"): "_root",
        ("HEAD", "/"): "_root",
        ("GET", "/api/version"): "_version",
        ("HEAD", "/api/version"): "_version",
        ("GET", "/api/tags"): "_tags",
        ("HEAD", "/api/tags"): "_tags",
        ("GET", "/api/ps"): "_ps",
        ("POST", "/api/show"): "_show",
        ("POST", "/api/pull"): "_pull",
        ("DELETE", "/api/delete"): "_delete",
        ("POST", "/api/copy"): "_copy",
        ("POST", "/api/generate"): "_generate",
        ("POST", "/api/chat"): "_chat",
    }

    def _route(self) -> None:
        started = time.monotonic()
        self._status = 0
        handler_name = self.ROUTES.get((self.command, self.path.split("?", 1)[0]))
        try:
            if handler_name is None:
                self._send(404, b"404 page not found", "text/plain")
            else:
                getattr(self, handler_name)()
        except BadRequest as exc:
            self._error(400, str(exc))
        except InvalidName as exc:
            self._error(400, str(exc))
        except (ClientGone, BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            self._log_request(self._status, started)

    def do_GET(self) -> None:
        self._route()

    def do_HEAD(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def do_DELETE(self) -> None:
        self._route()

    # -- handlers ------------------------------------------------------------------------------

    def _root(self) -> None:
        self._send(200, b"Ollama is running", "text/plain; charset=utf-8")

    def _version(self) -> None:
        self._json(200, {"version": VERSION})

    def _tags(self) -> None:
        self._json(200, {"models": self.server.ollama.tags()})

    def _ps(self) -> None:
        self._json(200, {"models": self.server.ollama.ps()})

    def _show(self) -> None:
        model = self._model_field(self._body())
        try:
            self._json(200, self.server.ollama.show(model))
        except NotFound:
            self._error(404, f"model '{model}' not found")

    def _delete(self) -> None:
        model = self._model_field(self._body())
        try:
            self.server.ollama.delete(model)
        except NotFound:
            self._error(404, f"model '{model}' not found")
            return
        self._send(200, b"", "application/json; charset=utf-8")

    def _copy(self) -> None:
        body = self._body()
        source, destination = body.get("source"), body.get("destination")
        if not isinstance(source, str) or not source or not isinstance(destination, str) or not destination:
            raise BadRequest("source and destination are required")
        try:
            ModelName.parse(destination)
        except InvalidName as exc:
            raise BadRequest(f"invalid destination name: {destination}") from exc
        try:
            self.server.ollama.copy(source, destination)
        except NotFound:
            self._error(404, f"model {json.dumps(source)} not found")
            return
        self._send(200, b"", "application/json; charset=utf-8")

    def _pull(self) -> None:
        body = self._body()
        model = self._model_field(body)
        ModelName.parse(model)
        insecure = bool(body.get("insecure"))
        if body.get("stream", True) is False:
            self._pull_once(model, insecure)
            return
        self._start_stream()
        try:
            self.server.ollama.pull(model, insecure, self._ndjson)
        except PullError as exc:
            log(f"pull {model}: {exc}")
            self._ndjson({"error": str(exc)})
        self._end_stream()

    def _pull_once(self, model: str, insecure: bool) -> None:
        last: dict[str, Any] = {}
        try:
            self.server.ollama.pull(model, insecure, last.update)
        except PullError as exc:
            log(f"pull {model}: {exc}")
            self._error(500, str(exc))
            return
        self._json(200, {"status": last.get("status", "success")})

    def _keep_alive(self, body: dict[str, Any]) -> float | None:
        if body.get("keep_alive") is None:
            return self.server.ollama.settings.keep_alive
        try:
            return parse_keep_alive(body["keep_alive"])
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc

    def _load_only(self, model: str, keep_alive: float | None, chat: bool) -> None:
        name, unloaded = self.server.ollama.load(model, keep_alive)
        reply: dict[str, Any] = {"model": name.display, "created_at": utc_stamp()}
        if chat:
            reply["message"] = {"role": "assistant", "content": ""}
        else:
            reply["response"] = ""
        reply.update(done=True, done_reason="unload" if unloaded else "load")
        self._json(200, reply)

    def _generate(self) -> None:
        body = self._body()
        model = self._model_field(body)
        keep_alive = self._keep_alive(body)
        prompt = body.get("prompt") or ""
        try:
            if not prompt and not body.get("images"):
                self._load_only(model, keep_alive, chat=False)
                return
            name, _ = self.server.ollama.load(model, keep_alive)
        except NotFound:
            self._error(404, f"model '{model}' not found")
            return
        self._answer(name, str(prompt), body, chat=False)

    def _chat(self) -> None:
        body = self._body()
        model = self._model_field(body)
        keep_alive = self._keep_alive(body)
        messages = body.get("messages") or []
        if not isinstance(messages, list) or not all(isinstance(item, dict) for item in messages):
            raise BadRequest("json: cannot unmarshal messages: expected a list of objects")
        try:
            if not messages:
                self._load_only(model, keep_alive, chat=True)
                return
            name, _ = self.server.ollama.load(model, keep_alive)
        except NotFound:
            self._error(404, f"model '{model}' not found")
            return
        user_turns = [str(item.get("content") or "") for item in messages if item.get("role") == "user"]
        prompt = user_turns[-1] if user_turns else str(messages[-1].get("content") or "")
        self._answer(
            name, prompt, body, chat=True, prompt_words=sum(count_words(str(m.get("content") or "")) for m in messages)
        )

    def _answer(self, name: ModelName, prompt: str, body: dict[str, Any], chat: bool, prompt_words: int = 0) -> None:
        options = body.get("options") if isinstance(body.get("options"), dict) else {}
        limit = options.get("num_predict")
        limit = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0 else None
        tokens, done_reason = answer_tokens(name.display, prompt, limit)
        started = time.monotonic_ns()
        final = {
            "done": True,
            "done_reason": done_reason,
            "prompt_eval_count": prompt_words or count_words(prompt),
            "prompt_eval_duration": 1_000_000,
            "eval_count": len(tokens),
            "load_duration": 1_000_000,
        }

        def piece(text: str, done: bool) -> dict[str, Any]:
            item: dict[str, Any] = {"model": name.display, "created_at": utc_stamp()}
            if chat:
                item["message"] = {"role": "assistant", "content": text}
            else:
                item["response"] = text
            item["done"] = done
            return item

        if body.get("stream", True) is False:
            time.sleep(self.server.ollama.settings.token_delay * len(tokens))
            elapsed = time.monotonic_ns() - started
            self._json(200, piece("".join(tokens), True) | final | timing(elapsed))
            return
        self._start_stream()
        for token in tokens:
            self._ndjson(piece(token, False))
            time.sleep(self.server.ollama.settings.token_delay)
        self._ndjson(piece("", True) | final | timing(time.monotonic_ns() - started))
        self._end_stream()


def timing(elapsed_ns: int) -> dict[str, int]:
    return {"total_duration": elapsed_ns + 2_000_000, "eval_duration": max(1, elapsed_ns)}


def parse_host(value: str | None) -> tuple[str, str, int]:
    """OLLAMA_HOST as envconfig.Host reads it: [scheme://]host[:port]; defaults http, 127.0.0.1, 11434."""
    raw = (value or "").strip().strip("\"'") or "127.0.0.1"
    scheme = "http"
    if "://" in raw:
        scheme, raw = raw.split("://", 1)
    raw = raw.split("/", 1)[0]
    host, port = raw, DEFAULT_PORT
    if raw.startswith("["):
        host, _, rest = raw[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else port
    elif raw.count(":") == 1:
        host, port_text = raw.split(":")
        port = int(port_text) if port_text else port
    return scheme, host or "127.0.0.1", port


def serve() -> int:
    settings = Settings.from_env()
    _, host, port = parse_host(os.environ.get("OLLAMA_HOST"))
    ollama = Ollama(settings)
    if not settings.noprune:
        removed = ollama.store.prune()
        log(f"total unused blobs removed: {len(removed)}")
    server = OllamaServer((host, port), ollama)
    log(f"Listening on {host}:{server.server_address[1]} (version {VERSION}, {STAND_IN})")
    log(
        f"models={settings.models_dir} registry={settings.lab_registry or 'https://' + DEFAULT_REGISTRY} "
        f"pull_retries={settings.pull_retries} stall_timeout={settings.stall_timeout}s"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


# ---------------------------------------------------------------------------------------------
# CLI (talks to the server over HTTP like the real one)
# ---------------------------------------------------------------------------------------------


class CliError(Exception):
    """Printed as `Error: <message>`, exit status 1."""


def client_base() -> tuple[str, int]:
    _, host, port = parse_host(os.environ.get("OLLAMA_HOST"))
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return host, port


def api(method: str, path: str, body: Any = None, timeout: float = 30.0) -> tuple[int, Any]:
    status, lines = api_stream(method, path, body, timeout)
    text = "".join(lines)
    try:
        return status, json.loads(text) if text.strip() else {}
    except ValueError:
        return status, {"error": text.strip()}


def api_stream(method: str, path: str, body: Any = None, timeout: float = 3600.0) -> tuple[int, Iterator[str]]:
    host, port = client_base()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    headers = {"Content-Type": "application/json", "User-Agent": f"ollama/{VERSION} ({STAND_IN} CLI)"}
    try:
        conn.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=headers)
        response = conn.getresponse()
    except OSError as exc:
        raise CliError("could not connect to ollama app, is it running?") from exc

    def lines() -> Iterator[str]:
        try:
            for raw in response:
                yield raw.decode("utf-8", "replace")
        finally:
            conn.close()

    return response.status, lines()


def check(status: int, reply: Any) -> Any:
    if status >= 400 or (isinstance(reply, dict) and reply.get("error")):
        raise CliError(reply.get("error") if isinstance(reply, dict) else f"HTTP {status}")
    return reply


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("    ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows)


def cmd_list(_: list[str]) -> None:
    models = check(*api("GET", "/api/tags"))["models"]
    rows = [["NAME", "ID", "SIZE", "MODIFIED"]]
    for model in models:
        modified = dt.datetime.fromisoformat(model["modified_at"])
        rows.append([model["name"], model["digest"][:12], human_bytes(model["size"]), human_age(modified)])
    print(table(rows))


def cmd_ps(_: list[str]) -> None:
    models = check(*api("GET", "/api/ps"))["models"]
    rows = [["NAME", "ID", "SIZE", "PROCESSOR", "UNTIL"]]
    for model in models:
        until = dt.datetime.fromisoformat(model["expires_at"])
        forever = until - now_utc() > dt.timedelta(days=365 * 100)
        rows.append(
            [
                model["name"],
                model["digest"][:12],
                human_bytes(model["size"]),
                "100% GPU",
                "Forever" if forever else human_age(until, future=True),
            ]
        )
    print(table(rows))


def cmd_pull(args: list[str]) -> None:
    insecure = "--insecure" in args
    names = [arg for arg in args if not arg.startswith("-")]
    if len(names) != 1:
        raise CliError(f"accepts 1 arg(s), received {len(names)}\nUsage: ollama pull MODEL [--insecure]")
    status, lines = api_stream("POST", "/api/pull", {"model": names[0], "insecure": insecure})
    if status >= 400:
        check(status, json.loads("".join(lines) or "{}"))
    state: dict[str, Any] = {}
    tty = sys.stderr.isatty()
    for line in lines:
        if not line.strip():
            continue
        item = json.loads(line)
        if item.get("error"):
            finish_line(state)
            raise CliError(item["error"])
        report_progress(item, state, tty)
    finish_line(state)


def report_progress(item: dict[str, Any], state: dict[str, Any], tty: bool) -> None:
    """Progress on stderr: one updating line per layer on a terminal, a line per quarter otherwise."""
    digest = item.get("digest")
    if not digest:
        finish_line(state)
        sys.stderr.write(item.get("status", "") + "\n")
        return
    total = item.get("total") or 0
    completed = item.get("completed") or 0
    percent = int(completed * 100 / total) if total else 100
    line = f"{item.get('status', '')}: {percent:3d}% {human_bytes(completed)}/{human_bytes(total)}"
    if tty:
        if state.get("open") not in (None, digest):
            sys.stderr.write("\n")
        sys.stderr.write("\r" + line.ljust(70))
        state["open"] = digest
    elif state.get(digest) != percent // 25:
        sys.stderr.write(line + "\n")
        state[digest] = percent // 25
    sys.stderr.flush()


def finish_line(state: dict[str, Any]) -> None:
    if state.pop("open", None):
        sys.stderr.write("\n")


def cmd_rm(args: list[str]) -> None:
    if not args:
        raise CliError("requires at least 1 arg(s), only received 0\nUsage: ollama rm MODEL [MODEL...]")
    for name in args:
        check(*api("DELETE", "/api/delete", {"model": name}))
        print(f"deleted '{name}'")


def cmd_cp(args: list[str]) -> None:
    if len(args) != 2:
        raise CliError(f"accepts 2 arg(s), received {len(args)}\nUsage: ollama cp SOURCE DESTINATION")
    check(*api("POST", "/api/copy", {"source": args[0], "destination": args[1]}))
    print(f"copied '{args[0]}' to '{args[1]}'")


def cmd_show(args: list[str]) -> None:
    if len(args) != 1:
        raise CliError(f"accepts 1 arg(s), received {len(args)}\nUsage: ollama show MODEL")
    reply = check(*api("POST", "/api/show", {"model": args[0]}))
    details = reply.get("details", {})
    print("  Model")
    for label, key in (
        ("architecture", "family"),
        ("parameters", "parameter_size"),
        ("quantization", "quantization_level"),
    ):
        print(f"    {label:<16}{details.get(key, '')}")
    print(f"\n  {STAND_IN}: synthetic weights, no inference engine")


def cmd_stop(args: list[str]) -> None:
    if len(args) != 1:
        raise CliError(f"accepts 1 arg(s), received {len(args)}\nUsage: ollama stop MODEL")
    check(*api("POST", "/api/generate", {"model": args[0], "keep_alive": 0}))


def cmd_run(args: list[str]) -> None:
    if not args:
        raise CliError("requires at least 1 arg(s), only received 0\nUsage: ollama run MODEL [PROMPT]")
    prompt = " ".join(args[1:])
    if not prompt:
        check(*api("POST", "/api/generate", {"model": args[0]}))
        return
    status, lines = api_stream(
        "POST", "/api/chat", {"model": args[0], "messages": [{"role": "user", "content": prompt}]}
    )
    if status >= 400:
        check(status, json.loads("".join(lines) or "{}"))
    for line in lines:
        item = json.loads(line)
        if item.get("error"):
            raise CliError(item["error"])
        sys.stdout.write(item.get("message", {}).get("content", ""))
        sys.stdout.flush()
    print("\n")


def cmd_version(_: list[str]) -> None:
    try:
        status, reply = api("GET", "/api/version", timeout=5)
        print(f"ollama version is {reply.get('version', '0.0.0')} ({STAND_IN})")
    except CliError:
        print("Warning: could not connect to a running Ollama instance")
        print(f"Warning: client version is {VERSION} ({STAND_IN})")


USAGE = f"""Large language model runner ({STAND_IN}: an Ollama look-alike for the lpfleet lab;
it stores and serves synthetic models and has no inference engine)

Usage:
  ollama [flags]
  ollama [command]

Available Commands:
  serve       Start ollama
  show        Show information for a model
  run         Run a model
  stop        Stop a running model
  pull        Pull a model from a registry
  list        List models
  ps          List running models
  cp          Copy a model
  rm          Remove a model
  help        Help about any command

Flags:
  -h, --help      help for ollama
  -v, --version   Show version information

Environment: OLLAMA_HOST, OLLAMA_MODELS, OLLAMA_KEEP_ALIVE, OLLAMA_NOPRUNE, OLLAMA_LAB_REGISTRY,
OLLAMA_LAB_PULL_RETRIES, OLLAMA_LAB_RETRY_DELAY, OLLAMA_LAB_STALL_TIMEOUT, OLLAMA_LAB_LOAD_SECONDS,
OLLAMA_LAB_TOKEN_DELAY (see the module docstring)."""

COMMANDS: dict[str, Callable[[list[str]], None]] = {
    "list": cmd_list,
    "ls": cmd_list,
    "ps": cmd_ps,
    "pull": cmd_pull,
    "rm": cmd_rm,
    "cp": cmd_cp,
    "show": cmd_show,
    "stop": cmd_stop,
    "run": cmd_run,
}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if args[0] in ("-v", "--version", "version"):
        cmd_version(args[1:])
        return 0
    if args[0] == "serve":
        return serve()
    command = COMMANDS.get(args[0])
    if command is None:
        print(f'Error: unknown command "{args[0]}" for "ollama"', file=sys.stderr)
        return 1
    try:
        command(args[1:])
    except CliError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
