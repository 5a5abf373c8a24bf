# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""Fixed-width text tables of GPU facts and plans, for operators reading a play's output."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

GPU_COLUMNS = (
    ("IDX", "index"),
    ("NAME", "name"),
    ("TOTAL MiB", "memory_total_mib"),
    ("FREE MiB", "memory_free_mib"),
    ("DRIVER", "driver_version"),
    ("CUDA", "cuda_version"),
    ("CC", "compute_capability"),
    ("UUID", "uuid"),
)
_RIGHT_ALIGNED = ("TOTAL MiB", "FREE MiB", "VRAM MiB")


def _cell(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], indent: str = "") -> list[str]:
    """Rows as fixed-width lines under their headers; numbers right-aligned, text left-aligned."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(header)] + [len(row[i]) for row in cells]) for i, header in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [value.rjust(widths[i]) if headers[i] in _RIGHT_ALIGNED else value.ljust(widths[i])
                 for i, value in enumerate(values)]
        return (indent + "  ".join(parts)).rstrip()

    return [line(list(headers))] + [line(row) for row in cells]


def gpu_table(gpus: Any) -> str:
    """lpfleet_gpus as a table, one GPU a line."""
    if not gpus:
        return "no NVIDIA GPU found"
    if not isinstance(gpus, list) or not all(isinstance(gpu, Mapping) for gpu in gpus):
        raise TypeError("gpu_table expects lpfleet_gpus, a list of mappings (from lpfleet.ai.gpu_facts)")
    rows = [[gpu.get(key) for _header, key in GPU_COLUMNS] for gpu in gpus]
    return "\n".join(format_table([header for header, _key in GPU_COLUMNS], rows))


def plan_table(plan: Any, warnings_only: bool = False) -> str:
    """A plan from plan_ai_models: per GPU what is placed (warm/cold, VRAM), then what is not and why.

    WARNINGS_ONLY: only the warnings and what is not placed (empty when there are none)."""
    if not isinstance(plan, Mapping) or "placement" not in plan or "gpus" not in plan:
        raise TypeError("plan_table expects the result of lpfleet.ai.plan_ai_models")
    lines = [] if warnings_only else _placement_lines(plan)
    lines.extend("warning: %s" % warning for warning in plan.get("warnings") or [])
    if plan.get("unplaced"):
        lines.append("not placed:")
        lines.append("  (left out of aiModels.json; mark an item required: true, or set lpfleet_unplaced_action: fail,"
                     " to stop the play instead)")
        lines.extend("  [%s] %s" % (u["menu_index"], u["reason"]) for u in plan["unplaced"])
    return "\n".join(lines)


def _placement_lines(plan: Mapping[str, Any]) -> list[str]:
    lines = ["host %s, layout %s" % (plan.get("host") or "-", plan.get("layout") or "-")]
    headers = ("", "PIPELINE", "MODEL", "VRAM MiB", "SERVED BY")
    for gpu in plan["gpus"]:
        lines.append("GPU%s %s: %s of %s MiB resident when warm, %s MiB free" % (
            gpu["index"], gpu["name"], gpu["planned_mib"], gpu["memory_total_mib"], gpu["free_after_mib"]))
        rows = [_placement_row(p) for p in plan["placement"] if p["gpu_index"] == gpu["index"]]
        lines.extend(format_table(headers, rows, indent="  ") if rows else ["  (nothing placed)"])
    for pool in sorted({tuple(p.get("gpu_pool") or ()) for p in plan["placement"] if p["gpu_index"] is None} - {()}):
        rows = [_placement_row(p) for p in plan["placement"]
                if p["gpu_index"] is None and tuple(p.get("gpu_pool") or ()) == pool]
        lines.append("GPUs %s (where on them is decided at run time):" % ",".join(str(index) for index in pool))
        lines.extend(format_table(headers, rows, indent="  "))
    external = [_placement_row(p) for p in plan["placement"] if p["gpu_index"] is None and not p.get("gpu_pool")]
    if external:
        lines.append("external containers (url given in the menu):")
        lines.extend(format_table(headers, external, indent="  "))
    if plan.get("nvidia_devices"):
        lines.append("go-livepeer -nvidia %s" % plan["nvidia_devices"])
    lines.extend("note: %s" % note for note in plan.get("notes") or [])
    return lines


def _placement_row(placement: Mapping[str, Any]) -> list[Any]:
    if placement.get("stack"):
        served_by = "ollama %s (stack %s)" % (placement.get("ollama_tag"), placement["stack"])
    elif placement.get("managed"):
        served_by = "go-livepeer container"
    else:
        served_by = "external url"
    return ["warm" if placement["warm"] else "cold", placement["pipeline"], placement["model_id"],
            placement.get("vram_mib"), served_by]


def gpu_inventory(hosts: Any, facts: Mapping[str, Any]) -> str:
    """Every host's GPUs: per host a summary line and its gpu_table indented, then the totals.

    FACTS maps a host to its ansible_facts (lpfleet_gpus, lpfleet_gpu_summary from gpu_facts); a host
    without lpfleet_gpus was not read (unreachable or failed).
    """
    if not isinstance(hosts, list):
        raise TypeError("gpu_inventory expects a list of host names")
    lines, read, gpu_count = [], 0, 0
    for host in hosts:
        host_facts = facts.get(host) or {}
        gpus = host_facts.get("lpfleet_gpus")
        if gpus is None:
            lines.append("%s: not read (unreachable or failed)" % host)
            continue
        summary = host_facts.get("lpfleet_gpu_summary") or {}
        read, gpu_count = read + 1, gpu_count + len(gpus)
        lines.append("%s: %d GPU(s), %s MiB, driver %s, CUDA %s" % (
            host, len(gpus), summary.get("total_memory_mib", 0), summary.get("driver_version") or "-",
            summary.get("cuda_version") or "-"))
        lines.extend("  " + line for line in gpu_table(gpus).splitlines())
    lines.append("%d host(s) read, %d GPU(s) in all" % (read, gpu_count))
    return "\n".join(lines)
