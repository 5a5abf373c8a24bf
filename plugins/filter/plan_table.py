# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
name: plan_table
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.1.0"
short_description: Render a plan from plan_ai_models as a readable text table
description:
  - Per GPU, what is placed there (warm or cold, pipeline, model, VRAM, what serves it); then the items with their
    own C(url); then every item that was not placed, with its reason.
positional: _input
options:
  _input:
    description: The result of P(lpfleet.ai.plan_ai_models#filter).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Show the plan
  ansible.builtin.debug:
    msg: "{{ (lpfleet_plan | lpfleet.ai.plan_table).splitlines() }}"
"""

RETURN = r"""
_value:
  description: The table, lines separated by newlines, no trailing newline.
  type: str
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.lpfleet.ai.plugins.plugin_utils.tables import plan_table as render_plan_table


def plan_table(plan: Any) -> str:
    """The filter: see DOCUMENTATION."""
    try:
        return render_plan_table(plan)
    except TypeError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    """A plan as a table."""

    def filters(self) -> dict[str, Any]:
        return {"plan_table": plan_table}
