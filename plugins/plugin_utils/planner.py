# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""The placement planner: a host's GPUs x the operator's model menu x the catalog.

The result (docs/internals.md, "The planner") says which model goes on which GPU, warm or cold,
the aiModels.json entries for the host, go-livepeer's -nvidia value, the Ollama + runner stacks to
deploy, and for every menu item it could not place a reason naming the host, the model, the VRAM
needed and the VRAM each GPU has. Same input, same output: nothing here depends on dict or set
iteration order.

go-livepeer facts the rules rest on (shared/contracts/go-livepeer-aimodels.md, "Warm models, GPUs,
duplicates"):
- a managed container (no url) takes one GPU slot; warm ones are started at boot in file order,
  the n-th warm managed entry on the n-th device of the -nvidia list, never stopped to make room;
- a cold managed model (and a second container of a busy one) is started on request on any listed
  device without a container: it must fit on every such device;
- url entries take no slot; lpfleet's Ollama stack holds their VRAM, and Ollama is not bound by
  -nvidia (it sees the GPUs its stack reserves).

The served items are the lexicographic optimum: menu order is priority, and an item is served
when the items served before it and it can all be placed together, in any arrangement (exact
search, `_arrange` below). With -nvidia left to lpfleet every subset of a placeable set
is placeable, so this greedy choice is the optimum an exhaustive search finds
(tests/unit/test_placement_exhaustive.py).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, fields
from itertools import combinations
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from ansible_collections.lpfleet.ai.plugins.module_utils.aimodels_rules import canonical_entry, validate_entries
from ansible_collections.lpfleet.ai.plugins.module_utils.ollama_names import name_problem
from ansible_collections.lpfleet.ai.plugins.plugin_utils.catalog import (
    CONTEXT_MARGIN_TEXT,
    CatalogError,
    load_catalog,
    ollama_tags,
    weights_floor_mib,
)

MENU_VARIABLE = "lpfleet_model_menu"
GPUS_VARIABLE = "lpfleet_gpus"
LPFLEET_KEYS = ("vram_mib", "ollama_tag", "download_mb", "required")
LAYOUTS = ("shared", "per_gpu")
RUNNER_ADDRESSES = ("container", "loopback")
UNPLACED_ACTIONS = ("warn", "fail")
MAX_PORT = 65535

_CONTAINER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


class PlanError(ValueError):
    """Bad input: the message names the host, the variable, the field and the fix."""


def _doc(variable: str | None, description: str, choices: tuple[str, ...] = ()) -> dict[str, Any]:
    """A planner option's metadata: with the field's type and default, the one source of what is said about it.

    `variable`: the inventory variable the plan role passes (lookup lpfleet.ai.plan_options); an
    `lpfleet_*` one is roles/plan's own, and scripts/plan-options writes its default, argument spec and
    README row, and the filter's DOCUMENTATION, from the field (tests/unit/test_plan_options.py checks them).
    None: the caller passes it itself. `description` uses Ansible's markup (C(...), O(...)).
    """
    return {"variable": variable, "description": description, "choices": choices}


@dataclass(frozen=True)
class PlanOptions:
    host: str = field(default="", metadata=_doc(
        "inventory_hostname", "The host's name, used in messages (C(inventory_hostname))."))
    headroom_mib: int = field(default=512, metadata=_doc(
        "lpfleet_vram_headroom_mib",
        "VRAM (MiB) kept free on every GPU on top of the resident (warm) models, for inference peaks."))
    layout: str = field(default="shared", metadata=_doc(
        "lpfleet_stack_layout",
        "C(shared) deploys one Ollama + runner pair using all GPUs, as in the Livepeer docs; C(per_gpu) one pair "
        "per GPU that serves an C(llm) model, with names and ports suffixed by the GPU index.",
        LAYOUTS))
    runner_address: str = field(default="container", metadata=_doc(
        "lpfleet_runner_address",
        "How go-livepeer reaches the runner. C(container) uses the runner's container name on the shared Docker "
        "network; C(loopback) uses C(http://127.0.0.1:<port>), for go-livepeer on host networking.",
        RUNNER_ADDRESSES))
    runner_name: str = field(default="llm_runner", metadata=_doc(
        "lpfleet_runner_name", "The runner's container name (C(per_gpu) adds C(_gpu<index>))."))
    runner_port: int = field(default=8000, metadata=_doc(
        "lpfleet_runner_port",
        "The runner's port, inside its container and published on the host (C(per_gpu) publishes port + index)."))
    ollama_name: str = field(default="ollama", metadata=_doc(
        "lpfleet_ollama_name", "Ollama's container name (C(per_gpu) adds C(_gpu<index>))."))
    ollama_port: int = field(default=11434, metadata=_doc(
        "lpfleet_ollama_port",
        "Ollama's port, inside its container and published on the host (C(per_gpu) publishes port + index)."))
    livepeer_nvidia: str | None = field(default=None, metadata=_doc(
        None,
        "go-livepeer's actual C(-nvidia) value (GPU indices such as C(1,0), or C(all); an empty string when the "
        "node runs without the flag), read from its container command or systemd unit. Omitted when lpfleet tells "
        "the operator which value to use."))
    unplaced_action: str = field(default="warn", metadata=_doc(
        "lpfleet_unplaced_action",
        "What a menu item that fits no GPU does. C(warn) lists it under C(unplaced) only (the play goes on without "
        "it); C(fail) also puts it under C(blocking) (stop the host). Items with C(required=true) always stop it.",
        UNPLACED_ACTIONS))
    bind_address: str = field(default="127.0.0.1", metadata=_doc(
        "ollama_stack_bind_address",
        "The address the stacks' ports are published on (C(ollama_stack_bind_address)); gives the stacks' "
        "C(ollama_host_url) and C(runner_host_url), where the host itself reaches them (the loopback for "
        "C(127.0.0.1), C(0.0.0.0), C(::1) and C(::); IPv6 addresses in brackets)."))


# The inventory variables behind the planner's options, for messages (from PlanOptions).
OPTION_VARIABLES = {option.name: option.metadata["variable"] for option in fields(PlanOptions)
                    if option.metadata["variable"]}


@dataclass
class _Gpu:
    index: int
    name: str
    total: int
    usable: bool = True
    resident: int = 0
    warm_managed: str | None = None
    managed_resident: int = 0

    @property
    def free(self) -> int:
        return self.total - self.resident

    def describe(self) -> str:
        if not self.usable:
            return "GPU%d %s has no usable memory (%d MiB)" % (self.index, self.name, self.total)
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
    vram_basis: str | None = None
    ollama_tag: str | None = None
    download_mb: int | None = None
    required: bool = False
    gpu: _Gpu | None = field(default=None, repr=False)
    pool: list[_Gpu] = field(default_factory=list, repr=False)

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

    @property
    def vram(self) -> int:
        return self.vram_mib or 0

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
    gpu_list = _read_gpus(gpus, host, options.headroom_mib)
    try:
        catalog = load_catalog(catalog_overrides)
    except CatalogError as exc:
        raise PlanError("%s: %s" % (host, exc)) from exc
    items = _read_menu(menu, catalog, options, host)
    _check_duplicates(items, host)
    placeable = [item for item in items if not item.external]
    best = _choose(placeable, gpu_list, options.headroom_mib, None, host)
    devices, problem = None, None
    if options.livepeer_nvidia is not None:
        devices, why = _node_devices(options.livepeer_nvidia, gpu_list, placeable)
        if devices is not None:
            on_node = _choose(placeable, gpu_list, options.headroom_mib, devices, host)
            if on_node.served == best.served:
                best = on_node
            else:
                why, devices = _lost_items(best, on_node, placeable), None
        if why:
            needed = _device_list(best, placeable, gpu_list, options.headroom_mib)
            problem = _nvidia_problem(options.livepeer_nvidia, why, needed, host)
    _apply(best, placeable, gpu_list, options.headroom_mib, devices)
    result = _assemble(gpu_list, items, best.unplaced, options, devices)
    result["livepeer_nvidia"] = options.livepeer_nvidia
    result["nvidia_problem"] = problem
    result["warnings"] = [_unusable_warning(g, options.headroom_mib, host) for g in gpu_list if not g.usable]
    result["blocking"], result["blocking_problem"] = _blocking(result["unplaced"], options, host)
    _check_stacks(result["stacks"], result["placement"], host)
    _check_emitted(result["ai_models"], len(gpu_list), catalog, host)
    return result
# --- input -----------------------------------------------------------------------------------


def _check_options(options: PlanOptions) -> None:
    host = options.host or "this host"
    problems = []
    if not isinstance(options.host, str):
        problems.append("host must be a string (inventory_hostname), not %r." % (options.host,))
    if not _is_int(options.headroom_mib) or options.headroom_mib < 0:
        problems.append("%s must be a whole number of MiB, 0 or more, not %r."
                        % (_label("headroom_mib"), options.headroom_mib))
    for name, choices in (("layout", LAYOUTS), ("runner_address", RUNNER_ADDRESSES),
                          ("unplaced_action", UNPLACED_ACTIONS)):
        value = getattr(options, name)
        if value not in choices:
            problems.append("%s must be one of %s, not %r." % (_label(name), ", ".join(choices), value))
    for name in ("runner_name", "ollama_name"):
        value = getattr(options, name)
        if not isinstance(value, str) or not _CONTAINER_NAME.match(value):
            problems.append("%s must be a Docker container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*), not %r."
                            % (_label(name), value))
    for name in ("runner_port", "ollama_port"):
        value = getattr(options, name)
        if not _is_int(value) or not 1 <= value <= MAX_PORT:
            problems.append("%s must be a TCP port from 1 to %d, not %r." % (_label(name), MAX_PORT, value))
    try:
        host_address(options.bind_address)
    except ValueError as err:
        problems.append(str(err))
    if options.livepeer_nvidia is not None and not isinstance(options.livepeer_nvidia, str):
        problems.append("livepeer_nvidia must be go-livepeer's -nvidia value as a string (e.g. \"0,1\"), not %r."
                        % (options.livepeer_nvidia,))
    if problems:
        raise PlanError("plan_ai_models for %s: bad argument(s):\n- %s\nFix: set each variable named to a value it "
                        "allows (the planner's option in brackets)." % (host, "\n- ".join(problems)))


def _label(name: str) -> str:
    """The variable behind option NAME, with the option in brackets (`lpfleet_runner_port (runner_port)`)."""
    variable = OPTION_VARIABLES.get(name)
    return "%s (%s)" % (variable, name) if variable else name


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read_gpus(gpus: Any, host: str, headroom: int) -> list[_Gpu]:
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
        if not _is_int(total) or total < 0:
            raise PlanError("%s.memory_total_mib must be a whole number of MiB, 0 or more, not %r." % (label, total))
        if index in result:
            raise PlanError("%s.index %d appears twice. Fix: one item per GPU." % (label, index))
        result[index] = _Gpu(index=index, name=str(gpu.get("name") or "GPU"), total=total, usable=total > headroom)
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
    _raise_to_weights(item)
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


def _raise_to_weights(item: _Item) -> None:
    """Never less VRAM than the weights (the download) plus the context margin; say so when that is more."""
    if item.vram_mib is None or not item.download_mb:
        return
    floor = weights_floor_mib(item.download_mb)
    if floor > item.vram_mib:
        item.vram_basis = ("%d MiB: its %d MB download (the weights) + %s, more than the %d MiB the catalog or the "
                           "menu gives" % (floor, item.download_mb, CONTEXT_MARGIN_TEXT, item.vram_mib))
        item.vram_mib = floor


def _check_duplicates(items: list[_Item], host: str) -> None:
    """The same pipeline and model twice: go-livepeer adds the capacities, lpfleet would count the VRAM twice."""
    first: dict[tuple[str, str], int] = {}
    problems = []
    for item in items:
        key = (item.pipeline, item.model_id)
        if key in first:
            problems.append("%s[%d] repeats %s[%d] (%s %s). Fix: keep one item; for more concurrency on a url item "
                            "raise its capacity." % (MENU_VARIABLE, item.menu_index, MENU_VARIABLE, first[key],
                                                     item.pipeline, item.model_id))
        else:
            first[key] = item.menu_index
    if problems:
        raise PlanError("plan_ai_models for %s: %s has %d duplicated item(s):\n- %s"
                        % (host, MENU_VARIABLE, len(problems), "\n- ".join(problems)))


def _lpfleet_key_problems(item: _Item, raw: Mapping[str, Any], label: str) -> list[str]:
    problems = []
    for key in ("vram_mib", "download_mb"):
        if key in raw and (not _is_int(raw[key]) or raw[key] <= 0):
            problems.append("%s.%s = %r: must be a positive whole number of %s. Fix: e.g. %s: 7630."
                            % (label, key, raw[key], "MiB" if key == "vram_mib" else "MB", key))
    if "required" in raw and not isinstance(raw["required"], bool):
        problems.append("%s.required = %r is not a boolean. Fix: write required: true or required: false (YAML "
                        "booleans, not strings)." % (label, raw["required"]))
    else:
        item.required = raw.get("required") is True
    tag_problem = name_problem(raw["ollama_tag"]) if "ollama_tag" in raw else None
    if tag_problem:
        problems.append("%s.ollama_tag = %r %s. Fix: e.g. ollama_tag: llama3.1:8b."
                        % (label, raw["ollama_tag"], tag_problem))
    for key in ("ollama_tag", "download_mb"):
        if key in raw and not item.served_by_ollama:
            why = "an external url" if item.external else "pipeline %s" % item.pipeline
            problems.append("%s.%s: only llm items served by lpfleet's Ollama stack use it, and this item has %s. "
                            "Fix: remove %s." % (label, key, why, key))
    return problems


# --- placement -------------------------------------------------------------------------------


@dataclass
class _Choice:
    """The items served (menu indexes, menu order), where the warm ones go, and why the others are not served."""

    served: list[int]
    warm_gpu: dict[int, int]  # menu_index -> position in the GPU list
    unplaced: dict[int, str]


def _choose(items: list[_Item], gpus: list[_Gpu], headroom: int, devices: list[int] | None, host: str) -> _Choice:
    """Menu order is priority: an item is served when it and every item served before it can be placed together."""
    served: list[_Item] = []
    arrangement: dict[int, int] = {}
    unplaced: dict[int, str] = {}
    for position, item in enumerate(items):
        found = _arrange(served + [item], gpus, headroom, devices)
        if found is None and devices is not None:
            found = _arrange_with_later(served + [item], items[position + 1:], gpus, headroom, devices)
        if found is None:
            unplaced[item.menu_index] = _refusal(item, served, arrangement, gpus, headroom, devices, host)
        else:
            served.append(item)
            arrangement = found
    if devices is not None and served:  # the last arrangement may hold later models that helped and then were not
        arrangement = _arrange(served, gpus, headroom, devices) or {}
    return _Choice([item.menu_index for item in served], arrangement, unplaced)


def _arrange(items: list[_Item], gpus: list[_Gpu], headroom: int, devices: list[int] | None) -> dict[int, int] | None:
    """A GPU for every warm item such that all of ITEMS run together under go-livepeer's rules, or None.

    DEVICES: go-livepeer's -nvidia as GPU indices when the node's is given (the k warm managed models then take the
    first k listed GPUs, and cold managed models must fit every other listed GPU); None when lpfleet chooses it.
    """
    warm = sorted((item for item in items if item.warm), key=lambda i: (not i.managed, -i.vram, i.menu_index))
    warm_managed_count = sum(1 for item in warm if item.managed)
    position = {gpu.index: place for place, gpu in enumerate(gpus)}
    usable = [gpu.usable for gpu in gpus]
    pool: list[int] | None = None
    slot_allowed = list(usable)
    if devices is not None:
        if warm_managed_count > len(devices):
            return None
        slot_allowed = [False] * len(gpus)
        for index in devices[:warm_managed_count]:
            slot_allowed[position[index]] = True
        pool = [position[index] for index in devices[warm_managed_count:]]
    cold_managed = [item.vram for item in items if not item.warm and item.managed]
    leaf = _cold_check(gpus, headroom, max(cold_managed) if cold_managed else None,
                       sorted({item.vram for item in items if not item.warm and not item.managed}, reverse=True), pool)
    chosen = _search([(item.vram, item.managed) for item in warm], gpus, headroom, slot_allowed, leaf)
    if chosen is None:
        return None
    return {item.menu_index: place for item, place in zip(warm, chosen)}


def _arrange_with_later(items: list[_Item], later: list[_Item], gpus: list[_Gpu], headroom: int,
                        devices: list[int]) -> dict[int, int] | None:
    """With the node's -nvidia, later warm managed models can make ITEMS placeable: each takes a listed GPU, so the
    cold managed models no longer have to fit it. ITEMS are served when some of the later ones make them fit
    (those are then served in their turn)."""
    candidates = [item for item in later if item.warm and item.managed]
    for size in range(1, min(len(candidates), len(devices)) + 1):
        for extra in combinations(candidates, size):
            found = _arrange(items + list(extra), gpus, headroom, devices)
            if found is not None:
                return found
    return None


_Leaf = Callable[[list[int], list[bool], list[int]], bool]


def _cold_check(gpus: list[_Gpu], headroom: int, cold_managed_need: int | None, cold_llm_needs: list[int],
                pool: list[int] | None) -> _Leaf:
    """Whether the cold items fit once the warm ones are placed (room: VRAM left after residents and headroom).

    A cold managed model needs a GPU without a warm container where it fits (lpfleet then lists only such GPUs);
    with the node's -nvidia it must fit every listed GPU the warm containers leave (POOL). A cold llm needs a GPU
    whose total, less go-livepeer's warm containers and the headroom, holds it (Ollama unloads its own idle models).
    """
    totals = [gpu.total for gpu in gpus]
    usable = [gpu.usable for gpu in gpus]
    count = len(gpus)

    def fits(room: list[int], has_slot_taken: list[bool], managed_resident: list[int]) -> bool:
        if cold_managed_need is not None:
            if pool is None:
                if not any(usable[p] and not has_slot_taken[p] and room[p] >= cold_managed_need for p in range(count)):
                    return False
            elif not pool or not all(usable[p] and room[p] >= cold_managed_need for p in pool):
                return False
        return all(any(usable[p] and totals[p] - headroom - managed_resident[p] >= need for p in range(count))
                   for need in cold_llm_needs)

    return fits


def _search(warm: list[tuple[int, bool]], gpus: list[_Gpu], headroom: int, slot_allowed: list[bool],
            leaf: _Leaf) -> list[int] | None:
    """Depth-first search over the warm items' GPUs (largest first), preferred GPUs tried first.

    Preference: a GPU without a warm model (spread before sharing), then the least room left (the largest GPUs
    stay free for cold models), then the lower index. GPUs in the same state are tried once, and a state that
    failed is not searched again, so the search is exact and small.
    """
    count = len(gpus)
    totals = [gpu.total for gpu in gpus]
    room = [gpu.total - headroom if gpu.usable else -1 for gpu in gpus]
    slot_taken = [False] * count
    managed_resident = [0] * count
    warm_count = [0] * count
    chosen = [0] * len(warm)
    dead: set[tuple[Any, ...]] = set()

    def signature(place: int) -> tuple[int, int, bool, int, bool]:
        return (totals[place], room[place], slot_taken[place], managed_resident[place], slot_allowed[place])

    def visit(depth: int) -> bool:
        if depth == len(warm):
            return leaf(room, slot_taken, managed_resident)
        state = (depth, tuple(sorted(signature(p) for p in range(count))))
        if state in dead:
            return False
        vram, managed = warm[depth]
        candidates = [p for p in range(count)
                      if room[p] >= vram and not (managed and (slot_taken[p] or not slot_allowed[p]))]
        candidates.sort(key=lambda p: (warm_count[p] > 0, room[p] - vram, p))
        tried = set()
        for place in candidates:
            if signature(place) in tried:
                continue
            tried.add(signature(place))
            room[place] -= vram
            warm_count[place] += 1
            if managed:
                slot_taken[place] = True
                managed_resident[place] += vram
            chosen[depth] = place
            if visit(depth + 1):
                return True
            room[place] += vram
            warm_count[place] -= 1
            if managed:
                slot_taken[place] = False
                managed_resident[place] -= vram
        dead.add(state)
        return False

    return list(chosen) if visit(0) else None


def _gpu_states(items: list[_Item], arrangement: dict[int, int], gpus: list[_Gpu]) -> list[_Gpu]:
    """Copies of GPUS holding the warm ITEMS as ARRANGEMENT places them."""
    states = [_Gpu(index=g.index, name=g.name, total=g.total, usable=g.usable) for g in gpus]
    for item in items:
        if item.warm:
            gpu = states[arrangement[item.menu_index]]
            gpu.resident += item.vram
            if item.managed:
                gpu.warm_managed = item.model_id
                gpu.managed_resident += item.vram
    return states


def _cold_managed_pool(states: list[_Gpu], items: list[_Item], headroom: int,
                       devices: list[int] | None) -> list[_Gpu]:
    """The GPUs go-livepeer may start the cold managed models on: listed and without a warm container."""
    needs = [item.vram for item in items if item.managed and not item.warm]
    if not needs:
        return []
    if devices is not None:
        by_index = {gpu.index: gpu for gpu in states}
        taken = sum(1 for item in items if item.managed and item.warm)
        return [by_index[index] for index in devices[taken:]]
    return [gpu for gpu in states
            if gpu.usable and not gpu.warm_managed and gpu.free >= max(needs) + headroom]


def _device_list(choice: _Choice, items: list[_Item], gpus: list[_Gpu], headroom: int) -> list[int]:
    """The -nvidia lpfleet asks for: the warm managed models' GPUs in file order, then the cold managed pool."""
    served = [item for item in items if item.menu_index in choice.served]
    states = _gpu_states(served, choice.warm_gpu, gpus)
    warm = [states[choice.warm_gpu[item.menu_index]].index for item in served if item.warm and item.managed]
    pool = [gpu.index for gpu in _cold_managed_pool(states, served, headroom, None) if gpu.index not in warm]
    return warm + pool


def _apply(choice: _Choice, items: list[_Item], gpus: list[_Gpu], headroom: int, devices: list[int] | None) -> None:
    """Record the chosen arrangement on the GPUs and the served items (item.gpu, item.pool)."""
    served = [item for item in items if item.menu_index in choice.served]
    states = _gpu_states(served, choice.warm_gpu, gpus)
    for gpu, state in zip(gpus, states):
        gpu.resident, gpu.warm_managed = state.resident, state.warm_managed
        gpu.managed_resident = state.managed_resident
    pool = _cold_managed_pool(gpus, served, headroom, devices)
    llm_gpus: set[int] = {gpus[choice.warm_gpu[i.menu_index]].index for i in served if i.warm and not i.managed}
    for item in served:
        if item.warm:
            item.gpu = gpus[choice.warm_gpu[item.menu_index]]
            item.pool = [item.gpu]
        elif item.managed:
            item.pool = list(pool)
            item.gpu = pool[0] if len(pool) == 1 else None
        else:
            item.gpu = _cold_llm_gpu(item, gpus, headroom, llm_gpus)
            item.pool = [item.gpu]
            llm_gpus.add(item.gpu.index)


def _cold_llm_gpu(item: _Item, gpus: list[_Gpu], headroom: int, llm_gpus: set[int]) -> _Gpu:
    """Where Ollama will load a cold llm: beside the warm models if it fits, with the other LLMs, best fit."""
    fitting = [g for g in gpus if g.usable and g.total - g.managed_resident >= item.vram + headroom]

    def preference(gpu: _Gpu) -> tuple[int, int, int, int]:
        beside_warm = gpu.free >= item.vram + headroom
        room = gpu.free if beside_warm else gpu.total - gpu.managed_resident
        return (0 if beside_warm else 1, 0 if gpu.index in llm_gpus else 1, room - item.vram, gpu.index)

    return min(fitting, key=preference)


# --- why an item is not served -----------------------------------------------------------------


def _needs(item: _Item, headroom: int, host: str) -> str:
    basis = " (%s)" % item.vram_basis if item.vram_basis else ""
    return "%s needs %d MiB%s + %d MiB headroom = %d MiB" % (
        item.title(host), item.vram, basis, headroom, item.vram + headroom)


def _refusal(item: _Item, served: list[_Item], arrangement: dict[int, int], gpus: list[_Gpu], headroom: int,
             devices: list[int] | None, host: str) -> str:
    """Why ITEM cannot join the items served before it, told with the GPUs as those items leave them."""
    if not gpus:
        basis = " (%s)" % item.vram_basis if item.vram_basis else ""
        return "%s needs %d MiB of VRAM%s, but the host has no NVIDIA GPU (%s is empty)." % (
            item.title(host), item.vram, basis, GPUS_VARIABLE)
    states = _gpu_states(served, arrangement, gpus)
    described = "; ".join(gpu.describe() for gpu in states)
    earlier = " beside the menu items served before it" if served else ""
    if item.warm:
        rule = " (one warm managed model per GPU)" if item.managed else ""
        return "%s resident%s%s; %s." % (_needs(item, headroom, host), rule, earlier, described)
    if item.managed:
        return _cold_managed_refusal(item, served, states, headroom, devices, host)
    return "%s when Ollama loads it on request%s; %s." % (
        _needs(item, headroom, host), earlier,
        "; ".join("GPU%d %s has %d MiB of %d MiB not held by go-livepeer's warm containers"
                  % (g.index, g.name, g.total - g.managed_resident, g.total) for g in states))


def _cold_managed_refusal(item: _Item, served: list[_Item], states: list[_Gpu], headroom: int,
                          devices: list[int] | None, host: str) -> str:
    described = "; ".join(gpu.describe() for gpu in states)
    if devices is None:
        candidates = [gpu for gpu in states if gpu.usable and not gpu.warm_managed]
    else:
        candidates = _cold_managed_pool(states, served + [item], headroom, devices)
    if not candidates:
        return ("%s and a free container slot, but every GPU go-livepeer may use holds a warm model: %s. go-livepeer "
                "never stops a warm container to load a cold one (one container per GPU: -aiRunnerContainersPerGPU 1)."
                % (_needs(item, headroom, host), described))
    too_small = ", ".join("GPU%d" % g.index for g in candidates if not g.usable or g.free < item.vram + headroom)
    if devices is None:
        where = "on a GPU without a warm container (lpfleet then lists it in -nvidia)"
    else:
        where = "on every GPU of the node's -nvidia list without a warm container (go-livepeer picks one)"
    return "%s %s, and it does not fit on %s; %s." % (_needs(item, headroom, host), where, too_small, described)


# --- go-livepeer's actual -nvidia ----------------------------------------------------------------


def _node_devices(value: str, gpus: list[_Gpu], items: list[_Item]) -> tuple[list[int] | None, str | None]:
    """The node's -nvidia as GPU indices, or None and what is wrong with it."""
    text = value.strip()
    if text == "all":
        return [gpu.index for gpu in gpus], None
    if text == "":
        if any(item.managed for item in items):
            return None, ("go-livepeer runs without -nvidia, so its managed containers share one emulated slot "
                          "and no GPU")
        return [], None
    parts = [part.strip() for part in text.split(",")]
    known = {gpu.index for gpu in gpus}
    if not all(part.isdigit() for part in parts) or len(set(parts)) != len(parts):
        return None, "lpfleet reads -nvidia as a list of distinct GPU indices (nvidia-smi's), or all"
    unknown = [part for part in parts if int(part) not in known]
    if unknown:
        return None, "the host has no GPU %s (%s lists %s)" % (
            ", ".join(unknown), GPUS_VARIABLE, ", ".join(str(index) for index in sorted(known)) or "none")
    return [int(part) for part in parts], None


def _nvidia_problem(value: str, why: str, needed: list[int], host: str) -> str:
    wanted = ",".join(str(index) for index in needed) or "all"
    return ("%s: go-livepeer runs with -nvidia %s: %s. The plan needs -nvidia %s (go-livepeer starts the n-th warm "
            "managed entry of aiModels.json on the n-th listed GPU and a cold one on any listed GPU without a "
            "container). Fix: start go-livepeer with -nvidia %s (its container's command or its systemd unit's "
            "ExecStart), or change %s, then run the play again. Nothing was written."
            % (host, value.strip() or "(not set)", why, wanted, wanted, MENU_VARIABLE))


def _lost_items(best: _Choice, on_node: _Choice, items: list[_Item]) -> str:
    lost = [item for item in items if item.menu_index in best.served and item.menu_index not in on_node.served]
    return "with it, %s would be left out" % ", ".join(
        "%s[%d] (%s %s)" % (MENU_VARIABLE, item.menu_index, item.pipeline, item.model_id) for item in lost)


def _unusable_warning(gpu: _Gpu, headroom: int, host: str) -> str:
    return ("%s: GPU%d %s reports %d MiB of memory, no more than the %d MiB headroom: nothing is planned on it. Fix: "
            "check the GPU with nvidia-smi (a GPU in use by a MIG setup or a failing card reports little or no "
            "memory)." % (host, gpu.index, gpu.name, gpu.total, headroom))


# --- output ----------------------------------------------------------------------------------


def _stack_for(gpu: _Gpu, options: PlanOptions) -> dict[str, Any]:
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
        "gpu_indices": [gpu.index],
        "ollama_url": "http://%s:%d" % (ollama_container, options.ollama_port),
        "runner_url": runner_url,
        "ollama_host_url": "http://%s:%d" % (host_address(options.bind_address), options.ollama_port + offset),
        "runner_host_url": "http://%s:%d" % (host_address(options.bind_address), runner_port),
        "models": [],
    }


