# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""The rollout's filters (roles/rollout): thin wrappers over plugins/plugin_utils/rollout.py.

Each filter is documented in its own file beside this one (plugins/filter/rollout_*.yml)."""

from __future__ import annotations

from typing import Any, Mapping

from ansible_collections.lpfleet.ai.plugins.plugin_utils import rollout, variables
from ansible_collections.lpfleet.ai.plugins.plugin_utils.filters import checked


def host_plan(planned_tags: Any, present: Any, ai_models_changed: bool = False, prune: bool = True,
              unplaced: Any = (), ollama_running: bool = True) -> dict[str, Any]:
    return rollout.host_plan(planned_tags, present, ai_models_changed, prune, unplaced, ollama_running)


def is_unchanged(plan: Mapping[str, Any], skip_unchanged: bool = True) -> bool:
    return rollout.is_unchanged(plan, skip_unchanged)


def status(result: str, **kwargs: Any) -> dict[str, Any]:
    return rollout.host_status(result, **kwargs)


def record(status_: Mapping[str, Any], rollout_id: str, started: str, finished: Any = None,
           site_outcome: Any = None) -> dict[str, Any]:
    return rollout.record(rollout_id, started, status_, finished, site_outcome)


def outcomes(hosts: Any, statuses: Mapping[str, Any], active_hosts: Any, site_outcomes: Any = None) -> dict[str, Any]:
    return rollout.outcomes(hosts, statuses, active_hosts, site_outcomes)


def failure(task: Any, result: Any) -> str:
    return rollout.failure_text(task, result)


def restore_checks(entries: Any, runners: Any) -> list[list[Any]]:
    return rollout.restore_checks(entries, runners)


def plan_table(hosts: Any, plans: Mapping[str, Any], statuses: Mapping[str, Any], check_mode: bool = False) -> str:
    return rollout.plan_table(hosts, plans, statuses, check_mode)


def summary_table(final: Mapping[str, Mapping[str, Any]]) -> str:
    return rollout.summary_table(list(final), final)


def batch_verdict(batch: Any, statuses: Mapping[str, Any], active: Any, max_fail_percentage: Any = 0,
                  number: Any = 1) -> dict[str, Any]:
    return rollout.batch_verdict(batch, statuses, active, float(max_fail_percentage), int(number))


def stopped_status(verdict: Mapping[str, Any], plan: Any = None) -> dict[str, Any]:
    return rollout.stopped_status(verdict, plan)


def failures(final: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return rollout.failures(final)


def last_record(on_host: Any, on_controller: Any = None) -> Any:
    return rollout.last_record(on_host, on_controller)


def by_host(hosts: Any, hostvars: Mapping[str, Any], name: str = "rollout_status") -> dict[str, Any]:
    return variables.by_host(hosts, hostvars, name)


class FilterModule:
    """The rollout's decisions and tables."""

    def filters(self) -> dict[str, Any]:
        return {f"rollout_{function.__name__}": checked(f"lpfleet.ai.rollout_{function.__name__}", function, show=repr)
                for function in (host_plan, is_unchanged, status, record, outcomes, failure, restore_checks,
                                 plan_table, summary_table, batch_verdict, stopped_status, failures,
                                 last_record, by_host)}
