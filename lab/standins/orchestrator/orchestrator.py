#!/usr/bin/env python3
"""go-livepeer orchestrator start-up: lpfleet-lab stand-in.

Reads an `-aiModels` file the way go-livepeer's `starter.go` and `core/ai.go` do and
probes the external runners it names the way `ai/worker/container.go` does, then says
whether the node would start and what it would advertise. It never sends an inference
request (no `/llm`).

What it reproduces (see shared/contracts/go-livepeer-aimodels.md):
- `-aiModels`: a JSON file, or an inline `pipeline:model_id:warm,...` string when the
  path does not exist; Go's encoding/json rules: case-insensitive keys, unknown keys
  ignored, wrong JSON types and syntax errors fatal with Go's messages;
- `price_per_unit` / `pixels_per_unit` read from the raw JSON token like
  `big.Rat.SetString` (numbers yes, strings no); a missing or negative price and a
  pixels_per_unit that is not a positive integer stop the node (unless `-network offchain`);
- pipelines map to capabilities by name (`llm` and `Llm` yes, `LLM` no; a warm managed `Llm` crashes);
  the same model_id warm and cold panics;
- managed (no `url`) warm entries each take one of `GPU count x -aiRunnerContainersPerGPU`
  slots (one emulated slot without `-nvidia`); none left stops the node. go-livepeer's
  allocation rule: warm managed containers are started in file order, each on the first free
  device of the `-nvidia` list, so the n-th warm managed entry gets the n-th listed GPU; the
  report's `warm_gpus` says which GPU each warm container got;
- for each `url` entry: `GET {url}/health` every 500 ms, 5 s per try, up to `-maxWait`
  seconds (go-livepeer: 2 minutes); ready = 200 with a JSON content type and a status
  other than ERROR (LOADING noted); then `/hardware/info` and `/version`; the entry's
  `token` is sent as a bearer token.

Usage:
    orchestrator.py check -aiModels PATH [-nvidia 0,1|all] [-maxWait 120] [flags]
        prints a JSON report {ok, registered, warnings, errors, fatal, ...};
        exit 0 only when the node would start (1: error exit, 2: panic)
    orchestrator.py serve -aiModels PATH [...] [-httpAddr 0.0.0.0:8935] [-stayUp]
        does the same at start-up, then serves the report on GET /status; exits like
        go-livepeer when start-up fails unless -stayUp is given: status 0 after its error
        exits (`Error parsing -aiModels ...`, `Error AI worker warming ...`: go-livepeer logs the
        error and returns from main), 2 after a panic (contract, "How the node ends")

Only the Python standard library is used. This is a stand-in for the lpfleet lab, not go-livepeer.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

VERSION = "0.8.8-lpfleet-lab-stand-in"
STAND_IN = "lpfleet-lab stand-in"

# go-livepeer's capability names (core/capabilities.go, CapabilityNameLookup) of the AI pipelines. A pipeline
# is looked up by name: first letter upper case, "-" as a space, so "Llm" and "text to image" pass the lookup
# too; a transcoding capability's name also passes it ("H.264", the contract's example; the others are left
# out). The AI pipelines spelled exactly are these names the other way round (a warm managed entry needs one).
AI_CAPABILITY_NAMES = ("Text to image", "Image to image", "Image to video", "Upscale", "Audio to text",
                       "Segment anything 2", "Llm", "Image to text", "Live video to video", "Text to speech")
TRANSCODING_CAPABILITY_NAMES = ("H.264",)
AI_PIPELINES = tuple(name.lower().replace(" ", "-") for name in AI_CAPABILITY_NAMES)


def capability_name(pipeline: str) -> str:
    """The name go-livepeer looks PIPELINE up by."""
    return pipeline[:1].upper() + pipeline[1:].replace("-", " ")


PRICE_FEED = ("ETH", "USD")
WEI_PER_ETH = 10**18


# ---------------------------------------------------------------------------------------------
# Go's encoding/json: syntax check with Go's messages, then a tree that keeps raw tokens
# ---------------------------------------------------------------------------------------------


class GoJSONError(Exception):
    """An error whose text is what Go's encoding/json (or go-livepeer) prints."""


WHITESPACE = b" \t\n\r"


def quote_char(byte: int) -> str:
    """Go's scanner quoteChar."""
    if byte == ord("'"):
        return "'\\''"
    if byte == ord('"'):
        return "'\"'"
    char = chr(byte)
    escapes = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v", "\\": "\\\\"}
    if char in escapes:
        return f"'{escapes[char]}'"
    if char.isprintable():
        return f"'{char}'"
    return f"'\\x{byte:02x}'" if byte < 0x80 else f"'\\u{byte:04x}'"


@dataclasses.dataclass
class Node:
    kind: str  # object, array, string, number, true, false, null
    raw: bytes
    value: Any = None  # str for strings; list[tuple[str, Node]] for objects; list[Node] for arrays

    @property
    def go_kind(self) -> str:
        return {"true": "bool", "false": "bool"}.get(self.kind, self.kind)