def _build_stacks(items: list[_Item], unplaced: dict[int, str], options: PlanOptions) -> dict[int, dict[str, Any]]:
    """menu_index -> the stack serving that llm item. Each stack reserves exactly the GPUs its LLMs were given."""
    stacks: dict[str, dict[str, Any]] = {}
    of_item: dict[int, dict[str, Any]] = {}
    for item in items:
        if item.menu_index in unplaced or not item.served_by_ollama or item.gpu is None:
            continue
        stack = _stack_for(item.gpu, options)
        stack = stacks.setdefault(stack["name"], stack)
        if item.gpu.index not in stack["gpu_indices"]:
            stack["gpu_indices"] = sorted(stack["gpu_indices"] + [item.gpu.index])
        stack["models"].append({"ollama_tag": item.ollama_tag, "model_id": item.model_id, "warm": item.warm,
                                "download_mb": item.download_mb})
        of_item[item.menu_index] = stack
    return of_item


def _file_order(items: list[_Item], unplaced: dict[int, str], devices: list[int] | None) -> list[_Item]:
    """aiModels.json order: the menu's, except that with the node's -nvidia the warm managed entries are ordered
    by their GPU's place in that list (go-livepeer gives the n-th of them the n-th listed GPU)."""
    served = [item for item in items if item.menu_index not in unplaced]
    if devices is None:
        return served
    warm_managed = [item for item in served if item.warm and item.managed]
    by_device = iter(sorted(warm_managed, key=lambda item: devices.index(item.gpu.index)))
    return [next(by_device) if item.warm and item.managed else item for item in served]


