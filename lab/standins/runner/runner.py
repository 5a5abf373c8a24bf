#!/usr/bin/env python3
"""LLM runner: lpfleet-lab stand-in for an Ollama-based Livepeer runner.

Speaks the runner contract go-livepeer uses with every AI runner (livepeer/ai-runner's
OpenAPI document) for the `llm` pipeline, and translates `/llm` to Ollama's `/api/chat`,
the way the Ollama-based runner (tztcloud/livepeer-ollama-runner) does:

    GET  /health          200 {"status": "OK"} when Ollama answers, {"status": "ERROR"} when it does not
                          ("LOADING" while the default model is missing, with RUNNER_REQUIRE_MODEL=1)
    GET  /hardware/info   {pipeline, model_id, gpu_info: {"0": {id, name, memory_total, memory_free, major, minor}}}
    GET  /hardware/stats  {pipeline, model_id, gpu_stats: {"0": {..., utilization_compute, utilization_memory}}}
    GET  /version         {pipeline: "llm", model_id, version}
    POST /llm             LLMRequest -> LLMResponse, or text/event-stream chunks ending with `data: [DONE]`

GPU data comes from NVML (libnvidia-ml.so.1 through ctypes) when it loads, else from
`nvidia-smi --query-gpu`, else gpu_info is empty.

Environment: PORT (8000), HOST (0.0.0.0), OLLAMA_BASE_URL (http://ollama:11434),
MODEL_ID (the Hugging Face id served when a request names no model; default
meta-llama/Meta-Llama-3.1-8B-Instruct), AUTH_TOKEN (bearer token required on /llm when
set), RUNNER_MODEL_MAP (JSON object of extra Hugging Face id -> Ollama tag entries),
RUNNER_REQUIRE_MODEL (1: /health says LOADING until Ollama has the default model),
RUNNER_OLLAMA_TIMEOUT (seconds for one /api/chat call, default 300).

Lab-only misbehaviour switches (RUNNER_LAB_*; lpfleet never sets them, no real image reads them).
Each makes the stand-in misbehave in one way an unknown runner image might, so that a lab test
can show lpfleet's `verify` catching it:
  RUNNER_LAB_ASK_TAG=<tag>     ask Ollama for this tag whatever the mapping says (another tag that is
                               present, or one that is absent)
  RUNNER_LAB_PULL=1            pull the tag it asks for before answering (its own download)
  RUNNER_LAB_IGNORE_MODEL=1    ignore the request's `model`: always serve MODEL_ID (and say so)
  RUNNER_LAB_IGNORE_TOKEN=1    serve requests without the AUTH_TOKEN
  RUNNER_LAB_HEALTH_TEXT=1     answer /health 200 with text/plain "OK"
  RUNNER_LAB_PROTOCOL=2024     speak go-livepeer's pre-2025 /llm protocol (a form with prompt, model_id;
                               answers {"response", "tokens_used"}); a JSON body gets 422
  RUNNER_LAB_OLLAMA_URL=<url>  talk to this Ollama instead of OLLAMA_BASE_URL (another GPU's, in per_gpu)

Only the Python standard library is used. This is a stand-in for the lpfleet lab.
"""

from __future__ import annotations

import ctypes
import hmac
import http.client
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

VERSION = "0.1.1-lpfleet-lab-stand-in"
STAND_IN = "lpfleet-lab stand-in"
PIPELINE = "llm"
DEFAULT_MODEL_ID = "meta-llama/Meta-Llama-3.1-8B-Instruct"

# Hugging Face ids (what aiModels.json and go-livepeer use) -> Ollama tags (the Livepeer docs' table).
BUILTIN_MODEL_MAP = {
    "meta-llama/Meta-Llama-3.1-8B-Instruct": "llama3.1:8b",
    "mistralai/Mistral-7B-Instruct-v0.3": "mistral:7b",
    "google/gemma-2-9b-it": "gemma2:9b",
    "meta-llama/Meta-Llama-3.1-70B-Instruct": "llama3.1:70b",
}


class ConfigError(ValueError):
    """A bad environment variable: the runner refuses to start."""


