# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""The model catalog: catalog/models.yml at the collection root, plus the operator's overrides.

Read on the controller. The file is found relative to this one, so the same code works in a
checkout (collections/ansible_collections/lpfleet/ai links to the repository root) and in an
installed collection.
"""

from __future__ import annotations

import math
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import yaml

CATALOG_PATH = Path(__file__).resolve().parent.parent.parent / "catalog" / "models.yml"
OVERRIDES_VARIABLE = "lpfleet_model_catalog_overrides"

ITEM_KEYS = (
    "model_id",
    "pipeline",
    "vram_gb",
    "vram_mib",
    "vram_source",
    "ollama_tag",
    "download_mb",
    "download_source",
    "pricing_unit",
    "notes",
)
_TEXT_KEYS = ("model_id", "pipeline", "vram_source", "ollama_tag", "download_source", "pricing_unit", "notes")

_BYTES_PER_GB = 10**9
_BYTES_PER_MB = 10**6
_BYTES_PER_MIB = 2**20
# A model's weights are its download (Ollama's quantised files); on top of them the GPU holds the context (KV
# cache) and the CUDA runtime. The planner never gives a model less than weights + this margin.
CONTEXT_MARGIN_PERCENT = 10
CONTEXT_MARGIN_MIN_MIB = 1024
CONTEXT_MARGIN_TEXT = "%d%% (at least %d MiB) for the context and the CUDA runtime" % (
    CONTEXT_MARGIN_PERCENT, CONTEXT_MARGIN_MIN_MIB)


class CatalogError(ValueError):
    """The catalog file or an override is malformed; the message names the item, the field and the fix."""


def gb_to_mib(gigabytes: float | int | str) -> int:
    """Decimal gigabytes (what the docs and vendors mean by "24 GB") to MiB, rounded up."""
    return math.ceil(Decimal(str(gigabytes)) * _BYTES_PER_GB / _BYTES_PER_MIB)


def weights_floor_mib(download_mb: int) -> int:
    """The least VRAM a model gets: its download (decimal MB) in MiB plus the context margin, rounded up."""
    weights = math.ceil(download_mb * _BYTES_PER_MB / _BYTES_PER_MIB)
    return weights + max(CONTEXT_MARGIN_MIN_MIB, math.ceil(weights * CONTEXT_MARGIN_PERCENT / 100))


def load_catalog(
    overrides: list[Mapping[str, Any]] | None = None, path: Path | str = CATALOG_PATH
) -> dict[str, dict[str, Any]]:
    """The catalog as model_id -> item, with the overrides applied. Items carry vram_mib (int or None).

    The file is parsed once per process (and again only when it changes); callers get their own top-level dict,
    and must not change the items in it.
    """
    path = Path(path)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = None
    catalog = dict(_parsed_catalog(str(path), stamp))
    for label, override in _override_items(overrides):
        _apply_override(catalog, label, override)
    return catalog


@lru_cache(maxsize=4)
def _parsed_catalog(path: str, stamp: int | None) -> dict[str, dict[str, Any]]:
    """The file's items by model_id; STAMP (its modification time) keys the cache."""
    catalog: dict[str, dict[str, Any]] = {}
    for label, item in _read_items(Path(path)):
        normalised = _normalise(label, item, require_pipeline=True)
        if normalised["model_id"] in catalog:
            raise CatalogError("%s: model_id %s is listed twice. Fix: keep one item per model_id."
                               % (label, normalised["model_id"]))
        catalog[normalised["model_id"]] = normalised
    return catalog


def ollama_tags(catalog: Mapping[str, Mapping[str, Any]]) -> dict[str, str | None]:
    """model_id -> Ollama tag (None for models Ollama does not serve)."""
    return {model_id: item.get("ollama_tag") for model_id, item in catalog.items()}


def _read_items(path: Path) -> list[tuple[str, Any]]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogError("cannot read the model catalog %s: %s. Fix: reinstall the lpfleet.ai collection."
                           % (path, exc)) from exc
    except yaml.YAMLError as exc:
        raise CatalogError("the model catalog %s is not valid YAML: %s" % (path, exc)) from exc
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise CatalogError("the model catalog %s must be a mapping with a 'models' list." % path)
    return [("%s models[%d]" % (path.name, index), item) for index, item in enumerate(data["models"])]


def _override_items(overrides: Any) -> list[tuple[str, Any]]:
    if overrides is None:
        return []
    if not isinstance(overrides, list):
        raise CatalogError("%s must be a list of catalog items, not %s. Fix: write a YAML list "
                           "(- model_id: ...)." % (OVERRIDES_VARIABLE, type(overrides).__name__))
    return [("%s[%d]" % (OVERRIDES_VARIABLE, index), item) for index, item in enumerate(overrides)]


def _apply_override(catalog: dict[str, dict[str, Any]], label: str, override: Any) -> None:
    base = catalog.get(override.get("model_id")) if isinstance(override, dict) else None
    normalised = _normalise(label, override, require_pipeline=base is None)
    if base is None:
        catalog[normalised["model_id"]] = normalised
        return
    merged = dict(base)
    given = {key for key in ITEM_KEYS if key in override}
    for key in given:
        merged[key] = normalised[key]
    if "vram_gb" in given or "vram_mib" in given:
        merged["vram_mib"] = normalised["vram_mib"]
        merged["vram_gb"] = normalised.get("vram_gb")
        if "vram_source" not in given:
            merged["vram_source"] = "operator override (%s)" % label
    catalog[normalised["model_id"]] = merged


def _normalise(label: str, item: Any, require_pipeline: bool) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise CatalogError("%s must be a mapping with at least model_id, not %s." % (label, type(item).__name__))
    unknown = sorted(str(key) for key in item if key not in ITEM_KEYS)
    if unknown:
        raise CatalogError("%s has unknown key(s) %s. Fix: use only %s." % (label, ", ".join(unknown),
                                                                            ", ".join(ITEM_KEYS)))
    for key in _TEXT_KEYS:
        if key in item and item[key] is not None and not isinstance(item[key], str):
            raise CatalogError("%s.%s must be a string, not %r." % (label, key, item[key]))
    if not item.get("model_id"):
        raise CatalogError("%s.model_id is missing. Fix: give the model's Hugging Face id." % label)
    if require_pipeline and not item.get("pipeline"):
        raise CatalogError("%s.pipeline is missing for %s, which the catalog does not know yet. Fix: add "
                           "pipeline (e.g. llm)." % (label, item["model_id"]))
    normalised = {key: item.get(key) for key in ITEM_KEYS}
    normalised["vram_mib"] = _vram_mib(label, item)
    normalised["download_mb"] = _positive_int(label, "download_mb", item.get("download_mb"))
    return normalised


def _vram_mib(label: str, item: Mapping[str, Any]) -> int | None:
    gigabytes = item.get("vram_gb")
    mib = item.get("vram_mib")
    if gigabytes is not None and mib is not None:
        raise CatalogError("%s gives both vram_gb and vram_mib. Fix: keep one." % label)
    if mib is not None:
        return _positive_int(label, "vram_mib", mib)
    if gigabytes is None:
        return None
    if isinstance(gigabytes, bool) or not isinstance(gigabytes, (int, float)) or gigabytes <= 0:
        raise CatalogError("%s.vram_gb must be a positive number of GB, not %r." % (label, gigabytes))
    return gb_to_mib(gigabytes)


def _positive_int(label: str, key: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CatalogError("%s.%s must be a positive whole number, not %r." % (label, key, value))
    return value