class GoJSONParser:
    """A recursive-descent reader that fails on the same byte, with the same words, as Go's scanner."""

    LITERALS = {ord("t"): b"true", ord("f"): b"false", ord("n"): b"null"}

    def __init__(self, data: bytes) -> None:
        self.data = data

    def parse(self) -> Node:
        node, end = self.value(0)
        end = self.skip(end)
        if end < len(self.data):
            self.fail(end, "after top-level value")
        return node

    def fail(self, index: int, context: str) -> None:
        if index >= len(self.data):
            raise GoJSONError("unexpected end of JSON input")
        raise GoJSONError(f"invalid character {quote_char(self.data[index])} {context}")

    def skip(self, index: int) -> int:
        while index < len(self.data) and self.data[index] in WHITESPACE:
            index += 1
        return index

    def peek(self, index: int) -> int:
        if index >= len(self.data):
            raise GoJSONError("unexpected end of JSON input")
        return self.data[index]

    def value(self, index: int) -> tuple[Node, int]:
        index = self.skip(index)
        char = self.peek(index)
        if char == ord("{"):
            return self.object(index)
        if char == ord("["):
            return self.array(index)
        if char == ord('"'):
            return self.string(index)
        if char == ord("-") or ord("0") <= char <= ord("9"):
            return self.number(index)
        if char in self.LITERALS:
            return self.literal(index, self.LITERALS[char])
        self.fail(index, "looking for beginning of value")
        raise AssertionError("unreachable")

    def object(self, start: int) -> tuple[Node, int]:
        members: list[tuple[str, Node]] = []
        index = self.skip(start + 1)
        if self.peek(index) == ord("}"):
            return Node("object", self.data[start : index + 1], members), index + 1
        while True:
            index = self.skip(index)
            if self.peek(index) != ord('"'):
                self.fail(index, "looking for beginning of object key string")
            key, index = self.string(index)
            index = self.skip(index)
            if self.peek(index) != ord(":"):
                self.fail(index, "after object key")
            member, index = self.value(index + 1)
            members.append((key.value, member))
            index = self.skip(index)
            char = self.peek(index)
            if char == ord("}"):
                return Node("object", self.data[start : index + 1], members), index + 1
            if char != ord(","):
                self.fail(index, "after object key:value pair")
            index += 1

    def array(self, start: int) -> tuple[Node, int]:
        items: list[Node] = []
        index = self.skip(start + 1)
        if self.peek(index) == ord("]"):
            return Node("array", self.data[start : index + 1], items), index + 1
        while True:
            item, index = self.value(index)
            items.append(item)
            index = self.skip(index)
            char = self.peek(index)
            if char == ord("]"):
                return Node("array", self.data[start : index + 1], items), index + 1
            if char != ord(","):
                self.fail(index, "after array element")
            index += 1

    def string(self, start: int) -> tuple[Node, int]:
        index = start + 1
        while True:
            char = self.peek(index)
            if char == ord('"'):
                raw = self.data[start : index + 1]
                return Node("string", raw, json.loads(raw.decode("utf-8", "replace"))), index + 1
            if char == ord("\\"):
                index = self.escape(index + 1)
                continue
            if char < 0x20:
                self.fail(index, "in string literal")
            index += 1

    def escape(self, index: int) -> int:
        char = self.peek(index)
        if char in b'bfnrt\\/"':
            return index + 1
        if char != ord("u"):
            self.fail(index, "in string escape code")
        for offset in range(1, 5):
            if self.peek(index + offset) not in b"0123456789abcdefABCDEF":
                self.fail(index + offset, "in \\u hexadecimal character escape")
        return index + 5

    def digits(self, index: int) -> int:
        while index < len(self.data) and ord("0") <= self.data[index] <= ord("9"):
            index += 1
        return index

    def number(self, start: int) -> tuple[Node, int]:
        index = start
        if self.data[index] == ord("-"):
            index += 1
            if not (ord("0") <= self.peek(index) <= ord("9")):
                self.fail(index, "in numeric literal")
        index = index + 1 if self.data[index] == ord("0") else self.digits(index)
        if index < len(self.data) and self.data[index] == ord("."):
            index += 1
            if not (ord("0") <= self.peek(index) <= ord("9")):
                self.fail(index, "after decimal point in numeric literal")
            index = self.digits(index)
        if index < len(self.data) and self.data[index] in b"eE":
            index += 1
            if self.peek(index) in b"+-":
                index += 1
            if not (ord("0") <= self.peek(index) <= ord("9")):
                self.fail(index, "in exponent of numeric literal")
            index = self.digits(index)
        return Node("number", self.data[start:index]), index

    def literal(self, start: int, word: bytes) -> tuple[Node, int]:
        for offset in range(1, len(word)):
            if self.peek(start + offset) != word[offset]:
                expected = chr(word[offset])
                self.fail(start + offset, f"in literal {word.decode()} (expecting '{expected}')")
        return Node(word.decode(), word), start + len(word)


