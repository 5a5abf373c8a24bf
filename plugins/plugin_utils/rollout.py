# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""The rollout's decisions (roles/rollout, playbooks/rollout_models.yml), on the controller.

Pure functions over plain data, so that each decision is unit-tested (tests/unit/test_rollout.py):

- `host_plan`: what a host's rollout pulls, prunes and switches, from its plan and its snapshot;
  `is_unchanged`: whether the host can be left alone (rollout_skip_unchanged).
- `host_status`: the outcome a host records (result, message, error, pulled, pruned), one message
  per result, so the summary, last-rollout.json and the fleet report say the same thing.
- `record`: the document written to <rollout_status_dir>/last-rollout.json.
- `site_fallback`: the models a host of a site pulled from upstream because its site's cache host could
  not give them, with the reason (from ollama_models_site_outcome); the record, the outcomes and the
  summary table carry it.
- `outcomes`: every targeted host's final outcome, seen from the control node: a host still
  `switching` or `restoring` that is no longer active was cut off mid-switch (it ran neither its
  rescue nor its always); batches whose failures stopped the rollout (`batch_stops`).
- `failure_text`: the failed task and its message, for the records.
- `restore_checks`: which runner serves which llm entry of the restored aiModels.json.
- `plan_table` / `summary_table`: the two tables the playbook prints.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from ansible_collections.lpfleet.ai.plugins.module_utils.ollama_names import canonical_name, name_key
from ansible_collections.lpfleet.ai.plugins.plugin_utils.tables import format_table

# Results a host's record may hold. `switching` and `restoring` are the states a host is in while
# its switch or its restore runs; found at the end (or on the host by the next run), they mean
# the host was cut off in the middle.
RESULTS = ("prepulled", "failed", "unchanged", "switching", "switched", "restoring", "restored",
           "restore_failed", "unreachable", "not_switched", "not_run", "recovered")
IN_PROGRESS = ("switching", "restoring")


def host_plan(planned_tags: Iterable[str], present: Iterable[str], ai_models_changed: bool, prune: bool,
              unplaced: Iterable[Mapping[str, Any]] = (), ollama_running: bool = True) -> dict[str, Any]:
    """What the rollout does on one host: the tags to pull, the tags to prune once it passed, whether
    aiModels.json changes, whether an Ollama runs to pre-pull through, and the menu items not placed.
    Names are compared by Ollama's own rule (module_utils/ollama_names) and given as Ollama lists them."""
    planned = [canonical_name(tag) for tag in planned_tags]
    present = [canonical_name(tag) for tag in present]
    planned_keys = {name_key(tag) for tag in planned}
    present_keys = {name_key(tag) for tag in present}
    return {
        "pull": [tag for tag in planned if name_key(tag) not in present_keys],
        "prune": [tag for tag in present if name_key(tag) not in planned_keys] if prune else [],
        "ai_models_changed": bool(ai_models_changed),
        "ollama_running": bool(ollama_running),
        "unplaced": [item["model_id"] for item in unplaced],
    }


def is_unchanged(plan: Mapping[str, Any], skip_unchanged: bool = True) -> bool:
    """True when the host can be left alone: skipping is on and the plan pulls, switches and prunes nothing."""
    return bool(skip_unchanged) and not plan["pull"] and not plan["ai_models_changed"] and not plan["prune"]


def needs_switch(plan: Mapping[str, Any]) -> bool:
    """True when the host has anything to pull, switch or prune (it then waits for its batch)."""
    return not is_unchanged(plan, True)


def _join(tags: Sequence[str], empty: str) -> str:
    return ", ".join(tags) or empty


