# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""Ollama's model names for templates: thin wrappers over plugins/module_utils/ollama_names.py.

Each filter is documented in its own file beside this one (plugins/filter/<name>.yml)."""

from __future__ import annotations

from typing import Any

from ansible_collections.lpfleet.ai.plugins.module_utils.ollama_names import (
    canonical_name,
    manifest_path,
    name_key,
    name_problem,
)
from ansible_collections.lpfleet.ai.plugins.plugin_utils.filters import checked


def _canonical(names: Any, fold: bool = False) -> Any:
    convert = name_key if fold else canonical_name
    if isinstance(names, (list, tuple)):
        return [convert(name) for name in names]
    return convert(names)


def ollama_name_problem(name: Any) -> str:
    """Why Ollama would refuse NAME, or '' when it is a valid model name."""
    return name_problem(name) or ""


ollama_canonical = checked("ollama_canonical", _canonical, (ValueError,))
ollama_manifest_path = checked("ollama_manifest_path", manifest_path, (ValueError,))


class FilterModule:
    """Ollama's model names."""

    def filters(self) -> dict[str, Any]:
        return {"ollama_canonical": ollama_canonical, "ollama_manifest_path": ollama_manifest_path,
                "ollama_name_problem": ollama_name_problem}
