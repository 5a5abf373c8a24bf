# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""lpfleet's one Ollama client: what an Ollama server holds (`GET /api/tags`) and has loaded (`GET /api/ps`).

Requests go through module_utils.http (Ansible's open_url); a failure is a `RequestFailed`. Names are
matched as Ollama matches them (module_utils.ollama_names: `mistral` is `mistral:latest`, the default
registry and namespace may be written or not, case is ignored). The ollama_info and runner_health
modules read through `OllamaClient`; ollama_model adds its writes (pull, delete, load) to it.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Optional

from ansible_collections.lpfleet.ai.plugins.module_utils.http import (
    CLOCK,
    RequestFailed,
    call_with_retries,
    expect_json,
    request,
)
from ansible_collections.lpfleet.ai.plugins.module_utils.ollama_names import canonical_name, name_key

REQUEST_TIMEOUT = 30.0


def listed_key(name: str) -> str:
    """The comparison key of a name an Ollama listed; a name Ollama should never list is compared as written."""
    try:
        return name_key(name)
    except ValueError:
        return name.lower()


def _listed_name(entry: dict[str, Any]) -> str:
    return str(entry.get("name") or entry.get("model") or "")


def _listing(document: Any, url: str) -> list[dict[str, Any]]:
    """The entries of a `{"models": [{...}]}` answer; RequestFailed when it is not one."""
    models = document.get("models") if isinstance(document, dict) else None
    if models is None and isinstance(document, dict) and "models" in document:
        models = []  # Ollama writes `"models": null` when it has none
    if not isinstance(models, list) or not all(isinstance(model, dict) for model in models):
        raise RequestFailed("expected a body with a list of models", url)
    return models


def _canonical_or_listed(name: str) -> str:
    try:
        return canonical_name(name)
    except ValueError:
        return name


def model_record(entry: dict[str, Any]) -> dict[str, Any]:
    """An /api/tags entry as ollama_info returns it."""
    name = _listed_name(entry)
    return {"name": name, "canonical": _canonical_or_listed(name), "digest": entry.get("digest"),
            "size": entry.get("size"), "modified_at": entry.get("modified_at")}


def loaded_record(entry: dict[str, Any]) -> dict[str, Any]:
    """An /api/ps entry as ollama_info returns it."""
    name = _listed_name(entry)
    return {"name": name, "canonical": _canonical_or_listed(name), "digest": entry.get("digest"),
            "size": entry.get("size"), "size_vram": entry.get("size_vram"), "expires_at": entry.get("expires_at")}


class OllamaClient:
    """Ollama's read API. With a deadline (CLOCK.monotonic()) and delays, transient failures are retried."""

    def __init__(self, url: str, deadline: Optional[float] = None, delays: Iterable[float] = (),
                 request_timeout: float = REQUEST_TIMEOUT) -> None:
        self.url = url
        self.deadline = math.inf if deadline is None else deadline
        self.delays = list(delays)
        self.request_timeout = request_timeout

    def _timeout(self, longest: Optional[float] = None) -> float:
        longest = self.request_timeout if longest is None else longest
        return max(1.0, min(longest, self.deadline - CLOCK.monotonic()))

    def _retrying(self, call: Callable[[], Any]) -> Any:
        return call_with_retries(lambda _attempt: call(), self.delays, self.deadline)

    def _list(self, path: str) -> list[dict[str, Any]]:
        url = self.url + path
        return self._retrying(lambda: _listing(expect_json(request("GET", url, timeout=self._timeout())), url))

    def models(self) -> list[dict[str, Any]]:
        """The entries of /api/tags, as Ollama wrote them."""
        return self._list("/api/tags")

    def loaded(self) -> list[dict[str, Any]]:
        """The entries of /api/ps, as Ollama wrote them."""
        return self._list("/api/ps")

    @staticmethod
    def find(entries: list[dict[str, Any]], name: str) -> Optional[dict[str, Any]]:
        """The entry for the model NAME (matched as Ollama matches names), or None."""
        wanted = name_key(name)
        for entry in entries:
            if wanted in (listed_key(str(entry.get("name") or "")), listed_key(str(entry.get("model") or ""))):
                return entry
        return None

    def installed(self, name: str) -> Optional[dict[str, Any]]:
        """The /api/tags entry of the model, or None."""
        return self.find(self.models(), name)

    def running(self, name: str) -> Optional[dict[str, Any]]:
        """The /api/ps entry of the model when it is loaded, or None."""
        return self.find(self.loaded(), name)


class OllamaState:
    """One reading of an Ollama server: the canonical names of the models it holds and of the ones loaded, sorted."""

    def __init__(self, url: str, tags: list[str], loaded: list[str]) -> None:
        self.url = url
        self.tags = tags
        self.loaded = loaded

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "tags": self.tags, "loaded": self.loaded}


def names(entries: Iterable[dict[str, Any]]) -> list[str]:
    """The sorted canonical names of listed entries."""
    return sorted({_canonical_or_listed(_listed_name(entry)) for entry in entries if _listed_name(entry)})


def read_state(url: str, timeout: float = 10.0) -> OllamaState:
    """GET /api/tags and /api/ps of the Ollama at URL (a base URL); RequestFailed when either fails."""
    client = OllamaClient(url, request_timeout=timeout)
    return OllamaState(url, names(client.models()), names(client.loaded()))