def _placement_entry(item: _Item, stack: dict[str, Any] | None) -> dict[str, Any]:
    pool = stack["gpu_indices"] if stack else [gpu.index for gpu in item.pool]
    return {
        "menu_index": item.menu_index,
        "pipeline": item.pipeline,
        "model_id": item.model_id,
        # A GPU is named only where something enforces it: one reserved GPU, or go-livepeer's -nvidia order.
        "gpu_index": pool[0] if len(pool) == 1 else None,
        "gpu_pool": pool,
        "warm": item.warm,
        "vram_mib": item.vram_mib,
        "vram_basis": item.vram_basis,
        "managed": item.managed,
        "ollama_tag": item.ollama_tag,
        "stack": stack["name"] if stack else None,
    }


def _assemble(gpus: list[_Gpu], items: list[_Item], unplaced: dict[int, str], options: PlanOptions,
              devices: list[int] | None) -> dict[str, Any]:
    stack_of = _build_stacks(items, unplaced, options)
    placement, tags = [], {}
    for item in items:
        if item.menu_index in unplaced:
            continue
        stack = stack_of.get(item.menu_index)
        if stack:
            tags.setdefault(item.ollama_tag, item.download_mb)
        placement.append(_placement_entry(item, stack))
    ai_models = []
    for item in _file_order(items, unplaced, devices):
        entry = dict(item.entry)
        if item.menu_index in stack_of:
            entry["url"] = stack_of[item.menu_index]["runner_url"]
        ai_models.append(canonical_entry(entry))
    stacks = {id(stack): stack for stack in stack_of.values()}
    return {
        "host": options.host,
        "layout": options.layout,
        "gpus": [{
            "index": g.index,
            "name": g.name,
            "memory_total_mib": g.total,
            "usable": g.usable,
            "planned_mib": g.resident,
            "free_after_mib": g.free,
            "warm_managed": g.warm_managed,
        } for g in gpus],
        "placement": placement,
        "ai_models": ai_models,
        "nvidia_devices": _nvidia_devices(items, unplaced, devices),
        "stacks": sorted(stacks.values(), key=lambda s: (s["name"] != "default", len(s["name"]), s["name"])),
        "ollama_tags": sorted(tags),
        "download_mb": sum(size for size in tags.values() if size),
        "notes": _notes(list(stacks.values())),
        "unplaced": [{
            "menu_index": item.menu_index,
            "pipeline": item.pipeline,
            "model_id": item.model_id,
            "required": item.required,
            "reason": unplaced[item.menu_index],
        } for item in items if item.menu_index in unplaced],
    }


