# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""The placement planner: a host's GPUs x the operator's model menu x the catalog.

The result (docs/internals.md, "The planner") says which model goes on which GPU, warm or cold,
the aiModels.json entries for the host, the Ollama + runner stacks to deploy, and for every menu
item it could not place a reason naming the host, the model, the VRAM needed and the VRAM each
GPU has. Same input, same output: nothing here depends on dict or set iteration order.

go-livepeer facts the rules rest on (shared/contracts/go-livepeer-aimodels.md and
ai/worker/docker.go allocGPU):
- a managed container (no url) takes one GPU slot; warm ones are started at boot in file
  order on the first free GPU of the -nvidia list, and are never stopped to make room;
- a cold managed model is started on request on a GPU without a container (or one whose
  container is idle and cold), whichever GPU that is: it must fit on every such GPU;
- url entries take no slot; lpfleet's Ollama stack holds their VRAM.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

from ansible_collections.lpfleet.ai.plugins.module_utils.aimodels_rules import canonical_entry, validate_entries
from ansible_collections.lpfleet.ai.plugins.plugin_utils.catalog import CatalogError, load_catalog, ollama_tags

MENU_VARIABLE = "lpfleet_model_menu"
GPUS_VARIABLE = "lpfleet_gpus"
LPFLEET_KEYS = ("vram_mib", "ollama_tag", "download_mb", "required")
LAYOUTS = ("shared", "per_gpu")
RUNNER_ADDRESSES = ("container", "loopback")

_CONTAINER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_OLLAMA_TAG = re.compile(r"^\S+$")


class PlanError(ValueError):
    """Bad input: the message names the host, the variable, the field and the fix."""


@dataclass(frozen=True)
class PlanOptions:
    host: str = ""
    headroom_mib: int = 512
    layout: str = "shared"
    runner_address: str = "container"
    runner_name: str = "llm_runner"
    runner_port: int = 8000
    ollama_name: str = "ollama"
    ollama_port: int = 11434


@dataclass
class _Gpu:
    index: int
    name: str
    total: int
    resident: int = 0
    warm_managed: str | None = None
    managed_resident: int = 0

    @property
    def free(self) -> int:
        return self.total - self.resident

    def describe(self) -> str:
        text = "GPU%d %s has %d MiB of %d MiB free" % (self.index, self.name, self.free, self.total)
        if self.warm_managed:
            text += " (its container slot holds warm %s)" % self.warm_managed
        return text


@dataclass
class _Item:
    menu_index: int
    entry: dict[str, Any]
    external: bool
    vram_mib: int | None = None
    ollama_tag: str | None = None
    download_mb: int | None = None
    gpu: _Gpu | None = field(default=None, repr=False)

    @property
    def pipeline(self) -> str:
        return self.entry["pipeline"]

    @property
    def model_id(self) -> str:
        return self.entry["model_id"]

    @property
    def warm(self) -> bool:
        return self.entry.get("warm") is True

    @property
    def served_by_ollama(self) -> bool:
        return self.pipeline == "llm" and not self.external

    @property
    def managed(self) -> bool:
        return self.pipeline != "llm" and not self.external

    def title(self, host: str) -> str:
        return "%s: %s %s (%s)" % (host, self.pipeline, self.model_id, "warm" if self.warm else "cold")


def plan(
    gpus: Any,
    menu: Any,
    catalog_overrides: Any = None,
    options: PlanOptions = PlanOptions(),
) -> dict[str, Any]:
    """Place the menu on the host's GPUs; raise PlanError on bad input."""
    _check_options(options)
    host = options.host or "this host"
    gpu_list = _read_gpus(gpus, host)
    try:
        catalog = load_catalog(catalog_overrides)
    except CatalogError as exc:
        raise PlanError("%s: %s" % (host, exc)) from exc
    items = _read_menu(menu, catalog, options, host)
    unplaced: dict[int, str] = {}
    for item in [i for i in items if i.warm and not i.external] + [i for i in items if not i.warm and not i.external]:
        reason = _place(item, gpu_list, options.headroom_mib, host)
        if reason:
            unplaced[item.menu_index] = reason
    result = _assemble(gpu_list, items, unplaced, options)
    _check_emitted(result["ai_models"], len(gpu_list), catalog, host)
    return result