# ---------------------------------------------------------------------------------------------
# Decoding into []core.AIModelConfig with Go's semantics
# ---------------------------------------------------------------------------------------------

STRING, BOOL, INT, RAT, FLAGS = "string", "bool", "int", "rat", "flags"
CONFIG_FIELDS = (
    ("pipeline", STRING),
    ("model_id", STRING),
    ("url", STRING),
    ("token", STRING),
    ("warm", BOOL),
    ("capacity", INT),
    ("optimization_flags", FLAGS),
    ("gateway", STRING),
    ("price_per_unit", RAT),
    ("pixels_per_unit", RAT),
    ("currency", STRING),
)
GO_TYPES = {STRING: "string", BOOL: "bool", INT: "int", FLAGS: "worker.OptimizationFlags"}
INT64 = (-(2**63), 2**63 - 1)


@dataclasses.dataclass
class AIModelConfig:
    pipeline: str = ""
    model_id: str = ""
    url: str = ""
    token: str = ""
    warm: bool = False
    capacity: int = 0
    optimization_flags: dict[str, str] | None = None
    gateway: str = ""
    price_per_unit: Fraction | None = None
    pixels_per_unit: Fraction | None = None
    currency: str = ""


def type_error(value: str, go_type: str, field: str | None = None) -> str:
    if field is None:
        return f"json: cannot unmarshal {value} into Go value of type {go_type}"
    return f"json: cannot unmarshal {value} into Go struct field AIModelConfig.{field} of type {go_type}"


def match_field(key: str) -> tuple[str, str] | None:
    """Exact match first, then case-insensitive, like encoding/json."""
    for field in CONFIG_FIELDS:
        if field[0] == key:
            return field
    for field in CONFIG_FIELDS:
        if field[0].lower() == key.lower():
            return field
    return None


class ConfigDecoder:
    """json.Unmarshal(data, &[]AIModelConfig): the first type error is kept, unmarshaler errors abort."""

    def __init__(self) -> None:
        self.saved: str | None = None

    def save(self, message: str) -> None:
        self.saved = self.saved or message

    def decode(self, root: Node) -> list[AIModelConfig]:
        configs: list[AIModelConfig] = []
        if root.kind == "array":
            for item in root.value:
                config = AIModelConfig()
                if item.kind == "object":
                    self.decode_object(item, config)
                elif item.kind != "null":
                    self.save(type_error(item.go_kind, "core.AIModelConfig"))
                configs.append(config)
        elif root.kind != "null":
            self.save(type_error(root.go_kind, "[]core.AIModelConfig"))
        if self.saved:
            raise GoJSONError(self.saved)
        return configs

    def decode_object(self, node: Node, config: AIModelConfig) -> None:
        for key, value in node.value:
            field = match_field(key)
            if field is None:
                continue
            name, kind = field
            if kind == RAT:
                setattr(config, name, self.rat(value))
            elif kind == FLAGS:
                self.flags(value, config)
            elif value.kind != "null":
                decoded = self.scalar(value, name, kind)
                if decoded is not None:
                    setattr(config, name, decoded)

    def scalar(self, value: Node, name: str, kind: str) -> Any:
        if kind == STRING and value.kind == "string":
            return value.value
        if kind == BOOL and value.kind in ("true", "false"):
            return value.kind == "true"
        if kind == INT and value.kind == "number":
            text = value.raw.decode()
            if re.fullmatch(r"-?\d+", text) and INT64[0] <= int(text) <= INT64[1]:
                return int(text)
            self.save(type_error(f"number {text}", "int", name))
            return None
        self.save(type_error(value.go_kind, GO_TYPES[kind], name))
        return None

    @staticmethod
    def rat(value: Node) -> Fraction:
        """JSONRat.UnmarshalJSON: big.Rat.SetString on the raw token."""
        if value.kind != "number":
            raise GoJSONError(f"value is not a number: {value.raw.decode('utf-8', 'replace')}")
        return Fraction(value.raw.decode())

    def flags(self, value: Node, config: AIModelConfig) -> None:
        if value.kind == "null":
            config.optimization_flags = None
            return
        if value.kind != "object":
            self.save(type_error(value.go_kind, GO_TYPES[FLAGS], "optimization_flags"))
            return
        flags = config.optimization_flags if config.optimization_flags is not None else {}
        for key, item in value.value:
            if item.kind in ("true", "false", "null"):
                flags[key] = "true" if item.kind == "true" else "false"
            elif item.kind == "string":
                flags[key] = item.value
            else:  # EnvValue.UnmarshalJSON's error aborts the decode
                raise GoJSONError(type_error(item.go_kind, "string", "optimization_flags"))
        config.optimization_flags = flags


