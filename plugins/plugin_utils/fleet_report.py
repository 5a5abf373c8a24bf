# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""The fleet report: one record per host, rendered as text tables and as Markdown.

A host record (built by playbooks/fleet_report.yml from facts the host reported):

    host, gpus (lpfleet_gpus), plan (from plan_ai_models), models_present, models_loaded,
    runners: [{name, url, ok, status, detail}], ai_models_path, error (str, when the host failed)

Every renderer works on the records with their secrets masked (module_utils/secrets.py): the plan's
entries carry runner and menu-item tokens, and a runner's url may carry a password.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from ansible_collections.lpfleet.ai.plugins.module_utils.ollama_state import listed_key
from ansible_collections.lpfleet.ai.plugins.module_utils.secrets import scrub
from ansible_collections.lpfleet.ai.plugins.plugin_utils.tables import format_table

HOST_HEADERS = ("HOST", "GPUS", "PLACED", "UNPLACED", "MODELS PRESENT", "LOADED", "RUNNERS")
PLACEMENT_HEADERS = ("HOST", "GPU", "PIPELINE", "MODEL", "WARM", "VRAM MiB", "STATE")
RUNNER_HEADERS = ("HOST", "RUNNER", "URL", "HEALTH", "DETAIL")


def _gpu_summary(gpus: Sequence[Mapping[str, Any]]) -> str:
    if not gpus:
        return "none"
    return ", ".join("%s %s GiB" % (gpu.get("name", "?").replace("NVIDIA ", "").replace("GeForce ", ""),
                                    round(int(gpu.get("memory_total_mib", 0)) / 1024))
                     for gpu in gpus)


def _runner_summary(runners: Sequence[Mapping[str, Any]]) -> str:
    if not runners:
        return "-"
    healthy = sum(1 for runner in runners if runner.get("ok"))
    return "%d/%d healthy" % (healthy, len(runners))


def _model_state(placement: Mapping[str, Any], record: Mapping[str, Any]) -> str:
    tag = placement.get("ollama_tag")
    if not tag:
        return "managed by go-livepeer" if placement.get("managed") else "external"
    # Ollama lists `mistral:latest` for a menu's `mistral`: compare as Ollama does.
    if listed_key(tag) in {listed_key(name) for name in record.get("models_loaded", [])}:
        return "pulled, loaded"
    if listed_key(tag) in {listed_key(name) for name in record.get("models_present", [])}:
        return "pulled"
    return "MISSING"


def host_rows(records: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    rows = []
    for record in records:
        plan = record.get("plan") or {}
        if record.get("error"):
            rows.append([record["host"], "-", "-", "-", "-", "-", "FAILED: %s" % record["error"]])
            continue
        rows.append([
            record["host"], _gpu_summary(record.get("gpus", [])), len(plan.get("placement", [])),
            len(plan.get("unplaced", [])), ", ".join(record.get("models_present", [])) or "-",
            ", ".join(record.get("models_loaded", [])) or "-", _runner_summary(record.get("runners", [])),
        ])
    return rows


def placement_rows(records: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    rows = []
    for record in records:
        for placement in (record.get("plan") or {}).get("placement", []):
            gpu = "GPU%s" % placement["gpu_index"] if placement.get("gpu_index") is not None else (
                "GPUs %s" % ",".join(str(index) for index in placement["gpu_pool"]) if placement.get("gpu_pool")
                else "-")  # a pool: Ollama or go-livepeer picks among these GPUs
            rows.append([record["host"], gpu, placement["pipeline"], placement["model_id"],
                         "warm" if placement.get("warm") else "cold", placement.get("vram_mib"),
                         _model_state(placement, record)])
    return rows


def runner_rows(records: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    return [[record["host"], runner.get("name"), runner.get("url"),
             "OK" if runner.get("ok") else "FAILED", runner.get("detail") or runner.get("status") or "-"]
            for record in records for runner in record.get("runners", [])]


def unplaced_lines(records: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = []
    for record in records:
        for item in (record.get("plan") or {}).get("unplaced", []):
            # The planner's reasons already start with the host's name.
            prefixed = item["reason"].startswith(record["host"] + ":")
            lines.append(item["reason"] if prefixed else "%s: %s" % (record["host"], item["reason"]))
    return lines


def _check_records(records: Any) -> list[Mapping[str, Any]]:
    """The records sorted by host, secrets masked."""
    if not isinstance(records, list) or not all(isinstance(r, Mapping) and "host" in r for r in records):
        raise TypeError("the fleet report expects a list of host records, each a mapping with a 'host' key")
    return sorted((scrub(dict(record)) for record in records), key=lambda record: record["host"])


def report_json(records: Any, generated: str | None = None) -> str:
    """The records as a JSON document ({generated, hosts}), secrets masked."""
    document = {"generated": generated, "hosts": _check_records(records)}
    return json.dumps(document, indent=2, sort_keys=True, default=str, allow_nan=False) + "\n"


def report_text(records: Any) -> str:
    """The whole report as fixed-width text tables."""
    records = _check_records(records)
    sections = [("Hosts", HOST_HEADERS, host_rows(records)),
                ("Placement", PLACEMENT_HEADERS, placement_rows(records)),
                ("Runners", RUNNER_HEADERS, runner_rows(records))]
    lines: list[str] = []
    for title, headers, rows in sections:
        lines += ["", "== %s ==" % title] + (format_table(headers, rows) if rows else ["(none)"])
    lines += ["", "== Not placed =="] + (unplaced_lines(records) or ["(none)"])
    return "\n".join(lines[1:])


def _markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        return ("-" if value is None or value == "" else str(value)).replace("|", "\\|")

    return (["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
            + ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows])


def report_markdown(records: Any, title: str = "lpfleet fleet report") -> str:
    """The same report as Markdown."""
    records = _check_records(records)
    lines = ["# %s" % title, ""]
    for heading, headers, rows in (("Hosts", HOST_HEADERS, host_rows(records)),
                                   ("Placement", PLACEMENT_HEADERS, placement_rows(records)),
                                   ("Runners", RUNNER_HEADERS, runner_rows(records))):
        lines += ["## %s" % heading, ""] + (_markdown_table(headers, rows) if rows else ["(none)"]) + [""]
    lines += ["## Not placed", ""] + (["- %s" % line for line in unplaced_lines(records)] or ["(none)"])
    return "\n".join(lines) + "\n"