# --- input -----------------------------------------------------------------------------------


def _check_options(options: PlanOptions) -> None:
    host = options.host or "this host"
    problems = []
    if not isinstance(options.host, str):
        problems.append("host must be a string (inventory_hostname), not %r." % (options.host,))
    if not _is_int(options.headroom_mib) or options.headroom_mib < 0:
        problems.append("headroom_mib must be a whole number of MiB, 0 or more, not %r." % (options.headroom_mib,))
    if options.layout not in LAYOUTS:
        problems.append("layout must be one of %s, not %r." % (", ".join(LAYOUTS), options.layout))
    if options.runner_address not in RUNNER_ADDRESSES:
        problems.append("runner_address must be one of %s, not %r."
                        % (", ".join(RUNNER_ADDRESSES), options.runner_address))
    for name in ("runner_name", "ollama_name"):
        value = getattr(options, name)
        if not isinstance(value, str) or not _CONTAINER_NAME.match(value):
            problems.append("%s must be a Docker container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*), not %r." % (name, value))
    for name in ("runner_port", "ollama_port"):
        value = getattr(options, name)
        if not _is_int(value) or not 1 <= value <= 65000:
            problems.append("%s must be a TCP port from 1 to 65000 (per_gpu adds the GPU index), not %r."
                            % (name, value))
    if problems:
        raise PlanError("plan_ai_models for %s: bad argument(s):\n- %s" % (host, "\n- ".join(problems)))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read_gpus(gpus: Any, host: str) -> list[_Gpu]:
    if gpus is None:
        return []
    if not isinstance(gpus, list):
        raise PlanError("%s: %s must be a list (the facts lpfleet.ai.gpu_facts sets), not %s."
                        % (host, GPUS_VARIABLE, type(gpus).__name__))
    result: dict[int, _Gpu] = {}
    for position, gpu in enumerate(gpus):
        label = "%s: %s[%d]" % (host, GPUS_VARIABLE, position)
        if not isinstance(gpu, Mapping):
            raise PlanError("%s must be a mapping with index and memory_total_mib. Fix: gather the facts with "
                            "lpfleet.ai.gpu_facts." % label)
        index, total = gpu.get("index"), gpu.get("memory_total_mib")
        if not _is_int(index) or index < 0:
            raise PlanError("%s.index must be a whole number from 0, not %r." % (label, index))
        if not _is_int(total) or total <= 0:
            raise PlanError("%s.memory_total_mib must be a positive whole number of MiB, not %r." % (label, total))
        if index in result:
            raise PlanError("%s.index %d appears twice. Fix: one item per GPU." % (label, index))
        result[index] = _Gpu(index=index, name=str(gpu.get("name") or "GPU"), total=total)
    return [result[index] for index in sorted(result)]


def _get_folded(item: Mapping[str, Any], name: str) -> Any:
    for key, value in item.items():
        if isinstance(key, str) and key.lower() == name:
            return value
    return None


def _is_external(entry: Mapping[str, Any], options: PlanOptions) -> bool:
    """True for an item served by someone else's container: it has a url that is not lpfleet's runner.

    An llm item whose url names lpfleet's runner (the docs' http://llm_runner:8000, a per_gpu runner, or a loopback
    runner port) is lpfleet's to serve: the planner places it and writes the url of the runner it planned.
    """
    url = entry.get("url")
    if url is None:
        return False
    if entry.get("pipeline") != "llm":
        return True
    parts = urlsplit(url)
    if parts.hostname == options.runner_name or re.fullmatch(re.escape(options.runner_name) + r"_gpu\d+",
                                                             parts.hostname or ""):
        return False
    loopback_port = parts.port is not None and options.runner_port <= parts.port < options.runner_port + 64
    return not (parts.hostname in ("127.0.0.1", "localhost") and loopback_port)