class Config:
    def __init__(self, environ: dict[str, str]) -> None:
        self.host = environ.get("HOST", "0.0.0.0")
        self.port = int(environ.get("PORT", "8000"))
        self.ollama_url = (environ.get("OLLAMA_BASE_URL") or "http://ollama:11434").rstrip("/")
        self.model_id = environ.get("MODEL_ID") or DEFAULT_MODEL_ID
        self.auth_token = environ.get("AUTH_TOKEN") or ""
        self.require_model = environ.get("RUNNER_REQUIRE_MODEL", "").lower() in ("1", "true", "yes")
        self.ollama_timeout = float(environ.get("RUNNER_OLLAMA_TIMEOUT", "300"))
        self.model_map = dict(BUILTIN_MODEL_MAP)
        extra = environ.get("RUNNER_MODEL_MAP", "").strip()
        if extra:
            try:
                parsed = json.loads(extra)
            except ValueError as exc:
                raise ConfigError(f"RUNNER_MODEL_MAP is not valid JSON: {exc}") from exc
            if not isinstance(parsed, dict) or not all(
                isinstance(k, str) and isinstance(v, str) and v for k, v in parsed.items()
            ):
                raise ConfigError('RUNNER_MODEL_MAP must be a JSON object of strings, e.g. {"org/Model": "tag:size"}')
            self.model_map.update(parsed)
        self.read_lab_switches(environ)
        if urlsplit(self.ollama_url).scheme not in ("http", "https"):
            raise ConfigError(f"OLLAMA_BASE_URL must be an http(s) URL, got {self.ollama_url!r}")


    def read_lab_switches(self, environ: dict[str, str]) -> None:
        """The RUNNER_LAB_* misbehaviours (module docstring)."""

        def switch(name: str) -> bool:
            return environ.get(name, "").lower() in ("1", "true", "yes")

        self.lab_ask_tag = environ.get("RUNNER_LAB_ASK_TAG", "").strip()
        self.lab_pull = switch("RUNNER_LAB_PULL")
        self.lab_ignore_model = switch("RUNNER_LAB_IGNORE_MODEL")
        self.lab_ignore_token = switch("RUNNER_LAB_IGNORE_TOKEN")
        self.lab_health_text = switch("RUNNER_LAB_HEALTH_TEXT")
        self.lab_protocol = environ.get("RUNNER_LAB_PROTOCOL", "").strip() or "current"
        if self.lab_protocol not in ("current", "2024"):
            raise ConfigError(f"RUNNER_LAB_PROTOCOL must be 2024 or empty, got {self.lab_protocol!r}")
        if environ.get("RUNNER_LAB_OLLAMA_URL", "").strip():
            self.ollama_url = environ["RUNNER_LAB_OLLAMA_URL"].strip().rstrip("/")

    def lab_switches(self) -> list[str]:
        """The misbehaviours switched on, for the start-up log line."""
        names = {"ask_tag": self.lab_ask_tag, "pull": self.lab_pull, "ignore_model": self.lab_ignore_model,
                 "ignore_token": self.lab_ignore_token, "health_text": self.lab_health_text,
                 "protocol_2024": self.lab_protocol == "2024"}
        return [name for name, on in names.items() if on]


# ---------------------------------------------------------------------------------------------
# GPU information: NVML through ctypes, else nvidia-smi
# ---------------------------------------------------------------------------------------------


class NvmlMemory(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]


class NvmlUtilization(ctypes.Structure):
    _fields_ = [("gpu", ctypes.c_uint), ("memory", ctypes.c_uint)]


def nvml_gpus() -> list[dict[str, Any]] | None:
    """Per-GPU facts from libnvidia-ml.so.1, or None when NVML is not usable."""
    try:
        lib = ctypes.CDLL("libnvidia-ml.so.1")
        init = getattr(lib, "nvmlInit_v2", None) or lib.nvmlInit
        if init() != 0:
            return None
    except (OSError, AttributeError):
        return None
    try:
        count = ctypes.c_uint()
        if lib.nvmlDeviceGetCount_v2(ctypes.byref(count)) != 0:
            return None
        return [_nvml_device(lib, index) for index in range(count.value)]
    except (OSError, AttributeError):
        return None
    finally:
        try:
            lib.nvmlShutdown()
        except (OSError, AttributeError):
            pass


