"""Small purpose-built HTTP servers for the unit tests: an Ollama-like server and a runner-like one.

Each runs a ThreadingHTTPServer on 127.0.0.1, port 0, in a daemon thread, speaks the contract in
shared/contracts/ (ollama.md, ai-runner.md) and can be told to misbehave in the ways real servers do.
Both record what clients asked, so tests can assert on the requests as well as on the results.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ansible.module_utils.testing import patch_module_args


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - the base class names it so
        pass

    def _dispatch(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        fixture = self.server.fixture
        fixture.requests.append({"method": self.command, "path": self.path, "body": body,
                                 "authorization": self.headers.get("Authorization")})
        fixture.handle(self, body)

    do_GET = do_POST = do_DELETE = _dispatch

    # Helpers the fixtures use to answer.
    def send_body(self, status: int, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def send_json(self, status: int, document: Any) -> None:
        self.send_body(status, "application/json; charset=utf-8", json.dumps(document).encode())

    def start_chunked(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def send_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def cut(self) -> None:
        """Announce a chunk, send half of it, and drop the connection."""
        self.wfile.write(b"40\r\n{\"status\":\"pulling")
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True


class FixtureServer:
    """Base class: start with `with Fixture(...) as server:`; `server.url` is its base URL."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.released = threading.Event()  # set at stop: ends deliberate stalls and slow answers
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.handle_error = lambda request, client_address: None  # clients cut off on purpose
        self._httpd.fixture = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self.released.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def handle(self, handler: _Handler, body: Any) -> None:
        raise NotImplementedError

    def calls(self, path: str) -> list[dict[str, Any]]:
        return [request for request in self.requests if request["path"] == path]