def _blocking(unplaced: list[dict[str, Any]], options: PlanOptions,
              host: str) -> tuple[list[dict[str, Any]], str | None]:
    """The unplaced items that stop the host (all with unplaced_action fail, else the required ones), and the
    message that says so."""
    blocking = [item for item in unplaced if options.unplaced_action == "fail" or item["required"]]
    if not blocking:
        return [], None
    why = ("%s is fail" % OPTION_VARIABLES["unplaced_action"] if options.unplaced_action == "fail"
           else "they are marked required: true")
    return blocking, (
        "%s: %d menu item(s) cannot be placed and %s: %s Fix: give the host a larger GPU, lower the item's VRAM need "
        "(a smaller model, or vram_mib if the catalog overestimates it), make it cold (warm: false), or drop "
        "`required` / set %s: warn." % (host, len(blocking), why, " ".join(
            "%s[%d]: %s" % (MENU_VARIABLE, item["menu_index"], item["reason"]) for item in blocking),
            OPTION_VARIABLES["unplaced_action"]))


def host_address(bind_address: Any) -> str:
    """Where the host itself reaches a port published on BIND_ADDRESS: the loopback for a loopback or wildcard
    address, else the address (IPv6 in brackets). ValueError for anything that is not an IP address."""
    if not isinstance(bind_address, str):
        raise ValueError("bind_address (%s) must be an IP address such as 127.0.0.1, not %r."
                         % (OPTION_VARIABLES["bind_address"], bind_address))
    if bind_address in ("", "0.0.0.0", "127.0.0.1"):
        return "127.0.0.1"
    if bind_address in ("::", "::1"):
        return "[::1]"
    try:
        address = ipaddress.ip_address(bind_address)
    except ValueError:
        raise ValueError("bind_address (%s) must be an IP address such as 127.0.0.1, not %r."
                         % (OPTION_VARIABLES["bind_address"], bind_address)) from None
    return "[%s]" % address if address.version == 6 else str(address)


