"""The planner serves exactly what an exhaustive search finds best, on random hosts and menus (issue 11, item 2).

Random hosts of 1-8 GPUs of real sizes (6, 8, 12, 16, 24, 48, 80 GB) and menus of up to 10 catalog models,
warm or cold, planned in both layouts. For each, the served items must equal the exhaustive optimum
(tests/unit/placement_reference.py), and the plan must obey go-livepeer's rules as this file reads them
from the plan itself. About 20 s.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from placement_reference import (
    HEADROOM,
    catalog_menu_items,
    check_rules,
    optimum,
    random_host,
    random_menu,
    reference_items,
)

from ansible_collections.lpfleet.ai.plugins.plugin_utils.planner import PlanOptions, plan

HOSTS = 2000
SEED = 11


def cases() -> list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    rng = random.Random(SEED)
    pool = catalog_menu_items()
    return [(random_host(rng), random_menu(rng, pool)) for _ in range(HOSTS)]


def test_the_planner_serves_the_exhaustive_optimum_on_random_hosts():
    disagreements = []
    for number, (gpus, menu) in enumerate(cases()):
        best = optimum([g["memory_total_mib"] for g in gpus], reference_items(menu))
        for layout in ("shared", "per_gpu"):
            result = plan(gpus, menu, options=PlanOptions(host=f"random-{number}", layout=layout,
                                                          headroom_mib=HEADROOM))
            check_rules(result, menu, gpus)
            served = {p["menu_index"] for p in result["placement"]}
            if served != best:
                disagreements.append((number, layout, [g["memory_total_mib"] for g in gpus],
                                      [(m["model_id"], m["warm"]) for m in menu], sorted(served), sorted(best)))
    assert not disagreements, disagreements[:3]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_reference_is_not_trivial(seed):
    """The random cases do refuse items and do need the search: the comparison could fail."""
    rng = random.Random(seed)
    pool = catalog_menu_items()
    refused = 0
    for _ in range(40):
        gpus, menu = random_host(rng), random_menu(rng, pool)
        refused += len(menu) - len(optimum([g["memory_total_mib"] for g in gpus], reference_items(menu)))
    assert refused > 0