def go_time(moment: datetime) -> str:
    """A time as Go's encoding/json writes it (RFC 3339 with nanoseconds), as Ollama's expires_at."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "417+00:00"


def keep_alive_expiry(value: Any, now: datetime) -> datetime | None:
    """When a model loaded with this keep_alive expires; None for 0 (unload now)."""
    text = str(value)
    match = re.fullmatch(r"(-?\d+(?:\.\d+)?)([hms]?)", text)
    if not match:
        raise ValueError(text)
    seconds = float(match.group(1)) * {"h": 3600, "m": 60, "s": 1, "": 1}[match.group(2)]
    if seconds == 0:
        return None
    return now + (timedelta(days=300 * 365) if seconds < 0 else timedelta(seconds=seconds))


def canonical(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"


class OllamaServer(FixtureServer):
    """An Ollama-like server.

    `registry` is what a pull fetches (name -> digest and layers); `models` what is installed;
    `loaded` what /api/ps lists (name -> expiry). `pull_script` gives the behaviour of each
    successive /api/pull: "ok", "stall" (half the first layer, then silence), "cut" (half the
    first layer, then the connection drops), "error" (a 200 stream with an error line), "gave_up"
    (half the first layer, then Ollama's own error line for a download it gave up on), "500",
    "disk_full" (half the first layer, then Ollama's error line when its disk is full: the text of
    the Go error its download returns at once on ENOSPC, server/download.go), "disk_full_500" (that
    error as the whole answer, HTTP 500, as Ollama sends an error that comes before any line);
    once it is empty, pulls succeed. Interrupted layers resume where they stopped, as Ollama's do.
    `pulls` records each pull: its body, behaviour, time (`at`) and where each layer resumed from.
    """

    LAYERS = [("sha256:" + "a1" * 32, 4_000_000), ("sha256:" + "b2" * 32, 12_000)]

    def __init__(self, line_delay: float = 0.0, steps: int = 8) -> None:
        super().__init__()
        self.registry = {"llama3.1:8b": {"digest": "d1" * 32, "layers": list(self.LAYERS)}}
        self.models: dict[str, dict[str, Any]] = {}
        self.loaded: dict[str, datetime] = {}
        self.pull_script: list[str] = []
        self.pulls: list[dict[str, Any]] = []
        self.partial: dict[str, int] = {}
        self.line_delay = line_delay
        self.steps = steps
        self.pull_finished_at: float | None = None
        # Answers given instead of the normal one, per path, first to last: (status, content type, body).
        self.answer_script: dict[str, list[tuple[int, str, bytes]]] = {}

    MODELS_DIR = "/root/.ollama/models"

    def disk_full_error(self, digest: str) -> str:
        """Ollama's error text when a blob write hits ENOSPC: Go's *PathError for the partial file."""
        return f"write {self.MODELS_DIR}/blobs/{digest.replace(':', '-')}-partial: no space left on device"

    def install(self, name: str, digest: str | None = None) -> None:
        entry = self.registry[name]
        self.models[name] = {"digest": digest or entry["digest"], "size": sum(size for _, size in entry["layers"])}

    def handle(self, handler: _Handler, body: Any) -> None:
        routes = {("GET", "/api/tags"): self.tags, ("GET", "/api/ps"): self.ps, ("POST", "/api/pull"): self.pull,
                  ("POST", "/api/show"): self.show, ("DELETE", "/api/delete"): self.delete,
                  ("POST", "/api/generate"): self.generate,
                  ("GET", "/api/version"): lambda h, b: h.send_json(200, {"version": "0.6.2"})}
        route = routes.get((handler.command, handler.path))
        scripted = self.answer_script.get(handler.path)
        if scripted:
            handler.send_body(*scripted.pop(0))
        elif route is None:
            handler.send_json(404, {"error": "not found"})
        else:
            route(handler, body or {})

    def _entry(self, name: str, extra: dict[str, Any]) -> dict[str, Any]:
        model = self.models[name]
        return dict({"name": name, "model": name, "size": model["size"], "digest": model["digest"]}, **extra)

    def tags(self, handler: _Handler, body: dict[str, Any]) -> None:
        handler.send_json(200, {"models": [
            self._entry(name, {"modified_at": go_time(datetime.now(UTC)), "details": {"format": "gguf"}})
            for name in self.models]})

    def ps(self, handler: _Handler, body: dict[str, Any]) -> None:
        handler.send_json(200, {"models": [
            self._entry(name, {"expires_at": go_time(expiry), "size_vram": self.models[name]["size"]})
            for name, expiry in self.loaded.items()]})

    def _name(self, body: dict[str, Any]) -> str:
        return canonical(body.get("model") or body.get("name") or "")

    def show(self, handler: _Handler, body: dict[str, Any]) -> None:
        name = self._name(body)
        if name not in self.models:
            handler.send_json(404, {"error": f"model '{name}' not found"})
        else:
            handler.send_json(200, {"details": {"format": "gguf"}, "modified_at": go_time(datetime.now(UTC))})

    def delete(self, handler: _Handler, body: dict[str, Any]) -> None:
        name = self._name(body)
        if self.models.pop(name, None) is None:
            handler.send_json(404, {"error": f"model '{name}' not found"})
            return
        self.loaded.pop(name, None)
        handler.send_body(200, "text/plain", b"")

    def generate(self, handler: _Handler, body: dict[str, Any]) -> None:
        name = self._name(body)
        if name not in self.models:
            handler.send_json(404, {"error": f'model "{name}" not found, try pulling it first'})
            return
        now = datetime.now(UTC)
        expiry = keep_alive_expiry(body.get("keep_alive", "5m"), now)
        if expiry is None:
            self.loaded.pop(name, None)
        else:
            self.loaded[name] = expiry
        handler.send_json(200, {"model": name, "created_at": go_time(now), "response": "", "done": True,
                                "done_reason": "unload" if expiry is None else "load"})

    def _line(self, handler: _Handler, document: dict[str, Any]) -> None:
        handler.send_chunk(json.dumps(document).encode() + b"\n")

    def pull(self, handler: _Handler, body: dict[str, Any]) -> None:
        name = self._name(body)
        behaviour = self.pull_script.pop(0) if self.pull_script else "ok"
        record = {"body": body, "behaviour": behaviour, "resumed_from": {}, "at": time.monotonic()}
        self.pulls.append(record)
        if behaviour == "500":
            handler.send_json(500, {"error": "an internal fault"})
            return
        if behaviour == "disk_full_500":
            handler.send_json(500, {"error": self.disk_full_error(self.LAYERS[0][0])})
            return
        handler.start_chunked("application/x-ndjson")
        self._line(handler, {"status": "pulling manifest"})
        if behaviour == "error" or name not in self.registry:
            self._line(handler, {"error": "pull model manifest: file does not exist"})
            handler.end_chunked()
            return
        entry = self.registry[name]
        for digest, size in entry["layers"]:
            record["resumed_from"][digest] = self.partial.get(digest, 0)
            if not self._send_layer(handler, digest, size, behaviour):
                return
            behaviour = "ok"  # only the first layer misbehaves
        for status in ("verifying sha256 digest", "writing manifest", "success"):
            self._line(handler, {"status": status})
        self.models[name] = {"digest": entry["digest"], "size": sum(size for _, size in entry["layers"])}
        handler.end_chunked()
        self.pull_finished_at = time.monotonic()

    def _send_layer(self, handler: _Handler, digest: str, size: int, behaviour: str) -> bool:
        """Stream one layer's progress; False when the stream was deliberately broken."""
        status = f"pulling {digest[7:19]}"
        self._line(handler, {"status": status, "digest": digest, "total": size})
        done = self.partial.get(digest, 0)
        while done < size:
            if self.released.wait(self.line_delay):
                return False
            done = min(size, done + max(1, size // self.steps))
            self.partial[digest] = done
            self._line(handler, {"status": status, "digest": digest, "total": size, "completed": done})
            if behaviour in ("stall", "cut", "gave_up", "disk_full") and done >= size // 2:
                if behaviour == "cut":
                    handler.cut()
                elif behaviour in ("gave_up", "disk_full"):
                    error = ("max retries exceeded: unexpected EOF" if behaviour == "gave_up"
                             else self.disk_full_error(digest))
                    self._line(handler, {"error": error})
                    handler.end_chunked()
                else:
                    self.released.wait(30)
                return False
        return True


class RunnerServer(FixtureServer):
    """A runner-like server (go-livepeer's runner contract, shared/contracts/ai-runner.md).

    `health` lists the answers of successive /health calls (the last one repeats): a status such
    as "OK", "LOADING" or "ERROR", or "text/plain" (200 with a non-JSON content type) or "500".
    `llm` is how /llm behaves: "ok", "slow" (answers after `llm_delay` s), "malformed" (200
    without choices), "no_done" (a stream without `data: [DONE]`), "500", "no_choices_event" (a
    stream event without choices mid-stream, as upstream ai-runner sends on an error),
    "form_protocol" (go-livepeer's pre-2025 /llm: a JSON body gets FastAPI's 422 for the missing
    form field `prompt`) or "form_answer" (200 with the pre-2025 answer {response, tokens_used}).
    With `token`, every endpoint answers 401 unless the request carries it as a bearer token.

    With `ollama` (an OllamaServer), a served /llm first loads `ask_tag` there through its HTTP
    API (`/api/generate`), pulling it first with `pull`; when Ollama does not have it, /llm
    answers 500 with Ollama's error, as a runner passes it on. `ignore_model` serves any `model`
    and answers with MODEL_ID.
    """

    MODEL_ID = "meta-llama/Meta-Llama-3.1-8B-Instruct"

    def __init__(self, health: list[str] | None = None, llm: str = "ok", token: str | None = None,
                 llm_delay: float = 2.0, hardware: bool = True, ollama: OllamaServer | None = None,
                 ask_tag: str = "llama3.1:8b", pull: bool = False, ignore_model: bool = False) -> None:
        super().__init__()
        self.health = list(health or ["OK"])
        self.llm = llm
        self.token = token
        self.llm_delay = llm_delay
        self.hardware = hardware
        self.ollama = ollama
        self.ask_tag = ask_tag
        self.pull = pull
        self.ignore_model = ignore_model

    def handle(self, handler: _Handler, body: Any) -> None:
        if self.token and handler.headers.get("Authorization") != f"Bearer {self.token}":
            handler.send_json(401, {"detail": {"msg": "Invalid bearer token"}})
            return
        routes = {"/health": self.answer_health, "/hardware/info": self.hardware_info, "/version": self.version,
                  "/llm": self.answer_llm}
        routes.get(handler.path, lambda h, b: h.send_json(404, {"detail": "Not Found"}))(handler, body)

    def answer_health(self, handler: _Handler, body: Any) -> None:
        answer = self.health.pop(0) if len(self.health) > 1 else self.health[0]
        if answer == "text/plain":
            handler.send_body(200, "text/plain; charset=utf-8", b"OK")
        elif answer == "500":
            handler.send_json(500, {"detail": {"msg": "internal fault"}})
        else:
            handler.send_json(200, {"status": answer})

    def hardware_info(self, handler: _Handler, body: Any) -> None:
        if not self.hardware:
            handler.send_json(404, {"detail": "Not Found"})
            return
        handler.send_json(200, {"pipeline": "llm", "model_id": self.MODEL_ID, "gpu_info": {"0": {
            "id": "GPU-0", "name": "NVIDIA GeForce RTX 4090", "memory_total": 25757220864,
            "memory_free": 1073741824, "major": 8, "minor": 9}}})

    def version(self, handler: _Handler, body: Any) -> None:
        handler.send_json(200, {"pipeline": "llm", "model_id": self.MODEL_ID, "version": "0.14.1"})

    def response(self, **choice: Any) -> dict[str, Any]:
        return {"id": "chatcmpl-5d0b6c9e-2d4f-4c47-9f0e-1d1c7a1f2b3c", "model": self.MODEL_ID,
                "created": int(time.time()), "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
                "choices": [dict({"index": 0}, **choice)]}

    def ask_ollama(self) -> str | None:
        """Load ask_tag in the Ollama (pulling it first with `pull`); Ollama's error, or None."""
        if self.ollama is None:
            return None
        calls = ([("/api/pull", {"model": self.ask_tag, "stream": False})] if self.pull else []) + [
            ("/api/generate", {"model": self.ask_tag})]
        for path, payload in calls:
            request = urllib.request.Request(self.ollama.url + path, json.dumps(payload).encode(), method="POST",
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    answer.read()
            except urllib.error.HTTPError as error:
                return json.loads(error.read()).get("error", str(error))
        return None

    def answer_llm(self, handler: _Handler, body: Any) -> None:
        if self.llm == "form_protocol":
            handler.send_json(422, {"detail": [{"type": "missing", "loc": ["body", "prompt"], "msg": "Field required",
                                                "input": None}]})
        elif not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            handler.send_json(422, {"detail": [{"loc": ["body", "messages"], "msg": "Field required"}]})
        elif body.get("model") not in ("", None, self.MODEL_ID) and not self.ignore_model:
            handler.send_json(400, {"detail": {"msg": f"model {body.get('model')} is not served here"}})
        elif (error := self.ask_ollama()) is not None:
            handler.send_json(500, {"detail": {"msg": f"Ollama answered 404: {error}"}})
        elif self.llm == "form_answer":
            handler.send_json(200, {"response": "OK", "tokens_used": 2})
        elif self.llm == "500":
            handler.send_json(500, {"detail": {"msg": "internal fault"}})
        elif self.llm == "slow" and self.released.wait(self.llm_delay):
            return
        elif self.llm == "malformed":
            handler.send_json(200, {"id": "chatcmpl-1", "model": self.MODEL_ID, "text": "OK"})
        elif body.get("stream"):
            self.stream(handler)
        else:
            handler.send_json(200, self.response(finish_reason="stop", message={"role": "assistant", "content": "OK"}))

    def stream(self, handler: _Handler) -> None:
        handler.start_chunked("text/event-stream; charset=utf-8")
        for text, reason in (("O", ""), ("K", ""), ("", "stop")):
            event = self.response(finish_reason=reason, delta={"role": "assistant", "content": text})
            if self.llm == "no_choices_event" and text == "K":
                event = {"error": {"message": "CUDA out of memory", "code": 500}}
            handler.send_chunk(b"data: " + json.dumps(event).encode() + b"\n\n")
        if self.llm != "no_done":
            handler.send_chunk(b"data: [DONE]\n\n")
        handler.end_chunked()


class FakeClock:
    """Stands in for module_utils.http.CLOCK: time moves only when the code under test sleeps.

    Deadlines and retry counts then do not depend on how busy the machine is; requests
    still go to real local servers, with real (generous) socket timeouts.
    """

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def run_module(main, args: dict[str, Any]) -> dict[str, Any]:
    """Run an Ansible module's main() in this process; its JSON result, with `failed` set on failure."""
    output = io.StringIO()
    with patch_module_args(args), contextlib.redirect_stdout(output):
        try:
            main()
        except SystemExit:
            pass
    return json.loads(output.getvalue())
