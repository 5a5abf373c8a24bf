# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""What an Ollama server holds (`GET /api/tags`) and has loaded (`GET /api/ps`), read through module_utils.http.

Names are compared in Ollama's canonical form: a tag without `:<version>` means `:latest`.
"""

from __future__ import annotations

from typing import Any, Iterable

from ansible_collections.lpfleet.ai.plugins.module_utils.http import RequestFailed, get_json


def canonical_tag(name: str) -> str:
    """`llama3.1` -> `llama3.1:latest`; a name with a version (`llama3.1:8b`, `host:5000/ns/m:v`) is kept."""
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"


def canonical_tags(names: Iterable[str]) -> set[str]:
    return {canonical_tag(name) for name in names if name}


def model_names(document: Any, url: str) -> list[str]:
    """The canonical names of a `{"models": [{"name": ...}]}` answer, sorted; RequestFailed when it is not one."""
    models = document.get("models") if isinstance(document, dict) else None
    if not isinstance(models, list) or not all(isinstance(model, dict) for model in models):
        raise RequestFailed("expected a body with a list of models", url)
    return sorted(canonical_tags(str(model.get("name") or model.get("model") or "") for model in models))


class OllamaState:
    """One reading of an Ollama server: the tags it holds and the ones loaded."""

    def __init__(self, url: str, tags: list[str], loaded: list[str]) -> None:
        self.url = url
        self.tags = tags
        self.loaded = loaded

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "tags": self.tags, "loaded": self.loaded}


def read_state(url: str, timeout: float = 10.0) -> OllamaState:
    """GET /api/tags and /api/ps of the Ollama at URL (a base URL); RequestFailed when either fails."""
    tags = model_names(get_json(url + "/api/tags", timeout=timeout), url + "/api/tags")
    loaded = model_names(get_json(url + "/api/ps", timeout=timeout), url + "/api/ps")
    return OllamaState(url, tags, loaded)
