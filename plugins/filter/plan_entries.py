# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
name: plan_entries
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.3.0"
short_description: A plan's aiModels.json entries with the runner token in place
description:
  - Takes a plan (C(lpfleet_plan), from P(lpfleet.ai.plan_ai_models#filter)) and gives its C(aiModels.json) entries,
    with O(token) set on every entry served by one of the plan's runners (its C(url) is a stack's C(runner_url)).
    Entries with another C(url) and managed entries keep their own token, or none.
  - Without O(token) (null), the entries as planned.
  - The result holds the runner's secret - use it only in tasks with C(no_log), or in modules that mask it (as
    M(lpfleet.ai.ai_models) does).
positional: _input
options:
  _input:
    description: The plan.
    type: dict
    required: true
  token:
    description: The runner's bearer token (C(lpfleet_runner_token)), or null for none.
    type: str
"""

EXAMPLES = r"""
- name: Write aiModels.json with the runner token in the runner's entries
  lpfleet.ai.ai_models:
    path: /var/lib/livepeer/aiModels.json
    entries: "{{ lpfleet_plan | lpfleet.ai.plan_entries(token=lpfleet_runner_token | default(none)) }}"
"""

RETURN = r"""
_value:
  description: The entries, in the plan's file order.
  type: list
  elements: dict
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.lpfleet.ai.plugins.plugin_utils.planner import PlanError, entries_with_token


def plan_entries(plan: Any, token: Any = None) -> list[dict[str, Any]]:
    """The filter: see DOCUMENTATION."""
    try:
        return entries_with_token(plan, token)
    except PlanError as exc:
        raise AnsibleFilterError("plan_entries: %s" % exc) from exc


class FilterModule:
    """A plan's aiModels.json entries with the runner token."""

    def filters(self) -> dict[str, Any]:
        return {"plan_entries": plan_entries}