def _nvml_device(lib: ctypes.CDLL, index: int) -> dict[str, Any]:
    handle = ctypes.c_void_p()
    if lib.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(index), ctypes.byref(handle)) != 0:
        raise OSError(f"nvmlDeviceGetHandleByIndex({index}) failed")
    name = ctypes.create_string_buffer(96)
    uuid_buffer = ctypes.create_string_buffer(96)
    lib.nvmlDeviceGetName(handle, name, ctypes.c_uint(96))
    lib.nvmlDeviceGetUUID(handle, uuid_buffer, ctypes.c_uint(96))
    memory = NvmlMemory()
    lib.nvmlDeviceGetMemoryInfo(handle, ctypes.byref(memory))
    major, minor = ctypes.c_int(), ctypes.c_int()
    lib.nvmlDeviceGetCudaComputeCapability(handle, ctypes.byref(major), ctypes.byref(minor))
    utilization = NvmlUtilization()
    lib.nvmlDeviceGetUtilizationRates(handle, ctypes.byref(utilization))
    return {
        "index": index,
        "id": uuid_buffer.value.decode(errors="replace"),
        "name": name.value.decode(errors="replace"),
        "memory_total": int(memory.total),
        "memory_free": int(memory.free),
        "major": major.value,
        "minor": minor.value,
        "utilization_compute": int(utilization.gpu),
        "utilization_memory": int(utilization.memory),
    }


SMI_FIELDS = "index,uuid,name,memory.total,memory.free,utilization.gpu,utilization.memory"