def host_status(result: str, plan: Mapping[str, Any] | None = None, error: str | None = None,
                stage: str = "plan", restore_error: str | None = None, pruned: Sequence[str] = (),
                prune_error: str | None = None, rollout_id: str | None = None) -> dict[str, Any]:
    """The outcome a host records for RESULT (one of RESULTS), with the one message that says it.

    `stage` (result `failed`): `plan` or `pre-pull`. `rollout_id` (result `recovered`): the rollout
    the host was cut off in. `prune_error` (result `switched`): pruning failed after the switch."""
    plan = plan or {}
    pulled = list(plan.get("pull", []))
    changed = bool(plan.get("ai_models_changed", False))
    if result == "prepulled":
        message = (f"models pulled ({_join(pulled, 'none needed')}), waiting for its batch; if the rollout has "
                   "ended, it stopped before this host's batch and the host serves its previous menu")
        return {"result": result, "message": message, "pulled": pulled}
    if result == "failed":
        return {"result": result, "error": error,
                "message": f"the {stage} failed; the host was not switched and serves its previous menu"}
    if result == "unchanged":
        return {"result": result, "message": "the new menu changes nothing on this host"}
    if result == "switching":
        return {"result": result, "pulled": pulled, "ai_models_changed": changed,
                "message": "switching to the new menu (if this is the last record, the switch never ended)"}
    if result == "switched":
        status = {"result": result, "pulled": pulled, "ai_models_changed": changed, "pruned": list(pruned),
                  "message": "switched to the new menu and verified"}
        if prune_error:
            status.update(message="switched to the new menu and verified; pruning failed", error=prune_error)
        return status
    if result == "restoring":
        return {"result": result, "error": error, "pulled": pulled, "ai_models_changed": changed,
                "message": "the switch failed; restoring the previous state (if this is the last record, "
                           "the restore never ended)"}
    if result == "restored":
        return {"result": result, "error": error,
                "message": "the switch failed; the previous aiModels.json, models and runner are back and checked"}
    if result == "restore_failed":
        return {"result": result, "error": error, "restore_error": restore_error, "pulled": pulled,
                "ai_models_changed": changed,
                "message": "the switch failed and so did the restore; the host needs a look"}
    if result == "recovered":
        return {"result": result, "recovered_from": rollout_id,
                "message": (f"cut off mid-switch in rollout {rollout_id}; restored from the snapshot it left to "
                            "its state before that rollout, then this run went on")}
    raise ValueError(f"unknown rollout result {result!r}; expected one of {', '.join(RESULTS)}")