def parse_bool_go(text: str) -> bool:
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise GoJSONError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


def parse_ai_model_configs(value: str) -> list[AIModelConfig]:
    """core.ParseAIModelConfigs: a file path, else an inline pipeline:model_id:warm list."""
    if os.path.isfile(value):
        with open(value, "rb") as handle:
            data = handle.read()
        return ConfigDecoder().decode(GoJSONParser(data).parse())
    configs = []
    for item in value.split(","):
        parts = item.split(":")
        if len(parts) < 3:
            raise GoJSONError("invalid AI model config expected <pipeline>:<model_id>:<warm>")
        configs.append(AIModelConfig(pipeline=parts[0], model_id=parts[1], warm=parse_bool_go(parts[2])))
    return configs


def float_string(value: Fraction, precision: int = 2) -> str:
    """big.Rat.FloatString: rounded to nearest, halves away from zero."""
    scaled = abs(value) * 10**precision
    whole, remainder = divmod(scaled.numerator, scaled.denominator)
    if 2 * remainder >= scaled.denominator:
        whole += 1
    integer, fraction = divmod(whole, 10**precision)
    return f"{'-' if value < 0 else ''}{integer}.{fraction:0{precision}d}"


# ---------------------------------------------------------------------------------------------
# Probing an external runner like ai/worker/container.go
# ---------------------------------------------------------------------------------------------


class Fatal(Exception):
    """The node stops: `message` is what go-livepeer prints; `panic` selects exit status 2."""

    def __init__(self, message: str, panic: bool = False) -> None:
        super().__init__(message)
        self.message = ("panic: " if panic else "") + message
        self.panic = panic


def go_http_error(url: str, exc: BaseException) -> str:
    """The text of a Go net/http client error for GET url."""
    reason = getattr(exc, "reason", exc)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if isinstance(reason, ConnectionRefusedError):
        detail = f"dial tcp {host}:{port}: connect: connection refused"
    elif isinstance(reason, TimeoutError) or "timed out" in str(reason):
        detail = "context deadline exceeded"
    elif "Name or service not known" in str(reason) or "No address associated" in str(reason):
        detail = f"dial tcp: lookup {host}: no such host"
    elif isinstance(reason, ConnectionResetError):
        detail = "EOF"
    else:
        detail = str(reason)
    return f'Get "{url}": {detail}'


# Runners are reached directly on the node's network, whatever *_proxy variables say.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclasses.dataclass
class HttpAnswer:
    status: int
    content_type: str
    body: bytes


def http_get(url: str, token: str, timeout: float) -> HttpAnswer:
    headers = {"User-Agent": f"go-livepeer/{VERSION} ({STAND_IN})", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, headers=headers, method="GET")
    try:
        with DIRECT.open(request, timeout=max(0.05, timeout)) as response:
            return HttpAnswer(response.status, response.headers.get("Content-Type", ""), response.read())
    except urllib.error.HTTPError as exc:
        return HttpAnswer(exc.code, exc.headers.get("Content-Type", "") if exc.headers else "", exc.read())


def json_answer(answer: HttpAnswer) -> Any:
    """What oapi-codegen's JSON200 would hold: None unless 200 with a JSON content type."""
    if answer.status != 200 or "json" not in answer.content_type:
        return None
    GoJSONParser(answer.body).parse()
    return json.loads(answer.body)


@dataclasses.dataclass
class ProbeResult:
    status: str
    loading: bool
    tries: int
    waited_s: float
    hardware: Any
    version: str | None
    notes: list[str]