def _candidate_entry(item: Any, options: PlanOptions) -> Any:
    """The aiModels.json entry a menu item asks for (llm items get a runner url, as they will)."""
    if not isinstance(item, Mapping):
        return item
    entry = {key: value for key, value in item.items() if key not in LPFLEET_KEYS}
    if _get_folded(item, "pipeline") == "llm" and _get_folded(item, "url") is None:
        entry["url"] = "http://%s:%d" % (options.runner_name, options.runner_port)
    return entry


def _read_menu(menu: Any, catalog: Mapping[str, Mapping[str, Any]], options: PlanOptions, host: str) -> list[_Item]:
    if menu is None:
        menu = []
    if not isinstance(menu, list):
        raise PlanError("%s: %s must be a list of models, not %s. Fix: write a YAML list (- pipeline: ...)."
                        % (host, MENU_VARIABLE, type(menu).__name__))
    candidates = [_candidate_entry(item, options) for item in menu]
    report = validate_entries(candidates, known_models=ollama_tags(catalog))
    problems = [finding.describe("%s[%d]" % (MENU_VARIABLE, finding.index))
                for finding in sorted(report.errors + report.warnings, key=lambda f: f.index or 0)]
    items: list[_Item] = []
    if not problems:
        for index, item in enumerate(menu):
            entry = canonical_entry(candidates[index])
            built = _Item(menu_index=index, entry=entry, external=_is_external(entry, options))
            problems.extend(_resolve(built, item, catalog))
            items.append(built)
    if problems:
        raise PlanError("plan_ai_models for %s: %s has %d problem(s):\n- %s"
                        % (host, MENU_VARIABLE, len(problems), "\n- ".join(problems)))
    return items


