# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""The verify role's decisions: what each runner check is given, and what the results mean.

`targets` turns a plan into one runner_health call per (stack, model); `findings` reads the
registered results (runner_health per target, ollama_info per stack, ai_models) into the table's
rows and the failures, one sentence each naming the runner or Ollama and what it saw; `table`
draws the rows of every host with the shared table renderer.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ansible_collections.lpfleet.ai.plugins.module_utils.ollama_state import listed_key
from ansible_collections.lpfleet.ai.plugins.plugin_utils.tables import format_table

TABLE_COLUMNS = (("HOST", "host"), ("RUNNER", "runner"), ("MODEL", "model"), ("HEALTH", "health"),
                 ("SMOKE /llm", "smoke"), ("AS PLANNED", "served"), ("IN OLLAMA", "present"), ("WARM", "warm"),
                 ("RESULT", "result"))


def _stacks(plan: Any) -> list[Mapping[str, Any]]:
    if not isinstance(plan, Mapping) or not isinstance(plan.get("stacks"), list):
        raise TypeError("expected a plan (lpfleet_plan, from plan_ai_models) with its stacks")
    return plan["stacks"]


def _tags(stack: Mapping[str, Any]) -> list[str]:
    return [model["ollama_tag"] for model in stack["models"]]


def targets(plan: Any) -> list[dict[str, Any]]:
    """One item per (stack, model): the stack, the model, the stack's planned tags and the other stacks' Ollamas
    (runner_health's other_ollamas: where the model must not be loaded)."""
    stacks = _stacks(plan)
    return [{
        "stack": stack,
        "model": model,
        "planned_tags": _tags(stack),
        "other_ollamas": [{"name": other["ollama_container"], "url": other["ollama_host_url"], "tags": _tags(other)}
                          for other in stacks if other["name"] != stack["name"]],
    } for stack in stacks for model in stack["models"]]


def _ollama_reads(ollama_results: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Stack name -> its ollama_info result, for the reads that succeeded."""
    return {result["item"]["name"]: result for result in ollama_results if "models" in result}


def _has(result: Mapping[str, Any] | None, listing: str, tag: str) -> bool | None:
    if result is None:
        return None
    return listed_key(tag) in {listed_key(model["name"]) for model in result[listing]}


def _row(host: str, runner_result: Mapping[str, Any], present: bool | None, loaded: bool | None) -> dict[str, Any]:
    target = runner_result["item"]
    stack, model = target["stack"], target["model"]
    checks = runner_result.get("checks") or {}
    health, llm = checks.get("health") or {}, checks.get("llm") or {}
    served, token = checks.get("served") or {}, checks.get("token") or {}
    row = {
        "host": host,
        "runner": "%s :%s" % (stack["runner_container"], stack["runner_port"]),
        "model": model["model_id"],
        "health": health.get("status") or ("no answer" if health.get("ok") is False else "-"),
        "smoke": ("%.2f s" % llm["seconds"] if llm.get("ok") and "seconds" in llm
                  else "FAILED" if llm.get("ok") is False else "-"),
        "served": ("FAILED" if served.get("ok") is False or token.get("ok") is False
                   else "ok" if served.get("ok") else "-"),
        "present": "-" if present is None else "yes" if present else "NO",
        "warm": ("cold" if not model["warm"] else "-" if loaded is None else "loaded" if loaded else "NOT LOADED"),
    }
    good = bool(runner_result.get("ok")) and present is not False and not (model["warm"] and loaded is False)
    return dict(row, result="ok" if good else "FAILED")


def _model_failures(stack: Mapping[str, Any], read: Mapping[str, Any]) -> list[str]:
    failures = []
    present = ", ".join(model["canonical"] for model in read["models"]) or "nothing"
    loaded = ", ".join(model["canonical"] for model in read["loaded"]) or "nothing"
    for model in stack["models"]:
        tag = model["ollama_tag"]
        if not _has(read, "models", tag):
            failures.append("model %s is not in Ollama %s (its /api/tags lists: %s)"
                            % (tag, stack["ollama_container"], present))
        elif model["warm"] and not _has(read, "loaded", tag):
            failures.append("warm model %s is not loaded in Ollama %s (its /api/ps lists: %s)"
                            % (tag, stack["ollama_container"], loaded))
    return failures


def _ai_models_failures(result: Mapping[str, Any] | None, path: str, holds_tokens: bool) -> list[str]:
    if result is None or result.get("skipped"):
        return []
    errors = result.get("errors") or []
    failures = ["%s entry %s field %s: %s Fix: %s" % (
        path, finding.get("index"), finding.get("field"), finding.get("message"), finding.get("fix"))
        for finding in errors]
    # Registered with failed_when: false (so `failed` is false): a read that failed returns no entries.
    if not errors and "entries" not in result:
        failures.append("%s could not be validated (%s)" % (
            path, "details hidden: the file holds tokens" if holds_tokens else result.get("msg") or "no message"))
    return failures


def findings(host: str, plan: Any, runner_results: Sequence[Mapping[str, Any]],
             ollama_results: Sequence[Mapping[str, Any]], ai_models_result: Mapping[str, Any] | None = None,
             ai_models_path: str = "", holds_tokens: bool = False) -> dict[str, list[Any]]:
    """The table's rows for HOST and every failed check, each naming the runner or Ollama and what it saw.

    runner_results: runner_health's results looped over `targets(plan)`; ollama_results: ollama_info's results
    looped over the plan's stacks (skipped when the models are not checked); ai_models_result: the ai_models
    module's re-validation (None or skipped when not checked).
    """
    stacks = _stacks(plan)
    reads = _ollama_reads(ollama_results)
    rows, failures = [], []
    for result in runner_results:
        stack, model = result["item"]["stack"], result["item"]["model"]
        read = reads.get(stack["name"])
        rows.append(_row(host, result, _has(read, "models", model["ollama_tag"]),
                         _has(read, "loaded", model["ollama_tag"])))
        if not result.get("ok"):
            failures.append("runner %s (%s) with model %s: %s" % (stack["runner_container"], stack["runner_host_url"],
                                                                  model["model_id"], result.get("msg") or "no result"))
    for result in ollama_results:
        stack = result["item"]
        if not result.get("skipped") and stack["name"] not in reads:
            failures.append("Ollama %s (%s): %s" % (stack["ollama_container"], stack["ollama_host_url"],
                                                    result.get("msg") or "no answer"))
    for stack in stacks:
        if stack["name"] in reads:
            failures.extend(_model_failures(stack, reads[stack["name"]]))
    failures.extend(_ai_models_failures(ai_models_result, ai_models_path, holds_tokens))
    if not stacks:
        rows.append({"host": host, "runner": "(no llm model planned)", "model": "-", "health": "-", "smoke": "-",
                     "served": "-", "present": "-", "warm": "-", "result": "ok"})
    return {"rows": rows, "failures": failures}


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows of every host as one table."""
    return "\n".join(format_table([title for title, _key in TABLE_COLUMNS],
                                  [[row.get(key) for _title, key in TABLE_COLUMNS] for row in rows]))
