# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""The fleet report: one record per host, rendered as text tables and as Markdown.

A host record (built by `host_record` from what playbooks/fleet_report.yml read on the host):

    host, gpus (lpfleet_gpus), plan (from plan_ai_models), models_present, models_loaded,
    runners: [{name, url, ok, status, detail}], problems, last_rollout (the host's last-rollout.json; its
    site_fallback, the models pulled from upstream because the site's cache could not give them, is said
    in the Last rollout table),
    error (str, when the host failed)

Every renderer works on the records with their secrets masked (module_utils/secrets.py): the plan's
entries carry runner and menu-item tokens, and a runner's url may carry a password.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Mapping, Sequence

from ansible_collections.lpfleet.ai.plugins.module_utils.ollama_state import listed_key
from ansible_collections.lpfleet.ai.plugins.module_utils.secrets import scrub
from ansible_collections.lpfleet.ai.plugins.plugin_utils.rollout import site_fallback_text
from ansible_collections.lpfleet.ai.plugins.plugin_utils.tables import format_table

HOST_HEADERS = ("HOST", "GPUS", "PLACED", "UNPLACED", "MODELS PRESENT", "LOADED", "RUNNERS")
PLACEMENT_HEADERS = ("HOST", "GPU", "PIPELINE", "MODEL", "WARM", "VRAM MiB", "STATE")
RUNNER_HEADERS = ("HOST", "RUNNER", "URL", "HEALTH", "DETAIL")
ROLLOUT_HEADERS = ("HOST", "RESULT", "ROLLOUT", "FINISHED", "DETAIL")


def _listed(ollama_results: Sequence[Mapping[str, Any]], listing: str) -> list[str]:
    return sorted({model["canonical"] for result in ollama_results for model in result.get(listing) or []})


def _runner(result: Mapping[str, Any]) -> dict[str, Any]:
    """A runner_health result looped over the plan's stacks, or over verify_targets (a smoke per model)."""
    item = result["item"]
    stack, model = (item["stack"], item["model"]["model_id"]) if "stack" in item else (item, None)
    ok = bool(result.get("ok"))
    return {"name": stack["runner_container"] + (" " + model if model else ""), "url": stack["runner_host_url"],
            "ok": ok, "status": result.get("status"),
            "detail": None if ok else str(result.get("msg") or "no answer").strip()}


def _last_rollout(slurped: Mapping[str, Any] | None) -> tuple[Any, str | None]:
    """The host's last-rollout.json from slurp's result (None when there is none), and a problem reading it."""
    if not slurped or "content" not in slurped:
        return None, None
    try:
        return json.loads(base64.b64decode(slurped["content"]).decode("utf-8")), None
    except ValueError as exc:
        return None, "the last rollout's record %s is not JSON: %s" % (slurped.get("source", ""), exc)


def host_record(host: str, gpus: Any, plan: Any, ollama_results: Sequence[Mapping[str, Any]],
                runner_results: Sequence[Mapping[str, Any]], last_rollout: Mapping[str, Any] | None) -> dict[str, Any]:
    """One host's record from what the playbook registered: ollama_info per stack, runner_health per stack (or per
    model with a smoke request) and the slurped last-rollout.json. An Ollama that could not be read is a problem."""
    read = [result for result in ollama_results if "models" in result]
    problems = ["Ollama %s (%s): %s" % (result["item"]["ollama_container"], result["item"]["ollama_host_url"],
                                        str(result.get("msg") or "no answer").strip())
                for result in ollama_results if "models" not in result and not result.get("skipped")]
    last, problem = _last_rollout(last_rollout)
    return {"host": host, "gpus": gpus or [], "plan": plan, "models_present": _listed(read, "models"),
            "models_loaded": _listed(read, "loaded"), "runners": [_runner(result) for result in runner_results],
            "problems": problems + ([problem] if problem else []), "last_rollout": last, "error": None}


def collect(hosts: Sequence[str], records: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The record of each host, by name; a host that left none appears as one that could not be read."""
    return sorted((dict(records.get(host) or {"host": host, "error": "the host could not be read"})
                   for host in hosts), key=lambda record: record["host"])


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


def rollout_rows(records: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """The last rollout on each host that could be read (written there by the rollout)."""
    rows = []
    for record in records:
        last = record.get("last_rollout")
        if isinstance(last, Mapping):
            detail = str(last.get("message") or "") + (": %s" % last["error"] if last.get("error") else "")
            fallback = site_fallback_text(last.get("site_fallback") or [])
            detail += "; %s" % fallback if fallback else ""
            rows.append([record["host"], last.get("result", "?"), last.get("rollout_id") or "-",
                         last.get("finished") or "-", detail])
        elif not record.get("error"):
            rows.append([record["host"], "none", "-", "-", "no rollout recorded on this host"])
    return rows


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
    lines: list[str] = []
    for title, headers, rows in _table_sections(records)[:3]:
        lines += ["", "== %s ==" % title] + (format_table(headers, rows) if rows else ["(none)"])
    lines += ["", "== Not placed =="] + (unplaced_lines(records) or ["(none)"])
    lines += ["", "== Problems =="] + (problem_lines(records) or ["(none)"])
    title, headers, rows = _table_sections(records)[3]
    lines += ["", "== %s ==" % title] + (format_table(headers, rows) if rows else ["(none)"])
    return "\n".join(lines[1:])


def _table_sections(records: Sequence[Mapping[str, Any]]) -> list[tuple[str, Sequence[str], list[list[Any]]]]:
    return [("Hosts", HOST_HEADERS, host_rows(records)),
            ("Placement", PLACEMENT_HEADERS, placement_rows(records)),
            ("Runners", RUNNER_HEADERS, runner_rows(records)),
            ("Last rollout", ROLLOUT_HEADERS, rollout_rows(records))]


def problem_lines(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """What could not be read on the hosts that were reached (an Ollama, the last rollout's record)."""
    return ["%s: %s" % (record["host"], problem) for record in records for problem in record.get("problems") or []]


def _markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        return ("-" if value is None or value == "" else str(value)).replace("|", "\\|")

    return (["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
            + ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows])


def report_markdown(records: Any, title: str = "lpfleet fleet report") -> str:
    """The same report as Markdown."""
    records = _check_records(records)
    lines = ["# %s" % title, ""]
    for heading, headers, rows in _table_sections(records)[:3]:
        lines += ["## %s" % heading, ""] + (_markdown_table(headers, rows) if rows else ["(none)"]) + [""]
    lines += ["## Not placed", ""] + (["- %s" % line for line in unplaced_lines(records)] or ["(none)"]) + [""]
    lines += ["## Problems", ""] + (["- %s" % line for line in problem_lines(records)] or ["(none)"]) + [""]
    heading, headers, rows = _table_sections(records)[3]
    lines += ["## %s" % heading, ""] + (_markdown_table(headers, rows) if rows else ["(none)"])
    return "\n".join(lines) + "\n"