class RunnerProbe:
    """runnerWaitUntilReady + getRunnerHardware + VersionWithResponse for one url entry."""

    def __init__(self, url: str, token: str, max_wait: float, interval: float, try_timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.max_wait = max_wait
        self.interval = interval
        self.try_timeout = try_timeout
        self.notes: list[str] = []

    def run(self) -> ProbeResult:
        started = time.monotonic()
        status, tries = self.wait_until_ready(started)
        hardware = self.hardware()
        version = self.version()
        return ProbeResult(
            status, status == "LOADING", tries, round(time.monotonic() - started, 3), hardware, version, self.notes
        )

    def wait_until_ready(self, started: float) -> tuple[str, int]:
        deadline = started + self.max_wait
        last_error: str | None = None
        tries = 0
        next_tick = started + self.interval
        while True:
            if next_tick >= deadline:
                time.sleep(max(0.0, deadline - time.monotonic()))
                raise Fatal(f"timed out waiting for runner: {last_error if last_error else '%!w(<nil>)'}")
            time.sleep(max(0.0, next_tick - time.monotonic()))
            next_tick += self.interval
            tries += 1
            outcome = self.try_health(min(self.try_timeout, deadline - time.monotonic()))
            if isinstance(outcome, str) and outcome.startswith("status:"):
                return outcome.removeprefix("status:"), tries
            last_error = outcome
            next_tick = max(next_tick, time.monotonic())

    def try_health(self, timeout: float) -> str:
        """`status:<S>` when ready, else the error text go-livepeer keeps as lastErr."""
        url = f"{self.url}/health"
        try:
            answer = http_get(url, self.token, timeout)
        except (OSError, urllib.error.URLError) as exc:
            return go_http_error(url, exc)
        if answer.status != 200:
            return f"health check failed with status code {answer.status}"
        if "json" not in answer.content_type:
            raise Fatal(
                "runtime error: invalid memory address or nil pointer dereference "
                f"(GET {url} answered 200 with Content-Type {answer.content_type or '(none)'!r}, "
                "not JSON: go-livepeer reads a nil HealthCheck and crashes; the runner is not ready)",
                panic=True,
            )
        try:
            body = json_answer(answer)
        except GoJSONError as exc:
            return str(exc)
        status = body.get("status", "") if isinstance(body, dict) else ""
        if not isinstance(status, str):
            return type_error("number" if isinstance(status, (int, float)) else "object", "worker.HealthCheckStatus")
        if status == "ERROR":
            raise Fatal("runner is in error state")
        return f"status:{status}"

    def hardware(self) -> Any:
        try:
            return json_answer(http_get(f"{self.url}/hardware/info", self.token, 5.0))
        except (OSError, urllib.error.URLError, GoJSONError) as exc:
            self.notes.append(f"Error getting hardware info for runner: {exc}")
            return None

    def version(self) -> str | None:
        try:
            body = json_answer(http_get(f"{self.url}/version", self.token, 5.0))
        except (OSError, urllib.error.URLError, GoJSONError):
            self.notes.append("version request failed; go-livepeer records 0.0.0")
            return "0.0.0"
        if not isinstance(body, dict):
            return None
        return body.get("version") if isinstance(body.get("version"), str) else None


SEMVER = re.compile(r"^v?\d+(\.\d+){0,2}(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


# ---------------------------------------------------------------------------------------------
# The start-up sequence of starter.go
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Options:
    ai_models: str = ""
    nvidia: str = ""
    max_wait: float = 120.0
    ai_worker: bool = True
    containers_per_gpu: int = 1
    network: str = "arbitrum-one-mainnet"
    price_per_unit: str | None = None
    pixels_per_unit: str = "1"
    eth_usd: float = 3000.0
    health_interval: float = 0.5
    http_addr: str = "0.0.0.0:8935"
    stay_up: bool = False


def detect_gpus() -> list[str]:
    """`-nvidia all`: the GPUs nvidia-smi lists."""
    if shutil.which("nvidia-smi") is None:
        raise Fatal('Error parsing -nvidia for devices: exec: "nvidia-smi": executable file not found in $PATH')
    done = subprocess.run(
        ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    if done.returncode != 0:
        raise Fatal(f"Error parsing -nvidia for devices: nvidia-smi failed: {done.stderr.strip()}")
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


class Startup:
    """Runs the checks in go-livepeer's order and builds the report."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.registered: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        self.errors: list[str] = []
        self.log: list[str] = []
        self.slots: list[str] = []
        self.slot_gpus: list[str] = []
        self.used_slots: list[dict[str, Any]] = []
        self.constraints: dict[tuple[str, str], dict[str, Any]] = {}

    def note(self, message: str) -> None:
        self.log.append(message)
        stamp = time.strftime("%m%d %H:%M:%S")
        sys.stderr.write(f"I{stamp}.000000 1 {STAND_IN}] {message}\n")

    def run(self) -> dict[str, Any]:
        fatal: Fatal | None = None
        try:
            self.start()
        except Fatal as exc:
            fatal = exc
            self.note(exc.message)
        return self.report(fatal)

    def report(self, fatal: Fatal | None) -> dict[str, Any]:
        return {
            "ok": fatal is None,
            "stand_in": f"go-livepeer orchestrator ({STAND_IN})",
            "version": VERSION,
            "aiModels": self.options.ai_models,
            "network": self.options.network,
            "gpu_slots": {"total": len(self.slots), "used": self.used_slots},
            "warm_gpus": [{"index": entry["index"], "pipeline": entry["pipeline"], "model_id": entry["model_id"],
                           "gpu": slot["gpu"]}
                          for entry in self.registered for slot in self.used_slots
                          if slot["entry_index"] == entry["index"]],
            "registered": self.registered,
            "warnings": self.warnings,
            "errors": self.errors,
            "fatal": fatal.message if fatal else None,
            "exit_status": 0 if fatal is None else (2 if fatal.panic else 1),
            # What go-livepeer itself exits with: 0 after an error exit too (a supervisor that restarts
            # only on failure does not restart it), 2 after a panic, null while it runs.
            "node_exit_status": None if fatal is None else (2 if fatal.panic else 0),
            "log": self.log,
        }

    def start(self) -> None:
        options = self.options
        if options.ai_worker:
            self.slots = self.gpu_slots()
        if not options.ai_models:
            if options.ai_worker:
                raise Fatal(
                    "The '-aiWorker' flag was set, but no model configuration was provided. "
                    "Please specify the model configuration using the '-aiModels' flag."
                )
            return
        try:
            configs = parse_ai_model_configs(options.ai_models)
        except GoJSONError as exc:
            raise Fatal(f"Error parsing -aiModels: {exc}") from exc
        self.note(f"read {len(configs)} AI model configs from {options.ai_models}")
        for index, config in enumerate(configs):
            self.register(index, config)

    def gpu_slots(self) -> list[str]:
        if self.options.nvidia:
            gpus = detect_gpus() if self.options.nvidia == "all" else self.options.nvidia.split(",")
        else:
            self.warnings.append("!!! No GPU discovered, using CPU for AIWorker !!!")
            gpus = ["emulated-0"]
        self.slot_gpus = [gpu for _ in range(max(self.options.containers_per_gpu, 1)) for gpu in gpus]
        if self.options.containers_per_gpu > 1:
            gpus = [f"colocated-{i}-{gpu}" for i in range(self.options.containers_per_gpu) for gpu in gpus]
        return gpus

    def register(self, index: int, config: AIModelConfig) -> None:
        if capability_name(config.pipeline) not in AI_CAPABILITY_NAMES + TRANSCODING_CAPABILITY_NAMES:
            raise Fatal(f"Pipeline is not valid capability: {config.pipeline}\n", panic=True)
        entry: dict[str, Any] = {
            "index": index,
            "pipeline": config.pipeline,
            "model_id": config.model_id,
            "url": config.url or None,
            "warm": config.warm,
            "managed": not config.url,
            "capacity": 1,
        }
        if self.options.ai_worker:
            self.start_worker(config, entry)
        if self.options.network != "offchain":
            entry["price"] = self.price(config)
        self.registered.append(entry)

    def start_worker(self, config: AIModelConfig, entry: dict[str, Any]) -> None:
        models_count = 1
        if config.capacity != 0:
            if config.url:
                entry["capacity"] = config.capacity
            else:
                models_count = config.capacity
        entry["status"] = None if config.url else "managed-cold"
        entry["version"] = None
        for _ in range(models_count):
            if config.warm or config.url:
                self.warm(config, entry)
        if config.url:
            entry["runner_version"] = entry["version"] if entry["version"] and SEMVER.match(entry["version"]) else ""
        if config.optimization_flags and not config.warm:
            self.warnings.append(
                f"Model {config.model_id} has 'optimization_flags' set without 'warm'. "
                "Optimization flags are currently only used for warm containers."
            )
        key = (config.pipeline, config.model_id)
        existing = self.constraints.get(key)
        if existing is None:
            self.constraints[key] = {"warm": config.warm, "capacity": entry["capacity"]}
        elif existing["warm"] == config.warm:
            existing["capacity"] += entry["capacity"]
        else:
            raise Fatal(
                f"Cannot have same model_id ({config.model_id}) as cold and warm in same AI worker, "
                "please fix aiModels json config",
                panic=True,
            )

    def warm(self, config: AIModelConfig, entry: dict[str, Any]) -> None:
        if not config.url:
            if config.pipeline not in AI_PIPELINES:
                # go-livepeer finds no container port for a pipeline it does not spell this way.
                raise Fatal("runtime error: slice bounds out of range", panic=True)
            if len(self.used_slots) >= len(self.slots):
                raise Fatal(f"Error AI worker warming {config.pipeline} container: insufficient capacity")
            # The first free device of the -nvidia list, in file order.
            position = len(self.used_slots)
            slot = self.slots[position]
            self.used_slots.append({"slot": slot, "gpu": self.slot_gpus[position], "entry_index": entry["index"],
                                    "pipeline": config.pipeline, "model_id": config.model_id})
            self.note(f"warm {config.pipeline} container for {config.model_id} on GPU {self.slot_gpus[position]}")
            entry.setdefault("gpu_slots", []).append(slot)
            entry["status"] = "managed-warm"
            return
        self.note(f"waiting for external runner {config.url} ({config.pipeline} {config.model_id})")
        probe = RunnerProbe(config.url, config.token, self.options.max_wait, self.options.health_interval)
        try:
            result = probe.run()
        except Fatal as exc:
            prefix = f"Error AI worker warming {config.pipeline} container: "
            raise Fatal(prefix + str(exc).removeprefix("panic: "), panic=exc.panic) from exc
        self.errors.extend(result.notes)
        entry.update(
            status=result.status,
            loading=result.loading,
            health_tries=result.tries,
            waited_s=result.waited_s,
            version=result.version,
            hardware=result.hardware,
        )
        self.note(f"Starting external container {config.url}: status {result.status or '(empty)'}")

    def price(self, config: AIModelConfig) -> dict[str, Any]:
        options = self.options
        pixels_base = rat_or_none(options.pixels_per_unit)
        if pixels_base is None or pixels_base.denominator != 1:
            raise Fatal(f"-pixelsPerUnit must be a valid integer, provided {options.pixels_per_unit}", panic=True)
        if pixels_base <= 0:
            raise Fatal(f"-pixelsPerUnit must be > 0, provided {options.pixels_per_unit}", panic=True)
        price_base, currency_base = parse_price_flag(options.price_per_unit)
        pixels = config.pixels_per_unit
        if pixels is None:
            pixels = pixels_base
        elif pixels.denominator != 1 or pixels <= 0:
            raise Fatal(
                f"'pixelsPerUnit' value specified for model '{config.model_id}' in pipeline '{config.pipeline}' "
                f"must be a valid positive integer, provided {float_string(pixels)}",
                panic=True,
            )
        price, currency = config.price_per_unit, config.currency
        if price is None:
            if price_base == 0:
                raise Fatal(
                    f"'pricePerUnit' must be set for model '{config.model_id}' in pipeline '{config.pipeline}'",
                    panic=True,
                )
            price, currency = price_base, currency_base
            self.warnings.append(
                f"No 'pricePerUnit' specified for model '{config.model_id}' in pipeline '{config.pipeline}'. "
                f"Using default value from `-pricePerUnit`: {options.price_per_unit}"
            )
        elif price < 0:
            raise Fatal(
                f"'pricePerUnit' value specified for model '{config.model_id}' in pipeline '{config.pipeline}' "
                f"must be a valid positive number, provided {float_string(price)}",
                panic=True,
            )
        per_pixel = price / pixels
        return {
            "price_per_unit": decimal_string(price),
            "pixels_per_unit": decimal_string(pixels),
            "currency": currency,
            "gateway": config.gateway or "default",
            "wei_per_pixel": float_string(to_wei(per_pixel, currency, options.eth_usd), 3),
        }


def decimal_string(value: Fraction) -> str:
    """Exact decimal form when there is one (0.18), else the fraction (1/3)."""
    denominator, twos, fives = value.denominator, 0, 0
    while denominator % 2 == 0:
        denominator, twos = denominator // 2, twos + 1
    while denominator % 5 == 0:
        denominator, fives = denominator // 5, fives + 1
    if denominator != 1:
        return str(value)
    digits = max(twos, fives)
    return float_string(value, digits) if digits else str(value.numerator)


def rat_or_none(text: str) -> Fraction | None:
    try:
        return Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        return None


def parse_price_flag(text: str | None) -> tuple[Fraction, str]:
    """-pricePerUnit: `<number>[currency]`; absent means 0 (no default price)."""
    if text is None:
        return Fraction(0), ""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)([A-Za-z][A-Za-z0-9]*)?\s*", text)
    if not match or Fraction(match.group(1)) < 0:
        raise Fatal(
            f"-pricePerUnit must be a valid positive integer with an optional currency, provided {text}", panic=True
        )
    return Fraction(match.group(1)), match.group(2) or ""


def to_wei(per_pixel: Fraction, currency: str, eth_usd: float) -> Fraction:
    """core.NewAutoConvertedPrice with the default ETH/USD price feed."""
    lowered = currency.lower()
    if lowered in ("", "wei"):
        return per_pixel
    if lowered == "eth":
        return per_pixel * WEI_PER_ETH
    if currency.upper() not in PRICE_FEED:
        raise Fatal(
            f"error converting price: price feed does not have {currency.upper()} as a currency "
            f"({PRICE_FEED[0]}/{PRICE_FEED[1]})",
            panic=True,
        )
    return per_pixel * WEI_PER_ETH / Fraction(str(eth_usd))


# ---------------------------------------------------------------------------------------------
# Flags (Go's flag package style) and the two modes
# ---------------------------------------------------------------------------------------------

FLAG_SPECS: dict[str, tuple[str, type]] = {
    "aiModels": ("ai_models", str),
    "nvidia": ("nvidia", str),
    "maxWait": ("max_wait", float),
    "aiWorker": ("ai_worker", bool),
    "aiRunnerContainersPerGPU": ("containers_per_gpu", int),
    "network": ("network", str),
    "pricePerUnit": ("price_per_unit", str),
    "pixelsPerUnit": ("pixels_per_unit", str),
    "ethUsdPrice": ("eth_usd", float),
    "healthInterval": ("health_interval", float),
    "httpAddr": ("http_addr", str),
    "stayUp": ("stay_up", bool),
}


# Other go-livepeer flags a lab compose file may pass: accepted and ignored.
IGNORED_BOOL_FLAGS = {"orchestrator", "transcoder", "gateway", "monitor", "aiVerboseLogs", "broadcaster"}
IGNORED_VALUE_FLAGS = {
    "serviceAddr",
    "cliAddr",
    "rtmpAddr",
    "datadir",
    "aiModelsDir",
    "aiRunnerImage",
    "aiRunnerImageOverrides",
    "ethUrl",
    "ethOrchAddr",
    "ethAcctAddr",
    "ethPassword",
    "ethKeystorePath",
    "orchSecret",
    "orchAddr",
    "maxSessions",
    "ticketEV",
    "maxTicketEV",
    "maxFaceValue",
    "v",
}


class UsageError(Exception):
    """Printed with the usage; exit status 2 like Go's flag package."""


def parse_flags(args: list[str]) -> Options:
    options = Options()
    index = 0
    while index < len(args):
        arg = args[index]
        if not arg.startswith("-") or arg in ("-", "--"):
            raise UsageError(f"unexpected argument {arg!r}")
        name, has_value, value = arg.lstrip("-").partition("=")
        if name in IGNORED_BOOL_FLAGS or name in IGNORED_VALUE_FLAGS:
            index += 1 if has_value or name in IGNORED_BOOL_FLAGS else 2
            continue
        if name not in FLAG_SPECS:
            raise UsageError(f"flag provided but not defined: -{name}")
        attribute, kind = FLAG_SPECS[name]
        if kind is bool:
            if has_value and value.lower() not in ("true", "false", "1", "0", "t", "f"):
                raise UsageError(f'invalid boolean value "{value}" for -{name}: parse error')
            setattr(options, attribute, not has_value or value.lower() in ("true", "1", "t"))
            index += 1
            continue
        if not has_value:
            if index + 1 >= len(args):
                raise UsageError(f"flag needs an argument: -{name}")
            index += 1
            value = args[index]
        try:
            setattr(options, attribute, kind(value))
        except ValueError as exc:
            raise UsageError(f'invalid value "{value}" for flag -{name}: parse error') from exc
        index += 1
    return options


USAGE = f"""usage: orchestrator.py check|serve -aiModels PATH [flags]   ({STAND_IN} for go-livepeer start-up)

  -aiModels PATH|INLINE      aiModels.json path, or pipeline:model_id:warm,...
  -nvidia 0,1|all            GPU ids (slots for managed warm containers); none = one emulated slot
  -aiRunnerContainersPerGPU N  (default 1)
  -maxWait SECONDS           how long to wait for each external runner's /health (default 120, as go-livepeer)
  -aiWorker[=false]          run the AI worker checks (default true)
  -network NAME              offchain skips the price checks (default arbitrum-one-mainnet)
  -pricePerUnit P[CUR]       default price for entries without price_per_unit
  -pixelsPerUnit N           default pixels per unit (default 1)
  -ethUsdPrice X             ETH price used to show USD prices in wei (default 3000)
  -httpAddr HOST:PORT        serve mode: where GET /status answers (default 0.0.0.0:8935)
  -stayUp                    serve mode: keep serving the report after a failed start-up
"""


class StatusServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, StatusHandler)
        self.report: dict[str, Any] = {"ok": False, "state": "starting", "stand_in": STAND_IN}


class StatusHandler(BaseHTTPRequestHandler):
    server: StatusServer
    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:
        return f"go-livepeer/{VERSION} ({STAND_IN})"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path not in ("/status", "/"):
            status, body = 404, {"error": "not found", "see": "/status"}
        else:
            body = self.server.report
            status = 200 if body.get("ok") else 503
        data = json.dumps(body, indent=2).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def serve(options: Options) -> int:
    host, _, port = options.http_addr.rpartition(":")
    server = StatusServer((host or "0.0.0.0", int(port)))
    threading.Thread(target=server.serve_forever, name="status", daemon=True).start()
    sys.stderr.write(f"{STAND_IN} go-livepeer: serving start-up report on http://{options.http_addr}/status\n")
    report = Startup(options).run()
    report["state"] = "running" if report["ok"] else "failed"
    server.report = report
    print(json.dumps(report, indent=2), flush=True)
    if not report["ok"] and not options.stay_up:
        server.shutdown()
        return report["node_exit_status"]
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if args else 2
    if args[0] in ("-version", "--version"):
        print(f"Livepeer Node Version: {VERSION} ({STAND_IN})")
        return 0
    mode, rest = args[0], args[1:]
    if mode not in ("check", "serve"):
        mode, rest = "serve", args
    try:
        options = parse_flags(rest)
    except UsageError as exc:
        print(f"{exc}\n{USAGE}", file=sys.stderr)
        return 2
    if mode == "serve":
        return serve(options)
    report = Startup(options).run()
    print(json.dumps(report, indent=2))
    return report["exit_status"]


if __name__ == "__main__":
    sys.exit(main())
