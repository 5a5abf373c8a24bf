"""An exhaustive reference for the planner's choice of served items, and random hosts and menus to compare on.

Shared by tests/unit/test_placement_exhaustive.py and scripts/bench-planner. The reference is written
independently of plugins/plugin_utils/planner.py: it goes GPU by GPU and tries every subset of the warm items
not yet placed on each, keeping every reachable (warm placed, cold servable) pair, then takes the pair whose
served items, read in menu order, come first. go-livepeer's rules, with -nvidia chosen by lpfleet:
- a GPU holds at most one warm managed model; its warm models plus the headroom fit its memory;
- a cold managed model needs a GPU without a warm managed model where it fits beside the warm ones;
- a cold llm needs a GPU whose memory, less go-livepeer's warm containers and the headroom, holds it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from ansible_collections.lpfleet.ai.plugins.plugin_utils.catalog import load_catalog, weights_floor_mib

# What cards of these sizes report as memory.total (nvidia-smi), in MiB.
GPU_SIZES_MIB = {6: 6144, 8: 8192, 12: 12288, 16: 16384, 24: 24564, 48: 49140, 80: 81559}
HEADROOM = 512


@dataclass(frozen=True)
class RefItem:
    vram: int
    warm: bool
    managed: bool


def catalog_menu_items() -> list[dict[str, Any]]:
    """One menu item per catalog model with a VRAM figure (warm unset)."""
    items = []
    for model_id, known in sorted(load_catalog().items()):
        if known["vram_mib"] is None:
            continue
        if known["pipeline"] == "llm":
            items.append({"pipeline": "llm", "model_id": model_id, "price_per_unit": 0.18, "currency": "USD",
                          "pixels_per_unit": 1000000})
        else:
            items.append({"pipeline": known["pipeline"], "model_id": model_id, "price_per_unit": 4768371})
    return items


def effective_vram(model_id: str) -> int:
    """What the planner must reserve for a catalog model: its figure, never below its weights plus the margin."""
    known = load_catalog()[model_id]
    floor = weights_floor_mib(known["download_mb"]) if known.get("download_mb") else 0
    return max(known["vram_mib"], floor)


def random_host(rng: random.Random, gpu_counts: range = range(1, 9)) -> list[dict[str, Any]]:
    sizes = list(GPU_SIZES_MIB.values())
    return [{"index": index, "name": f"GPU {total} MiB", "memory_total_mib": total}
            for index, total in enumerate(rng.choice(sizes) for _ in range(rng.choice(gpu_counts)))]


def random_menu(rng: random.Random, pool: list[dict[str, Any]], most: int = 10) -> list[dict[str, Any]]:
    chosen = rng.sample(pool, rng.randint(1, min(most, len(pool))))
    return [dict(item, warm=rng.random() < 0.5) for item in chosen]


def reference_items(menu: list[dict[str, Any]]) -> list[RefItem]:
    return [RefItem(effective_vram(item["model_id"]), item.get("warm") is True, item["pipeline"] != "llm")
            for item in menu]


def optimum(totals: list[int], items: list[RefItem], headroom: int = HEADROOM) -> set[int]:
    """The menu indexes the best placement serves (every reachable placement is tried)."""
    warm = [index for index, item in enumerate(items) if item.warm]
    cold = [index for index, item in enumerate(items) if not item.warm]
    states = {(frozenset(), frozenset())}
    for total in totals:
        reached = set()
        for placed, servable in states:
            remaining = [index for index in warm if index not in placed]
            for subset in _subsets_that_fit(remaining, items, total - headroom):
                reached.add((placed | subset, servable | _cold_fitting(total, subset, cold, items, headroom)))
        states = reached
    served_sets = [placed | servable for placed, servable in states]
    return max(served_sets, key=lambda served: [index in served for index in range(len(items))])


def _subsets_that_fit(remaining: list[int], items: list[RefItem], room: int) -> list[frozenset[int]]:
    found: list[frozenset[int]] = []

    def walk(start: int, chosen: list[int], used: int, has_managed: bool) -> None:
        found.append(frozenset(chosen))
        for position in range(start, len(remaining)):
            item = items[remaining[position]]
            if used + item.vram > room or (item.managed and has_managed):
                continue
            walk(position + 1, chosen + [remaining[position]], used + item.vram, has_managed or item.managed)

    walk(0, [], 0, False)
    return found


def _cold_fitting(total: int, subset: frozenset[int], cold: list[int], items: list[RefItem],
                  headroom: int) -> frozenset[int]:
    resident = sum(items[index].vram for index in subset)
    managed = sum(items[index].vram for index in subset if items[index].managed)
    slot_free = managed == 0 and not any(items[index].managed for index in subset)
    fitting = set()
    for index in cold:
        item = items[index]
        if item.managed and slot_free and total - headroom - resident >= item.vram:
            fitting.add(index)
        if not item.managed and total - headroom - managed >= item.vram:
            fitting.add(index)
    return frozenset(fitting)


def check_rules(result: dict[str, Any], menu: list[dict[str, Any]], gpus: list[dict[str, Any]],
                headroom: int = HEADROOM) -> None:
    """What go-livepeer will do with the plan's aiModels.json and -nvidia puts every model where it fits
    (read from the plan itself: its placement, its per-GPU figures, its entries in file order and its -nvidia)."""
    totals = {gpu["index"]: gpu["memory_total_mib"] for gpu in gpus}
    placement = {p["menu_index"]: p for p in result["placement"]}
    resident = {gpu["index"]: gpu["planned_mib"] for gpu in result["gpus"]}
    named = {index: 0 for index in totals}
    held_by_containers = {index: 0 for index in totals}
    for item in placement.values():
        if item["warm"] and item["gpu_index"] is not None:
            named[item["gpu_index"]] += item["vram_mib"]
            if item["managed"]:
                held_by_containers[item["gpu_index"]] += item["vram_mib"]
        if item["warm"] and item["managed"]:
            assert item["gpu_index"] is not None
    for index, total in totals.items():
        assert resident[index] == 0 or resident[index] + headroom <= total
        if result["layout"] == "per_gpu":  # every model pinned to its GPU: the plan names them all
            assert resident[index] == named[index]
        else:  # shared: the LLMs of a multi-GPU pool are not named; what is named is part of what is planned
            assert named[index] <= resident[index]
    # go-livepeer: the n-th warm managed entry of the file on the n-th -nvidia GPU; cold ones on the others.
    devices = [int(d) for d in result["nvidia_devices"].split(",")] if result["nvidia_devices"] else []
    assert len(set(devices)) == len(devices)
    warm_managed = [e for e in result["ai_models"] if e.get("warm") and "url" not in e]
    by_model = {(p["pipeline"], p["model_id"]): p for p in placement.values()}
    started_on = dict(zip([(e["pipeline"], e["model_id"]) for e in warm_managed], devices, strict=False))
    assert len(started_on) == len(warm_managed)
    for key, gpu in started_on.items():
        assert by_model[key]["gpu_pool"] == [gpu]
    free_listed = devices[len(warm_managed):]
    for item in placement.values():
        if item["managed"] and not item["warm"]:
            assert free_listed and sorted(item["gpu_pool"]) == sorted(free_listed)
            assert all(totals[g] - resident[g] >= item["vram_mib"] + headroom for g in free_listed)
        if not item["managed"] and not item["warm"]:
            assert any(totals[g] - held_by_containers[g] >= item["vram_mib"] + headroom for g in item["gpu_pool"])
    served = {(p["pipeline"], p["model_id"]) for p in placement.values()}
    assert sorted(served) == sorted((e["pipeline"], e["model_id"]) for e in result["ai_models"])
    assert len(placement) + len(result["unplaced"]) == len(menu)