def _nvidia_devices(items: list[_Item], unplaced: dict[int, str], devices: list[int] | None) -> str:
    """go-livepeer's -nvidia: the node's own when it carries the plan; else the warm managed models' GPUs in file
    order, then the GPUs cold managed models may start on. Empty when no managed model is served."""
    if devices is not None:
        return ",".join(str(index) for index in devices)
    served = [item for item in items if item.menu_index not in unplaced and item.managed]
    listed = [item.gpu.index for item in served if item.warm and item.gpu is not None]
    for item in served:
        listed.extend(gpu.index for gpu in item.pool if gpu.index not in listed)
    return ",".join(str(index) for index in listed)


def _notes(stacks: list[dict[str, Any]]) -> list[str]:
    notes = []
    for stack in stacks:
        if len(stack["gpu_indices"]) > 1:
            notes.append("Stack %s: one Ollama reserves GPUs %s and loads each of its LLMs where it finds room, so the "
                         "plan names the pool, not a GPU, for them. Set lpfleet_stack_layout: per_gpu to pin each "
                         "LLM to one GPU." % (stack["name"], ",".join(str(i) for i in stack["gpu_indices"])))
    return notes


def _check_stacks(stacks: list[dict[str, Any]], placement: list[dict[str, Any]], host: str) -> None:
    """Every container the plan deploys has its own name and its own port, within 1-65535."""
    problems: list[str] = []
    ports: dict[int, str] = {}
    names: dict[str, str] = {}
    for stack in stacks:
        serving = ", ".join("%s[%d] (%s)" % (MENU_VARIABLE, p["menu_index"], p["model_id"])
                            for p in placement if p["stack"] == stack["name"])
        for service in ("ollama", "runner"):
            name, port = stack["%s_container" % service], stack["%s_port" % service]
            what = "the %s container %s of stack %s, serving %s," % (service, name, stack["name"], serving)
            port_variable = OPTION_VARIABLES["%s_port" % service]
            name_variable = OPTION_VARIABLES["%s_name" % service]
            if not 1 <= port <= MAX_PORT:
                problems.append("%s: %s would publish port %d, outside 1-%d (per_gpu adds the GPU index to the port). "
                                "Fix: lower %s." % (port_variable, what, port, MAX_PORT, port_variable))
            elif port in ports:
                problems.append("%s: %s would publish port %d, which %s already publishes. Fix: set "
                                "lpfleet_runner_port and lpfleet_ollama_port further apart than the host's GPU count."
                                % (port_variable, what, port, ports[port]))
            else:
                ports[port] = name
            if name in names:
                problems.append("%s: %s has the name of %s. Fix: give lpfleet_runner_name and lpfleet_ollama_name "
                                "different values." % (name_variable, what, names[name]))
            else:
                names[name] = "the %s container of stack %s" % (service, stack["name"])
    if problems:
        raise PlanError("plan_ai_models for %s: the containers of the plan clash:\n- %s"
                        % (host, "\n- ".join(problems)))


