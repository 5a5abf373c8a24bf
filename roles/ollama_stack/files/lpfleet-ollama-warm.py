"""lpfleet-ollama-warm: load the warm models again once Ollama answers, after a boot or a Docker restart.

Run by the systemd unit lpfleet-ollama-warm.service, which the lpfleet.ai.ollama_stack role installs
with this program and its configuration (JSON, written from the host's plan):

    {"budget_seconds": 900,
     "servers": [{"url": "http://127.0.0.1:11434", "models": ["llama3.1:8b"]}]}

For each server in turn: wait until it answers GET /api/version, then ask it to load each model with
POST /api/generate {"model", "keep_alive": -1} and no prompt, which loads the model and keeps it
loaded (shared/contracts/ollama.md). It never pulls: a model the volume lacks (Ollama answers 404) is
logged and left to lpfleet's next run. Other failures are retried, waiting 5 s, then twice as long
each time (at most 60 s); every wait and every request fits in budget_seconds, counted from the
start. One line per step goes to stdout (the journal). Exit status: 0 when every model is loaded,
1 when one is not, 2 when the configuration cannot be read.
"""

from __future__ import annotations

import http.client
import json
import math
import sys
import time
import urllib.error
import urllib.request
from typing import Any

KEEP_LOADED = -1
POLL_SECONDS = 5.0
FIRST_RETRY_SECONDS = 5.0
MAX_RETRY_SECONDS = 60.0
REQUEST_TIMEOUT = 30.0
DEFAULT_BUDGET_SECONDS = 900.0
# What a request that did not get an answer raises (URLError and socket timeouts are OSErrors).
TRANSPORT_ERRORS = (OSError, ValueError, http.client.HTTPException)


class Clock:
    """Time as this program sees it (the unit tests give it one that moves only when it sleeps)."""

    @staticmethod
    def monotonic() -> float:
        return time.monotonic()

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds)


CLOCK: Any = Clock()


def log(message: str) -> None:
    print(message, flush=True)


class Budget:
    """The seconds left for everything this run does."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = CLOCK.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.deadline - CLOCK.monotonic())

    def timeout(self) -> float:
        """A request's timeout: what is left, at least a second."""
        return max(1.0, self.left())

    def wait(self, seconds: float) -> bool:
        """Sleeps SECONDS (less when the budget ends first); False when nothing is left to wait for."""
        if self.left() <= 0:
            return False
        CLOCK.sleep(min(seconds, self.left()))
        return self.left() > 0


def call(url: str, path: str, body: dict[str, Any] | None, timeout: float) -> Any:
    """One request to Ollama; its JSON answer. Raises HTTPError for an error status."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.loads(answer.read() or b"null")


def error_text(error: Exception) -> str:
    """What Ollama said in an error answer ({"error": ...}), or the error itself."""
    if isinstance(error, urllib.error.HTTPError):
        try:
            said = json.loads(error.read() or b"{}").get("error", "")
        except TRANSPORT_ERRORS + (AttributeError,):
            said = ""
        return f"HTTP {error.code}" + (f": {said}" if said else "")
    return str(error) or type(error).__name__


def wait_until_ready(url: str, budget: Budget) -> str | None:
    """Ollama's version once it answers; None when the budget ends first."""
    while True:
        try:
            return str(call(url, "/api/version", None, min(REQUEST_TIMEOUT, budget.timeout())).get("version", "?"))
        except TRANSPORT_ERRORS as error:
            last = error_text(error)
        if not budget.wait(POLL_SECONDS):
            log(f"{url}: Ollama did not answer within {budget.seconds:.0f} s (last: {last})")
            return None


def load(url: str, model: str, budget: Budget) -> bool:
    """Loads MODEL and keeps it loaded, retrying within the budget; whether it is loaded."""
    delay = FIRST_RETRY_SECONDS
    while True:
        started = CLOCK.monotonic()
        try:
            call(url, "/api/generate", {"model": model, "keep_alive": KEEP_LOADED, "stream": False}, budget.timeout())
            log(f"{url}: loaded {model} (keep_alive -1) in {CLOCK.monotonic() - started:.0f} s")
            return True
        except urllib.error.HTTPError as error:
            if error.code == 404:
                log(f"{url}: {model} is not in the model volume ({error_text(error)}); not loaded. This unit "
                    "never downloads: lpfleet's next run pulls it")
                return False
            last = error_text(error)
        except TRANSPORT_ERRORS as error:
            last = error_text(error)
        if budget.left() <= 0:
            log(f"{url}: gave up loading {model} ({last}): the budget of {budget.seconds:.0f} s is spent")
            return False
        log(f"{url}: loading {model} failed ({last}); retrying in {min(delay, budget.left()):.0f} s")
        if not budget.wait(delay):
            log(f"{url}: gave up loading {model}: the budget of {budget.seconds:.0f} s is spent")
            return False
        delay = min(delay * 2, MAX_RETRY_SECONDS)


def warm(url: str, models: list[str], budget: Budget) -> bool:
    """Loads the models of one Ollama; whether all of them are loaded."""
    version = wait_until_ready(url, budget)
    if version is None:
        log(f"{url}: not loaded: {', '.join(models)}")
        return False
    log(f"{url}: Ollama {version} answers; loading {', '.join(models)}")
    loaded = [load(url, model, budget) for model in models]  # every model is tried, not up to the first failure
    return all(loaded)


def read_config(path: str) -> tuple[float, list[tuple[str, list[str]]]]:
    """The budget and the (url, models) pairs; ValueError naming what is wrong."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None
    try:
        budget = float(document.get("budget_seconds", DEFAULT_BUDGET_SECONDS))
        servers = [(str(server["url"]).rstrip("/"), [str(model) for model in server["models"]])
                   for server in document.get("servers", [])]
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path} is not the expected document ({type(error).__name__}: {error})") from None
    if not math.isfinite(budget) or budget <= 0:
        raise ValueError(f"{path}: budget_seconds must be positive, not {budget}")
    return budget, servers


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        log(f"usage: {argv[0]} CONFIG.json")
        return 2
    try:
        seconds, servers = read_config(argv[1])
    except ValueError as error:
        log(str(error))
        return 2
    servers = [(url, models) for url, models in servers if models]
    if not servers:
        log("no warm models to load")
        return 0
    budget = Budget(seconds)
    loaded = [warm(url, models, budget) for url, models in servers]
    if all(loaded):
        log("every warm model is loaded")
        return 0
    log("some warm models are not loaded (see above); lpfleet's next run loads them")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