def smi_gpus() -> list[dict[str, Any]] | None:
    """The same facts from `nvidia-smi --query-gpu` (memory in MiB there, bytes here)."""
    if shutil.which("nvidia-smi") is None:
        return None
    for fields in (SMI_FIELDS + ",compute_cap", SMI_FIELDS):
        try:
            done = subprocess.run(
                ["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode == 0:
            return [_smi_row(line) for line in done.stdout.splitlines() if line.strip()]
    return None


def _number(text: str) -> int:
    try:
        return int(float(text))
    except ValueError:
        return 0


def _smi_row(line: str) -> dict[str, Any]:
    cells = [cell.strip() for cell in line.split(",")]
    cells += [""] * (8 - len(cells))
    major, _, minor = cells[7].partition(".")
    return {
        "index": _number(cells[0]),
        "id": cells[1],
        "name": cells[2],
        "memory_total": _number(cells[3]) * 1024 * 1024,
        "memory_free": _number(cells[4]) * 1024 * 1024,
        "utilization_compute": _number(cells[5]),
        "utilization_memory": _number(cells[6]),
        "major": _number(major),
        "minor": _number(minor),
    }


def gpus() -> list[dict[str, Any]]:
    found = nvml_gpus()
    if found is None:
        found = smi_gpus()
    return found or []


# ---------------------------------------------------------------------------------------------
# LLMRequest validation, FastAPI/pydantic style
# ---------------------------------------------------------------------------------------------

TRUE_WORDS = {"1", "on", "t", "true", "y", "yes"}
FALSE_WORDS = {"0", "off", "f", "false", "n", "no"}
LLM_DEFAULTS = {"model": "", "temperature": 0.7, "max_tokens": 256, "top_p": 1.0, "top_k": -1, "stream": False}


def _error(kind: str, loc: list[Any], msg: str, value: Any) -> dict[str, Any]:
    return {"type": kind, "loc": ["body", *loc], "msg": msg, "input": value}


def _parsed(text: str, convert: Any, kind: str, msg: str, loc: list[Any], errors: list[dict[str, Any]]) -> Any:
    """TEXT (stripped) through CONVERT, as pydantic parses a number from a string; None and an error if it fails."""
    try:
        return convert(text.strip())
    except ValueError:
        errors.append(_error(kind, loc, msg, text))
        return None


def _as_float(value: Any, loc: list[Any], errors: list[dict[str, Any]]) -> float | None:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return _parsed(value, float, "float_parsing",
                       "Input should be a valid number, unable to parse string as a number", loc, errors)
    errors.append(_error("float_type", loc, "Input should be a valid number", value))
    return None


def _as_int(value: Any, loc: list[Any], errors: list[dict[str, Any]]) -> int | None:
    if isinstance(value, bool) or isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        errors.append(
            _error("int_from_float", loc, "Input should be a valid integer, got a number with a fractional part", value)
        )
        return None
    if isinstance(value, str):
        return _parsed(value, int, "int_parsing",
                       "Input should be a valid integer, unable to parse string as an integer", loc, errors)
    errors.append(_error("int_type", loc, "Input should be a valid integer", value))
    return None


def _as_bool(value: Any, loc: list[Any], errors: list[dict[str, Any]]) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    kind = "bool_type" if value is None or isinstance(value, (list, dict)) else "bool_parsing"
    msg = "Input should be a valid boolean" + ("" if kind == "bool_type" else ", unable to interpret input")
    errors.append(_error(kind, loc, msg, value))
    return None


def _as_str(value: Any, loc: list[Any], errors: list[dict[str, Any]]) -> str | None:
    if isinstance(value, str):
        return value
    errors.append(_error("string_type", loc, "Input should be a valid string", value))
    return None


def _messages(value: Any, errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    if not isinstance(value, list):
        errors.append(_error("list_type", ["messages"], "Input should be a valid list", value))
        return []
    messages = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            errors.append(
                _error(
                    "model_attributes_type",
                    ["messages", index],
                    "Input should be a valid dictionary or object to extract fields from",
                    item,
                )
            )
            continue
        message = {}
        for field in ("role", "content"):
            if field not in item:
                errors.append(_error("missing", ["messages", index, field], "Field required", item))
            else:
                text = _as_str(item[field], ["messages", index, field], errors)
                if text is not None:
                    message[field] = text
        messages.append(message)
    return messages


def validate_llm_request(raw: bytes) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Return (request, []) or (None, FastAPI-style error details)."""
    if not raw.strip():
        return None, [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
    try:
        body = json.loads(raw)
    except ValueError as exc:
        position = getattr(exc, "pos", 0)
        return None, [
            {
                "type": "json_invalid",
                "loc": ["body", position],
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": getattr(exc, "msg", str(exc))},
            }
        ]
    if not isinstance(body, dict):
        return None, [
            _error(
                "model_attributes_type", [], "Input should be a valid dictionary or object to extract fields from", body
            )
        ]
    errors: list[dict[str, Any]] = []
    request: dict[str, Any] = dict(LLM_DEFAULTS)
    if "messages" not in body:
        errors.append(_error("missing", ["messages"], "Field required", body))
    else:
        request["messages"] = _messages(body["messages"], errors)
    converters = {
        "model": _as_str,
        "temperature": _as_float,
        "top_p": _as_float,
        "max_tokens": _as_int,
        "top_k": _as_int,
        "stream": _as_bool,
    }
    for field, convert in converters.items():
        if field in body:
            request[field] = convert(body[field], [field], errors)
    return (None, errors) if errors else (request, [])


# ---------------------------------------------------------------------------------------------
# Talking to Ollama
# ---------------------------------------------------------------------------------------------


class OllamaError(Exception):
    """Ollama could not answer; the message goes into {"detail": {"msg": ...}}."""


def ollama_request(
    config: Config, method: str, path: str, body: Any, timeout: float
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    parts = urlsplit(config.ollama_url)
    factory = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = factory(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80), timeout=timeout)
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", "User-Agent": f"livepeer-ollama-runner/{VERSION}"}
    try:
        conn.request(method, parts.path.rstrip("/") + path, body=data, headers=headers)
        return conn, conn.getresponse()
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        raise OllamaError(f"Ollama at {config.ollama_url} is unreachable: {exc}") from exc


def ollama_json(config: Config, method: str, path: str, body: Any = None, timeout: float = 2.0) -> Any:
    conn, response = ollama_request(config, method, path, body, timeout)
    try:
        payload = response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise OllamaError(f"Ollama at {config.ollama_url} stopped answering: {exc}") from exc
    finally:
        conn.close()
    try:
        decoded = json.loads(payload) if payload.strip() else {}
    except ValueError:
        decoded = {"error": payload.decode(errors="replace")[:300]}
    if response.status >= 400:
        raise OllamaError(f"Ollama answered {response.status}: {decoded.get('error', decoded)}")
    return decoded


def health_status(config: Config) -> str:
    try:
        ollama_json(config, "GET", "/api/version")
        if not config.require_model:
            return "OK"
        tags = ollama_json(config, "GET", "/api/tags").get("models", [])
    except OllamaError:
        return "ERROR"
    wanted = config.model_map.get(config.model_id, "")
    names = {entry.get("name") for entry in tags} | {entry.get("model") for entry in tags}
    return "OK" if wanted in names or f"{wanted}:latest" in names else "LOADING"


def chat_body(request: dict[str, Any], tag: str) -> dict[str, Any]:
    options: dict[str, Any] = {
        "temperature": request["temperature"],
        "top_p": request["top_p"],
        "num_predict": request["max_tokens"],
    }
    if request["top_k"] > 0:
        options["top_k"] = request["top_k"]
    return {"model": tag, "messages": request["messages"], "stream": request["stream"], "options": options}


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def finish_reason(done_reason: str | None) -> str:
    return "length" if done_reason == "length" else "stop"


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------


class RunnerServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], config: Config) -> None:
        super().__init__(address, RunnerHandler)
        self.config = config


class RunnerHandler(BaseHTTPRequestHandler):
    server: RunnerServer
    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:
        return f"livepeer-ollama-runner/{VERSION} ({STAND_IN})"

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"INFO:     {self.client_address[0]} - {format % args}\n")

    # -- responses -----------------------------------------------------------------------------

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _detail(self, status: int, msg: str, headers: dict[str, str] | None = None) -> None:
        self._json(status, {"detail": {"msg": msg}}, headers)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # -- routing -------------------------------------------------------------------------------

    GET_ROUTES = {
        "/health": "_health",
        "/hardware/info": "_hardware_info",
        "/hardware/stats": "_hardware_stats",
        "/version": "_version",
    }

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        handler = self.GET_ROUTES.get(path)
        if handler is None:
            self._not_found(path)
            return
        try:
            getattr(self, handler)()
        except Exception as exc:  # noqa: BLE001 - the contract answers 500 {"detail": {"msg"}} on internal faults
            self._detail(500, f"{type(exc).__name__}: {exc}")

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path != "/llm":
            self._read_body()
            self._not_found(path)
            return
        try:
            self._llm()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _not_found(self, path: str) -> None:
        if path == "/llm" or path in self.GET_ROUTES:
            self._json(405, {"detail": "Method Not Allowed"})
        else:
            self._json(404, {"detail": "Not Found"})

    # -- handlers ------------------------------------------------------------------------------

    def _health(self) -> None:
        status = health_status(self.server.config)
        if self.server.config.lab_health_text:
            data = status.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self._json(200, {"status": status})

    def _hardware_info(self) -> None:
        info = {
            str(gpu["index"]): {
                key: gpu[key] for key in ("id", "name", "memory_total", "memory_free", "major", "minor")
            }
            for gpu in gpus()
        }
        self._json(200, {"pipeline": PIPELINE, "model_id": self.server.config.model_id, "gpu_info": info})

    def _hardware_stats(self) -> None:
        keys = ("id", "name", "memory_total", "memory_free", "utilization_compute", "utilization_memory")
        stats = {str(gpu["index"]): {key: gpu[key] for key in keys} for gpu in gpus()}
        self._json(200, {"pipeline": PIPELINE, "model_id": self.server.config.model_id, "gpu_stats": stats})

    def _version(self) -> None:
        self._json(200, {"pipeline": PIPELINE, "model_id": self.server.config.model_id, "version": VERSION})

    def _authorized(self) -> bool:
        token = self.server.config.auth_token
        if not token or self.server.config.lab_ignore_token:
            return True
        scheme, _, credentials = (self.headers.get("Authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), token.encode())

    def _llm(self) -> None:
        config = self.server.config
        if config.lab_protocol == "2024":
            self._llm_2024()
            return
        request, errors = validate_llm_request(self._read_body())
        if request is None:
            self._json(422, {"detail": errors})
            return
        if not self._authorized():
            self._detail(401, "Invalid bearer token", {"WWW-Authenticate": "Bearer"})
            return
        model_id = config.model_id if config.lab_ignore_model else (request["model"] or config.model_id)
        tag = config.model_map.get(model_id)
        if tag is None:
            known = ", ".join(sorted(config.model_map))
            self._detail(400, f"Model '{model_id}' is not served by this runner; it serves: {known}")
            return
        tag = config.lab_ask_tag or tag
        if config.lab_pull:
            try:
                ollama_json(config, "POST", "/api/pull", {"model": tag, "stream": False}, timeout=config.ollama_timeout)
            except OllamaError as exc:
                self._detail(500, str(exc))
                return
        if request["stream"]:
            self._llm_stream(request, model_id, tag)
        else:
            self._llm_once(request, model_id, tag)

    def _llm_2024(self) -> None:
        """go-livepeer's /llm before 2025-01-27: a form (prompt, model_id, ...), answered {response, tokens_used}."""
        config = self.server.config
        raw = self._read_body()
        form_type = "application/x-www-form-urlencoded"
        if (self.headers.get("Content-Type") or "").split(";")[0].strip().lower() != form_type:
            missing = {"type": "missing", "loc": ["body", "prompt"], "msg": "Field required", "input": None}
            self._json(422, {"detail": [missing]})
            return
        form = {key: values[0] for key, values in parse_qs(raw.decode(errors="replace")).items()}
        if not self._authorized():
            self._detail(401, "Invalid bearer token", {"WWW-Authenticate": "Bearer"})
            return
        model_id = form.get("model_id") or config.model_id
        tag = config.lab_ask_tag or config.model_map.get(model_id, "")
        body = {"model": tag, "messages": [{"role": "user", "content": form.get("prompt", "")}], "stream": False}
        try:
            answer = ollama_json(config, "POST", "/api/chat", body, timeout=config.ollama_timeout)
        except OllamaError as exc:
            self._detail(500, str(exc))
            return
        content = (answer.get("message") or {}).get("content", "")
        self._json(200, {"response": content, "tokens_used": int(answer.get("eval_count") or 0)})

    def _llm_once(self, request: dict[str, Any], model_id: str, tag: str) -> None:
        config = self.server.config
        try:
            answer = ollama_json(config, "POST", "/api/chat", chat_body(request, tag), timeout=config.ollama_timeout)
        except OllamaError as exc:
            self._detail(500, str(exc))
            return
        content = (answer.get("message") or {}).get("content", "")
        self._json(
            200,
            {
                "id": f"chatcmpl-{uuid.uuid4()}",
                "model": model_id,
                "created": int(time.time()),
                "usage": usage(int(answer.get("prompt_eval_count") or 0), int(answer.get("eval_count") or 0)),
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": finish_reason(answer.get("done_reason")),
                        "message": {"role": "assistant", "content": content},
                    }
                ],
            },
        )

    def _llm_stream(self, request: dict[str, Any], model_id: str, tag: str) -> None:
        config = self.server.config
        try:
            conn, response = ollama_request(config, "POST", "/api/chat", chat_body(request, tag), config.ollama_timeout)
        except OllamaError as exc:
            self._detail(500, str(exc))
            return
        try:
            if response.status != 200:
                payload = response.read().decode(errors="replace")
                self._detail(500, f"Ollama answered {response.status}: {payload.strip()[:300]}")
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for event in stream_events(response, model_id):
                self._chunk(f"data: {event}\n\n".encode())
            self._chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        finally:
            conn.close()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def ollama_lines(response: http.client.HTTPResponse) -> Iterator[bytes]:
    """Non-empty NDJSON lines; a connection that breaks mid-stream just ends them."""
    try:
        for line in response:
            if line.strip():
                yield line
    except (OSError, http.client.HTTPException):
        return


def stream_events(response: http.client.HTTPResponse, model_id: str) -> Iterator[str]:
    """Ollama's NDJSON chat stream as LLMResponse chunks with choices[].delta."""
    chunk_id = f"chatcmpl-{uuid.uuid4()}"
    created = int(time.time())
    completion = 0

    def event(content: str, reason: str, counts: dict[str, int]) -> str:
        choice = {"index": 0, "delta": {"role": "assistant", "content": content}, "finish_reason": reason}
        return json.dumps({"id": chunk_id, "model": model_id, "created": created, "usage": counts, "choices": [choice]})

    for line in ollama_lines(response):
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if item.get("error"):
            yield event("", "error", usage(0, completion))
            return
        if item.get("done"):
            counts = usage(int(item.get("prompt_eval_count") or 0), int(item.get("eval_count") or completion))
            yield event("", finish_reason(item.get("done_reason")), counts)
            return
        completion += 1
        yield event((item.get("message") or {}).get("content", ""), "", usage(0, completion))
    yield event("", "error", usage(0, completion))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if args and args[0] in ("-v", "--version"):
        print(f"livepeer-ollama-runner {VERSION} ({STAND_IN})")
        return 0
    try:
        config = Config(dict(os.environ))
    except (ConfigError, ValueError) as exc:
        print(f"runner.py: {exc}", file=sys.stderr)
        return 2
    server = RunnerServer((config.host, config.port), config)
    print(
        f"INFO:     {STAND_IN} LLM runner {VERSION} on http://{config.host}:{server.server_address[1]} "
        f"(model {config.model_id}, Ollama {config.ollama_url}, auth {'on' if config.auth_token else 'off'}, "
        f"lab misbehaviours: {', '.join(config.lab_switches()) or 'none'})",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
