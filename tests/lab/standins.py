"""Helpers and pytest fixtures that run the lab's stand-in programs as local processes.

Every stand-in listens on a free 127.0.0.1 port and keeps its state in a tmp
directory; nothing here needs Docker or reaches beyond loopback. Test modules import
the fixtures they use from here (tests/lab has no conftest of its own for them).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
STANDINS = REPO_ROOT / "lab" / "standins"
REGISTRY_PROGRAM = STANDINS / "model_registry" / "registry.py"
OLLAMA_PROGRAM = STANDINS / "ollama" / "ollama.py"
RUNNER_PROGRAM = STANDINS / "runner" / "runner.py"
ORCHESTRATOR_PROGRAM = STANDINS / "orchestrator" / "orchestrator.py"
RUNNER_OPENAPI = REPO_ROOT.parent / "shared" / "contracts" / "ai-runner.openapi.yaml"

# The stand-ins are standard-library programs for Debian's python3; run them with this interpreter.
PYTHON = sys.executable
READY_TIMEOUT = 15.0
SMALL_MODEL = "2MiB"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_call(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, timeout: float = 10.0
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request to a loopback stand-in; returns (status, lower-cased headers, body)."""
    host_port, _, path = url.removeprefix("http://").partition("/")
    host, _, port = host_port.partition(":")
    conn = http.client.HTTPConnection(host, int(port or 80), timeout=timeout)
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    try:
        conn.request(method, "/" + path, body=data, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def http_json(method: str, url: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
    status, _, payload = http_call(method, url, body, **kwargs)
    return status, json.loads(payload) if payload.strip() else None


def ndjson_lines(payload: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in payload.splitlines() if line.strip()]


class Service:
    """A stand-in process listening on 127.0.0.1:<port>."""

    def __init__(self, name: str, argv: list[str], port: int, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.env = env
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self, path: str) -> Service:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
            with contextlib.suppress(OSError):
                status, _, _ = http_call("GET", self.url + path, timeout=1.0)
                if status < 500:
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} was not ready on {self.url}{path} within {READY_TIMEOUT}s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()


def base_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OLLAMA_", "RUNNER_"))}
    env.pop("AUTH_TOKEN", None)
    env.pop("MODEL_ID", None)
    env.update(extra)
    return env


def start_registry(tmp_path: Path, *args: str, model_size: str = SMALL_MODEL) -> Service:
    port = free_port()
    argv = [PYTHON, str(REGISTRY_PROGRAM), "--host", "127.0.0.1", "--port", str(port), "--model-size", model_size]
    service = Service("registry", argv + list(args), port, base_env(), tmp_path / f"registry-{port}.log")
    return service.wait_ready("/_lab/health")


def start_ollama(tmp_path: Path, registry_url: str, **env: str) -> Service:
    port = free_port()
    models = Path(env.pop("OLLAMA_MODELS")) if "OLLAMA_MODELS" in env else tmp_path / f"ollama-models-{port}"
    environment = base_env(
        OLLAMA_HOST=f"127.0.0.1:{port}",
        OLLAMA_MODELS=str(models),
        OLLAMA_LAB_REGISTRY=registry_url,
        OLLAMA_LAB_TOKEN_DELAY="0",
        **env,
    )
    argv = [PYTHON, str(OLLAMA_PROGRAM), "serve"]
    service = Service("ollama", argv, port, environment, tmp_path / f"ollama-{port}.log")
    service.models = models  # type: ignore[attr-defined]
    return service.wait_ready("/api/version")


def start_runner(tmp_path: Path, ollama_url: str, **env: str) -> Service:
    port = free_port()
    environment = base_env(PORT=str(port), HOST="127.0.0.1", OLLAMA_BASE_URL=ollama_url, **env)
    service = Service("runner", [PYTHON, str(RUNNER_PROGRAM)], port, environment, tmp_path / f"runner-{port}.log")
    return service.wait_ready("/version")


def run_ollama_cli(ollama: Service, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = base_env(OLLAMA_HOST=f"127.0.0.1:{ollama.port}")
    return subprocess.run(
        [PYTHON, str(OLLAMA_PROGRAM), *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


def run_orchestrator(*args: str, timeout: float = 60) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [PYTHON, str(ORCHESTRATOR_PROGRAM), "check", *args],
        capture_output=True,
        text=True,
        env=base_env(),
        timeout=timeout,
        check=False,
    )
    try:
        report = json.loads(done.stdout)
    except ValueError as exc:
        raise AssertionError(f"no JSON report (rc {done.returncode}):\n{done.stdout}\n{done.stderr}") from exc
    return done.returncode, report


def registry_stats(registry: Service) -> dict[str, Any]:
    status, stats = http_json("GET", registry.url + "/_lab/stats")
    assert status == 200
    return stats


def catalog_entry(registry: Service, name: str) -> dict[str, Any]:
    _, catalog = http_json("GET", registry.url + "/_lab/models")
    return next(model for model in catalog["models"] if model["name"] == name)


def inject_fault(registry: Service, **fault: Any) -> dict[str, Any]:
    status, body = http_json("POST", registry.url + "/_lab/faults", fault)
    assert status == 201, body
    return body


class RecordingRunner:
    """A scripted runner on 127.0.0.1 for the orchestrator: answers /health from a list, records requests."""

    def __init__(self, health: list[tuple[int, str, bytes]]) -> None:
        self.health = list(health)
        self.requests: list[tuple[str, str, str | None]] = []
        runner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                runner.requests.append((self.command, self.path, self.headers.get("Authorization")))
                if self.path == "/health":
                    status, content_type, body = runner.health[0] if len(runner.health) == 1 else runner.health.pop(0)
                elif self.path == "/hardware/info":
                    status, content_type = 200, "application/json"
                    body = json.dumps({"pipeline": "llm", "model_id": "m", "gpu_info": {}}).encode()
                elif self.path == "/version":
                    status, content_type = 200, "application/json"
                    body = json.dumps({"pipeline": "llm", "model_id": "m", "version": "0.1.1"}).encode()
                else:
                    status, content_type, body = 404, "application/json", b'{"detail": "Not Found"}'
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = _answer
            do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def json_health(status: str) -> tuple[int, str, bytes]:
    return 200, "application/json", json.dumps({"status": status}).encode()


@pytest.fixture(name="registry")
def registry_fixture(tmp_path: Path) -> Iterator[Service]:
    service = start_registry(tmp_path)
    yield service
    service.stop()


@pytest.fixture(name="ollama")
def ollama_fixture(tmp_path: Path, registry: Service) -> Iterator[Service]:
    service = start_ollama(tmp_path, registry.url, OLLAMA_LAB_STALL_TIMEOUT="1")
    yield service
    service.stop()


@pytest.fixture(name="pulled_ollama")
def pulled_ollama_fixture(ollama: Service) -> Service:
    """An Ollama stand-in that already holds llama3.1:8b."""
    status, body = http_json("POST", ollama.url + "/api/pull", {"model": "llama3.1:8b", "stream": False})
    assert (status, body) == (200, {"status": "success"})
    return ollama


@pytest.fixture(name="runner")
def runner_fixture(tmp_path: Path, pulled_ollama: Service) -> Iterator[Service]:
    service = start_runner(tmp_path, pulled_ollama.url)
    yield service
    service.stop()


@pytest.fixture(name="recording_runner")
def recording_runner_fixture() -> Iterator[Any]:
    created: list[RecordingRunner] = []

    def make(*health: tuple[int, str, bytes]) -> RecordingRunner:
        created.append(RecordingRunner(list(health)))
        return created[-1]

    yield make
    for item in created:
        item.close()