def site_fallback(site_outcome: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """The models the host pulled from upstream because its site's cache host could not give them, each with
    the reason ([{model, reason}]), from ollama_models_site_outcome (None or {}: the host copied nothing)."""
    if not site_outcome:
        return []
    if not isinstance(site_outcome, Mapping) or not isinstance(site_outcome.get("fallback", []), list):
        raise ValueError("expected ollama_models_site_outcome (a mapping with a list 'fallback'), "
                         f"not {site_outcome!r}")
    return [{"model": str(item.get("model")), "reason": str(item.get("reason") or "no reason given")}
            for item in site_outcome.get("fallback", [])]


def site_fallback_text(fallback: Sequence[Mapping[str, Any]]) -> str:
    """One sentence for the tables; empty when nothing fell back."""
    if not fallback:
        return ""
    models = " | ".join(f"{item['model']} ({item['reason']})" for item in fallback)
    return "from upstream, not the site's cache: " + models


def record(rollout_id: str, started: str, status: Mapping[str, Any], finished: str | None,
           site_outcome: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The document of <rollout_status_dir>/last-rollout.json: the rollout, when, and the host's outcome.
    `finished` is None while the host waits for its batch or is in the middle of its switch.
    `site_fallback` lists the models pulled from upstream because the site's cache could not give them."""
    document: dict[str, Any] = {"rollout_id": rollout_id, "started": started, "finished": None, "error": None,
                                "pulled": [], "pruned": [], "ai_models_changed": False,
                                "site_fallback": site_fallback(site_outcome)}
    document.update(status)
    document["finished"] = None if status.get("result") in ("prepulled",) + IN_PROGRESS else finished
    return document


def _lost_status(status: Mapping[str, Any]) -> dict[str, Any]:
    during = "its restore" if status["result"] == "restoring" else "its switch"
    message = (f"unreachable mid-switch: the control node lost the host during {during}, so it ran neither its "
               "restore nor its record; it may serve a mix of the old and new menu. The next rollout_models.yml "
               "or site.yml run finds the snapshot it left and restores it first")
    lost = {key: status[key] for key in ("pulled", "ai_models_changed", "error") if status.get(key) is not None}
    return {**lost, "result": "unreachable", "message": message, "lost_during": status["result"]}


def outcome(status: Mapping[str, Any] | None, active: bool) -> dict[str, Any]:
    """A host's final outcome, seen from the control node at the end of the rollout. STATUS is its last
    status (None: it never recorded one); ACTIVE: whether it was still reachable and not failed."""
    if status is None:
        return {"result": "not_run", "message": "unreachable, or the rollout stopped first"}
    if status.get("result") in IN_PROGRESS:
        if active:
            # Cannot happen through the role (each path ends with another status); said, not hidden.
            return {**status, "message": f"left {status['result']} with the host still reachable: run again"}
        return _lost_status(status)
    if status.get("result") == "prepulled":
        if not active:
            return {**status, "result": "not_switched",
                    "message": "unreachable before its switch: not switched, it serves its previous menu "
                               "(its new models stay pulled)"}
        return {**status, "result": "not_switched",
                "message": "the rollout stopped before this host's batch: it serves its previous menu "
                           "(its new models stay pulled)"}
    return dict(status)


def outcomes(hosts: Sequence[str], statuses: Mapping[str, Any], active_hosts: Iterable[str],
             site_outcomes: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every targeted host's final outcome (see `outcome`), by host; with `site_fallback` (see `site_fallback`)
    from SITE_OUTCOMES (each host's ollama_models_site_outcome, by host) when any model fell back to upstream."""
    active = set(active_hosts)
    final = {host: outcome(statuses.get(host), host in active) for host in hosts}
    for host in hosts:
        fallback = site_fallback((site_outcomes or {}).get(host))
        if fallback:
            final[host]["site_fallback"] = fallback
    return final


# A host whose switch failed (or never ended); with `failed` (its plan or pre-pull failed), a host that failed.
SWITCH_FAILED = ("restored", "restore_failed", "unreachable") + IN_PROGRESS
FAILED_RESULTS = ("failed",) + SWITCH_FAILED


def batch_stops(batch: Sequence[str], failed: Iterable[str], max_fail_percentage: float) -> bool:
    """Whether the rollout stops after BATCH: more than MAX_FAIL_PERCENTAGE of it failed, or all of it
    (Ansible's own rule for serial plays, which the rollout applies itself so that the summary still runs)."""
    if not batch:
        return False
    failed_here = [host for host in batch if host in set(failed)]
    return len(failed_here) == len(batch) or 100.0 * len(failed_here) / len(batch) > float(max_fail_percentage)


def batch_verdict(batch: Sequence[str], statuses: Mapping[str, Any], active: Iterable[str],
                  max_fail_percentage: float, number: int = 1) -> dict[str, Any]:
    """After batch NUMBER: its failed hosts (restored, restore failed, lost: no longer ACTIVE), whether the
    rollout stops, and the message the hosts of later batches record when it does."""
    active = set(active)
    failed = [host for host in batch
              if host not in active or (statuses.get(host) or {}).get("result") in SWITCH_FAILED]
    stop = batch_stops(batch, failed, max_fail_percentage)
    message = (f"the rollout stopped after batch {number}, where {len(failed)} of {len(batch)} host(s) failed "
               f"({', '.join(failed)}; rollout_max_fail_percentage {max_fail_percentage}): this host was not "
               "switched and serves its previous menu (its new models stay pulled)") if stop else None
    return {"batch": number, "hosts": list(batch), "failed": failed, "stop": stop, "message": message}


def stopped_status(verdict: Mapping[str, Any], plan: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The status of a host whose batch never came because VERDICT stopped the rollout."""
    return {"result": "not_switched", "message": verdict["message"], "pulled": list((plan or {}).get("pull", []))}


def failures(final: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per host that failed, for the rollout's closing failure (empty: every host passed)."""
    lines = []
    for host, status in final.items():
        result = status.get("result")
        if result == "restored":
            lines.append(f"{host}: the switch failed ({status.get('error')}). The host was restored to its previous "
                         "aiModels.json, models and runner, and passed its checks again. Fix the cause, then run "
                         "the rollout again.")
        elif result in FAILED_RESULTS:
            detail = f" ({status['error']})" if status.get("error") else ""
            lines.append(f"{host}: {result}: {status.get('message')}{detail}.")
    return lines


def last_record(on_host: Mapping[str, Any] | None, on_controller: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The last rollout's record of a host, for the fleet report: the newer of the host's last-rollout.json and
    the control node's copy (the copy alone knows a host lost mid-switch). A record still in progress when the
    report is made means the host was cut off: it is shown as `unreachable`."""
    candidates = [dict(r) for r in (on_host, on_controller) if isinstance(r, Mapping) and r.get("rollout_id")]
    if not candidates:
        return dict(on_host) if isinstance(on_host, Mapping) else None
    # Same rollout: the finished record wins (the host wrote `switching`, the control node the outcome).
    newest = max(candidates, key=lambda r: (str(r["rollout_id"]), r.get("finished") is not None))
    if newest.get("result") in IN_PROGRESS:
        return {**newest, **_lost_status(newest)}
    return newest


def failure_text(task: Mapping[str, Any] | None, result: Mapping[str, Any] | None) -> str:
    """`<task name>: <message>` of a failure (a loop's first failed item's message)."""
    task = task or {}
    result = result or {}
    items = [item for item in result.get("results", []) or [] if isinstance(item, Mapping) and item.get("failed")]
    message = (items[0].get("msg") if items else None) or result.get("msg") or "no message"
    return f"{task.get('name') or '?'}: {str(message).strip()}"


def restore_checks(entries: Iterable[Mapping[str, Any]], runners: Iterable[Mapping[str, Any]]) -> list[list[Any]]:
    """[runner, entry] for every llm entry of the restored aiModels.json and the running runner it names
    (by its published URL, or by its container name as the URL's host)."""
    runners = list(runners)
    pairs = []
    for entry in entries:
        if entry.get("pipeline") != "llm" or not entry.get("url"):
            continue
        url = str(entry["url"])
        for runner in runners:
            if runner.get("url") == url.rstrip("/") or runner.get("container") == urlsplit(url).hostname:
                pairs.append([dict(runner), dict(entry)])
    return pairs


def _tags_cell(tags: Sequence[str] | None) -> str:
    return "?" if tags is None else (", ".join(tags) or "-")


def plan_table(hosts: Sequence[str], plans: Mapping[str, Any], statuses: Mapping[str, Any],
               check_mode: bool = False) -> str:
    """The rollout's plan, one line per targeted host (after the pre-pull)."""
    rows = []
    for host in hosts:
        plan = plans.get(host)
        status = statuses.get(host) or {}
        if status.get("result") == "failed":
            state = f"FAILED: {status.get('error')}"
        elif check_mode:
            state = "dry run"
        elif status.get("result") == "prepulled":
            state = "pre-pulled, waits for its batch"
        elif plan is not None:
            state = "nothing to change"
        else:
            state = "not planned (unreachable?)"
        rows.append([host,
                     _tags_cell(plan["pull"] if plan else None),
                     ("changes" if plan["ai_models_changed"] else "same") if plan else "?",
                     _tags_cell(plan["prune"] if plan else None),
                     len(plan["unplaced"]) if plan else "?",
                     state])
    return "\n".join(format_table(["HOST", "PULL", "aiModels.json", "PRUNE", "NOT PLACED", "STATE"], rows))


def summary_table(hosts: Sequence[str], final: Mapping[str, Mapping[str, Any]]) -> str:
    """The rollout's outcome, one line per targeted host (`final`: from `outcomes`)."""
    rows = []
    for host in hosts:
        status = final[host]
        detail = status.get("message", "") + (f": {status['error']}" if status.get("error") else "")
        fallback = site_fallback_text(status.get("site_fallback") or [])
        detail += f"; {fallback}" if fallback else ""
        rows.append([host, status.get("result"), _tags_cell(status.get("pulled", [])),
                     _tags_cell(status.get("pruned", [])), detail])
    return "\n".join(format_table(["HOST", "RESULT", "PULLED", "PRUNED", "DETAIL"], rows))
