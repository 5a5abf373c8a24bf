"""The warm unit's program (roles/ollama_stack/files/lpfleet-ollama-warm.py) against a real local Ollama-like
server: it waits for Ollama, loads each warm model with keep_alive -1, never pulls, retries within its
budget and says what it did. Time is a FakeClock: it moves only when the program sleeps."""

from __future__ import annotations

import importlib.util
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from http_servers import FakeClock, OllamaServer

PROGRAM = Path(__file__).resolve().parents[2] / "roles" / "ollama_stack" / "files" / "lpfleet-ollama-warm.py"


def load_program() -> Any:
    spec = importlib.util.spec_from_file_location("lpfleet_ollama_warm", PROGRAM)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(name="warm")
def warm_fixture(monkeypatch: pytest.MonkeyPatch) -> Any:
    module = load_program()
    monkeypatch.setattr(module, "CLOCK", FakeClock())
    return module


def write_config(tmp_path: Path, servers: list[dict[str, Any]], budget: float = 120) -> str:
    path = tmp_path / "warm.json"
    path.write_text(json.dumps({"budget_seconds": budget, "servers": servers}))
    return str(path)


def closed_port_url() -> str:
    """A loopback URL nothing listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class LateOllama(OllamaServer):
    """Answers 503 to the first `late` /api/version calls and 500 to the first `failing` loads."""

    def __init__(self, late: int = 0, failing: int = 0) -> None:
        super().__init__()
        self.late = late
        self.failing = failing

    def handle(self, handler: Any, body: Any) -> None:
        if handler.path == "/api/version" and self.late > 0:
            self.late -= 1
            handler.send_json(503, {"error": "starting"})
        elif handler.path == "/api/generate" and self.failing > 0:
            self.failing -= 1
            handler.send_json(500, {"error": "llama runner process has terminated"})
        else:
            super().handle(handler, body)


def test_loads_each_warm_model_and_keeps_it_loaded(warm: Any, tmp_path: Path, capsys: Any) -> None:
    with OllamaServer() as ollama:
        ollama.install("llama3.1:8b")
        config = write_config(tmp_path, [{"url": ollama.url, "models": ["llama3.1:8b"]}])

        assert warm.main(["warm", config]) == 0

    assert list(ollama.loaded) == ["llama3.1:8b"]
    (load,) = ollama.calls("/api/generate")
    assert load["body"] == {"model": "llama3.1:8b", "keep_alive": -1, "stream": False}, "a prompt or another keep_alive"
    assert not ollama.calls("/api/pull"), "the warm unit pulled"
    output = capsys.readouterr().out
    assert f"{ollama.url}: loaded llama3.1:8b (keep_alive -1)" in output
    assert "every warm model is loaded" in output


def test_waits_for_ollama_to_answer_then_loads(warm: Any, tmp_path: Path, capsys: Any) -> None:
    with LateOllama(late=3) as ollama:
        ollama.install("llama3.1:8b")
        config = write_config(tmp_path, [{"url": ollama.url, "models": ["llama3.1:8b"]}])

        assert warm.main(["warm", config]) == 0

    assert warm.CLOCK.slept == [warm.POLL_SECONDS] * 3
    assert len(ollama.calls("/api/version")) == 4
    assert "llama3.1:8b" in ollama.loaded
    assert "Ollama 0.6.2 answers" in capsys.readouterr().out


def test_gives_up_when_ollama_never_answers_within_the_budget(warm: Any, tmp_path: Path, capsys: Any) -> None:
    url = closed_port_url()
    config = write_config(tmp_path, [{"url": url, "models": ["llama3.1:8b"]}], budget=30)

    assert warm.main(["warm", config]) == 1

    assert sum(warm.CLOCK.slept) == pytest.approx(30), "waited longer or shorter than the budget"
    output = capsys.readouterr().out
    assert f"{url}: Ollama did not answer within 30 s" in output
    assert f"{url}: not loaded: llama3.1:8b" in output
    assert "some warm models are not loaded" in output


def test_a_model_missing_from_the_volume_is_reported_not_pulled_and_the_others_load(warm: Any, tmp_path: Path,
                                                                                    capsys: Any) -> None:
    with OllamaServer() as ollama:
        ollama.registry["qwen2.5:7b"] = dict(ollama.registry["llama3.1:8b"])
        ollama.install("qwen2.5:7b")
        config = write_config(tmp_path, [{"url": ollama.url, "models": ["llama3.1:8b", "qwen2.5:7b"]}])

        assert warm.main(["warm", config]) == 1

    assert list(ollama.loaded) == ["qwen2.5:7b"]
    assert not ollama.calls("/api/pull")
    assert len(ollama.calls("/api/generate")) == 2, "a missing model was retried"
    assert warm.CLOCK.slept == []
    output = capsys.readouterr().out
    assert "llama3.1:8b is not in the model volume (HTTP 404" in output
    assert "lpfleet's next run pulls it" in output


def test_a_failed_load_is_retried_with_growing_waits(warm: Any, tmp_path: Path, capsys: Any) -> None:
    with LateOllama(failing=2) as ollama:
        ollama.install("llama3.1:8b")
        config = write_config(tmp_path, [{"url": ollama.url, "models": ["llama3.1:8b"]}])

        assert warm.main(["warm", config]) == 0

    assert warm.CLOCK.slept == [5.0, 10.0]
    assert "llama3.1:8b" in ollama.loaded
    assert "loading llama3.1:8b failed (HTTP 500: llama runner process has terminated); retrying in 5 s" in \
        capsys.readouterr().out


def test_failed_loads_stop_when_the_budget_is_spent(warm: Any, tmp_path: Path, capsys: Any) -> None:
    with LateOllama(failing=1000) as ollama:
        ollama.install("llama3.1:8b")
        config = write_config(tmp_path, [{"url": ollama.url, "models": ["llama3.1:8b"]}], budget=100)

        assert warm.main(["warm", config]) == 1

    assert sum(warm.CLOCK.slept) == pytest.approx(100)
    assert max(warm.CLOCK.slept) <= warm.MAX_RETRY_SECONDS
    assert "gave up loading llama3.1:8b" in capsys.readouterr().out


def test_every_ollama_of_a_per_gpu_host_gets_its_own_models(warm: Any, tmp_path: Path) -> None:
    with OllamaServer() as first, OllamaServer() as second:
        first.install("llama3.1:8b")
        second.install("llama3.1:8b")
        config = write_config(tmp_path, [{"url": first.url, "models": ["llama3.1:8b"]},
                                         {"url": second.url, "models": []},
                                         {"url": second.url + "/", "models": ["llama3.1:8b"]}])

        assert warm.main(["warm", config]) == 0

    assert list(first.loaded) == ["llama3.1:8b"] and list(second.loaded) == ["llama3.1:8b"]


def test_no_warm_model_is_success_without_a_request(warm: Any, tmp_path: Path, capsys: Any) -> None:
    config = write_config(tmp_path, [{"url": closed_port_url(), "models": []}])

    assert warm.main(["warm", config]) == 0

    assert warm.CLOCK.slept == []
    assert "no warm models to load" in capsys.readouterr().out


@pytest.mark.parametrize(("content", "says"), [
    (None, "cannot read"),
    ("{not json", "cannot read"),
    ('{"servers": [{"models": ["x"]}]}', "not the expected document (KeyError"),
    ('{"budget_seconds": 0, "servers": []}', "budget_seconds must be positive"),
])
def test_a_bad_configuration_exits_2_naming_the_file(warm: Any, tmp_path: Path, capsys: Any,
                                                      content: str | None, says: str) -> None:
    path = tmp_path / "warm.json"
    if content is not None:
        path.write_text(content)

    assert warm.main(["warm", str(path)]) == 2

    output = capsys.readouterr().out
    assert str(path) in output and says in output