def _resolve(item: _Item, raw: Mapping[str, Any], catalog: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Fill in VRAM, Ollama tag and download size from the item and the catalog; return the problems."""
    label = "%s[%d]" % (MENU_VARIABLE, item.menu_index)
    problems = _lpfleet_key_problems(item, raw, label)
    if item.external or problems:
        return problems
    known = catalog.get(item.model_id)
    if known is not None and (known["pipeline"] == "llm") != (item.pipeline == "llm"):
        problems.append("%s.pipeline = %s: the catalog lists %s as a %s model. Fix: use pipeline %s, or another "
                        "model_id." % (label, item.pipeline, item.model_id, known["pipeline"], known["pipeline"]))
        return problems
    item.vram_mib = raw.get("vram_mib") or (known or {}).get("vram_mib")
    if item.served_by_ollama:
        item.ollama_tag = raw.get("ollama_tag") or (known or {}).get("ollama_tag")
        item.download_mb = raw.get("download_mb") or (known or {}).get("download_mb")
    if known is None and item.vram_mib is None:
        needs = "vram_mib and ollama_tag" if item.served_by_ollama and not item.ollama_tag else "vram_mib"
        problems.append("%s.model_id = %s: not in the model catalog, so lpfleet knows neither its VRAM need nor "
                        "(for llm) its Ollama tag. Fix: add %s to the item, or the model to "
                        "lpfleet_model_catalog_overrides." % (label, item.model_id, needs))
    elif item.vram_mib is None:
        problems.append("%s.model_id = %s: the catalog has no VRAM figure for it (%s). Fix: add vram_mib to the "
                        "item." % (label, item.model_id, (known or {}).get("vram_source") or "no source"))
    elif item.served_by_ollama and not item.ollama_tag:
        problems.append("%s.model_id = %s: lpfleet does not know its Ollama tag. Fix: add ollama_tag (e.g. "
                        "llama3.1:8b)." % (label, item.model_id))
    return problems


def _lpfleet_key_problems(item: _Item, raw: Mapping[str, Any], label: str) -> list[str]:
    problems = []
    for key in ("vram_mib", "download_mb"):
        if key in raw and (not _is_int(raw[key]) or raw[key] <= 0):
            problems.append("%s.%s = %r: must be a positive whole number of %s. Fix: e.g. %s: 7630."
                            % (label, key, raw[key], "MiB" if key == "vram_mib" else "MB", key))
    if "ollama_tag" in raw and (not isinstance(raw["ollama_tag"], str) or not _OLLAMA_TAG.match(raw["ollama_tag"])):
        problems.append("%s.ollama_tag = %r: must be an Ollama model name. Fix: e.g. ollama_tag: llama3.1:8b."
                        % (label, raw["ollama_tag"]))
    for key in ("ollama_tag", "download_mb"):
        if key in raw and not item.served_by_ollama:
            why = "an external url" if item.external else "pipeline %s" % item.pipeline
            problems.append("%s.%s: only llm items served by lpfleet's Ollama stack use it, and this item has %s. "
                            "Fix: remove %s." % (label, key, why, key))
    return problems


# --- placement -------------------------------------------------------------------------------


def _place(item: _Item, gpus: list[_Gpu], headroom: int, host: str) -> str | None:
    """Put the item on a GPU (item.gpu); return None, or the reason it cannot go anywhere."""
    vram = item.vram_mib or 0
    if not gpus:
        return "%s needs %d MiB of VRAM, but the host has no NVIDIA GPU (%s is empty)." % (
            item.title(host), vram, GPUS_VARIABLE)
    if item.warm:
        return _place_warm(item, gpus, vram, headroom, host)
    if item.managed:
        return _place_cold_managed(item, gpus, vram, headroom, host)
    return _place_cold_ollama(item, gpus, vram, headroom, host)


def _needs(item: _Item, vram: int, headroom: int, host: str) -> str:
    return "%s needs %d MiB + %d MiB headroom = %d MiB" % (item.title(host), vram, headroom, vram + headroom)


def _place_warm(item: _Item, gpus: list[_Gpu], vram: int, headroom: int, host: str) -> str | None:
    fitting = [g for g in gpus if g.free >= vram + headroom and not (item.managed and g.warm_managed)]
    if not fitting:
        why = "; ".join(g.describe() for g in gpus)
        rule = " (one warm managed model per GPU)" if item.managed else ""
        return "%s resident%s; %s." % (_needs(item, vram, headroom, host), rule, why)
    gpu = min(fitting, key=lambda g: (g.free - vram, g.index))
    gpu.resident += vram
    if item.managed:
        gpu.warm_managed = item.model_id
        gpu.managed_resident += vram
    item.gpu = gpu
    return None


def _place_cold_managed(item: _Item, gpus: list[_Gpu], vram: int, headroom: int, host: str) -> str | None:
    free_slots = [g for g in gpus if not g.warm_managed]
    if not free_slots:
        return ("%s and a free container slot, but every GPU's slot holds a warm model: %s. go-livepeer never stops "
                "a warm container to load a cold one (one container per GPU: -aiRunnerContainersPerGPU 1)."
                % (_needs(item, vram, headroom, host), "; ".join(g.describe() for g in gpus)))
    too_small = [g for g in free_slots if g.free < vram + headroom]
    if too_small:
        too_small_names = ", ".join("GPU%d" % g.index for g in too_small)
        return ("%s on whichever GPU has no container when a request comes (go-livepeer picks it, not lpfleet), "
                "and it does not fit on %s; %s."
                % (_needs(item, vram, headroom, host), too_small_names, "; ".join(g.describe() for g in gpus)))
    item.gpu = free_slots[0]
    return None


def _place_cold_ollama(item: _Item, gpus: list[_Gpu], vram: int, headroom: int, host: str) -> str | None:
    """Ollama loads a cold model on request and may unload its own idle models for it, never go-livepeer's."""
    fitting = [g for g in gpus if g.total - g.managed_resident >= vram + headroom]
    if not fitting:
        return "%s when Ollama loads it on request; %s." % (
            _needs(item, vram, headroom, host),
            "; ".join("GPU%d %s has %d MiB of %d MiB not held by go-livepeer's warm containers"
                      % (g.index, g.name, g.total - g.managed_resident, g.total) for g in gpus))

    def left_over(gpu: _Gpu) -> tuple[int, int, int]:
        beside_warm = gpu.free >= vram + headroom
        room = gpu.free if beside_warm else gpu.total - gpu.managed_resident
        return (0 if beside_warm else 1, room - vram, gpu.index)

    item.gpu = min(fitting, key=left_over)
    return None


# --- output ----------------------------------------------------------------------------------


def _stack_for(gpu: _Gpu, gpus: list[_Gpu], options: PlanOptions) -> dict[str, Any]:
    per_gpu = options.layout == "per_gpu"
    suffix = "_gpu%d" % gpu.index if per_gpu else ""
    offset = gpu.index if per_gpu else 0
    runner_container = options.runner_name + suffix
    ollama_container = options.ollama_name + suffix
    runner_port = options.runner_port + offset
    if options.runner_address == "loopback":
        runner_url = "http://127.0.0.1:%d" % runner_port
    else:
        runner_url = "http://%s:%d" % (runner_container, options.runner_port)
    return {
        "name": "gpu%d" % gpu.index if per_gpu else "default",
        "ollama_container": ollama_container,
        "runner_container": runner_container,
        "ollama_port": options.ollama_port + offset,
        "runner_port": runner_port,
        "gpu_indices": [gpu.index] if per_gpu else [g.index for g in gpus],
        "ollama_url": "http://%s:%d" % (ollama_container, options.ollama_port),
        "runner_url": runner_url,
        "models": [],
    }


def _assemble(gpus: list[_Gpu], items: list[_Item], unplaced: dict[int, str], options: PlanOptions) -> dict[str, Any]:
    stacks: dict[str, dict[str, Any]] = {}
    placement, ai_models, tags = [], [], {}
    for item in items:
        if item.menu_index in unplaced:
            continue
        entry = dict(item.entry)
        stack_name = None
        if item.served_by_ollama and item.gpu is not None:
            stack = _stack_for(item.gpu, gpus, options)
            stack = stacks.setdefault(stack["name"], stack)
            stack["models"].append({"ollama_tag": item.ollama_tag, "model_id": item.model_id, "warm": item.warm,
                                    "download_mb": item.download_mb})
            entry["url"] = stack["runner_url"]
            stack_name = stack["name"]
            tags.setdefault(item.ollama_tag, item.download_mb)
        placement.append({
            "menu_index": item.menu_index,
            "pipeline": item.pipeline,
            "model_id": item.model_id,
            "gpu_index": item.gpu.index if item.gpu is not None else None,
            "warm": item.warm,
            "vram_mib": item.vram_mib,
            "managed": item.managed,
            "ollama_tag": item.ollama_tag,
            "stack": stack_name,
        })
        ai_models.append(canonical_entry(entry))
    return {
        "host": options.host,
        "layout": options.layout,
        "gpus": [{
            "index": g.index,
            "name": g.name,
            "memory_total_mib": g.total,
            "planned_mib": g.resident,
            "free_after_mib": g.free,
            "warm_managed": g.warm_managed,
        } for g in gpus],
        "placement": placement,
        "ai_models": ai_models,
        "nvidia_devices": _nvidia_devices(gpus, placement),
        "stacks": [stacks[name] for name in sorted(stacks, key=lambda n: (n != "default", len(n), n))],
        "ollama_tags": sorted(tags),
        "download_mb": sum(size for size in tags.values() if size),
        "unplaced": [{
            "menu_index": item.menu_index,
            "pipeline": item.pipeline,
            "model_id": item.model_id,
            "reason": unplaced[item.menu_index],
        } for item in items if item.menu_index in unplaced],
    }


def _nvidia_devices(gpus: list[_Gpu], placement: list[dict[str, Any]]) -> str:
    """go-livepeer's -nvidia value: warm managed GPUs in file order (it warms the n-th entry on the n-th GPU)."""
    warm_first = [p["gpu_index"] for p in placement if p["managed"] and p["warm"]]
    rest = [g.index for g in gpus if g.index not in warm_first]
    return ",".join(str(index) for index in warm_first + rest)


def _check_emitted(entries: list[dict[str, Any]], gpu_count: int, catalog: Mapping[str, Any], host: str) -> None:
    report = validate_entries(entries, gpu_count=gpu_count, known_models=ollama_tags(catalog))
    findings = report.errors + report.warnings
    if findings:  # a planner bug, not an input problem: say so plainly
        raise PlanError("plan_ai_models for %s produced entries that fail lpfleet's own rules (a bug in lpfleet, "
                        "please report it):\n- %s" % (host, "\n- ".join(f.describe() for f in findings)))