def _check_emitted(entries: list[dict[str, Any]], gpu_count: int, catalog: Mapping[str, Any], host: str) -> None:
    report = validate_entries(entries, gpu_count=gpu_count, known_models=ollama_tags(catalog))
    findings = report.errors + report.warnings
    if findings:  # a planner bug, not an input problem: say so plainly
        raise PlanError("plan_ai_models for %s produced entries that fail lpfleet's own rules (a bug in lpfleet, "
                        "please report it):\n- %s" % (host, "\n- ".join(f.describe() for f in findings)))


def entries_with_token(plan_result: Any, token: str | None) -> list[dict[str, Any]]:
    """The plan's aiModels.json entries with TOKEN on each entry served by one of the plan's runners (its url is a
    stack's runner_url); the others (external urls, managed entries) are kept as they are. Without a token, the
    entries as planned. The result holds a secret: keep it out of printed output."""
    if not isinstance(plan_result, Mapping) or not isinstance(plan_result.get("ai_models"), list):
        raise PlanError("expected a plan (lpfleet_plan, from plan_ai_models) with its ai_models entries, not %s"
                        % type(plan_result).__name__)
    entries = [dict(entry) for entry in plan_result["ai_models"]]
    if token is None:
        return entries
    token = str(token)  # a vaulted value arrives as a string-like object
    if not token:
        raise PlanError("the runner token (lpfleet_runner_token) is empty. Fix: set it to the runner's token, or "
                        "leave it undefined for a runner without one")
    runner_urls = {stack["runner_url"] for stack in plan_result.get("stacks") or []}
    return [dict(entry, token=token) if entry.get("url") in runner_urls else entry for entry in entries]
