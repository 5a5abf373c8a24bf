# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
name: verify_targets
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.3.0"
short_description: What the verify role checks - one item per planned runner and model
description:
  - Takes a plan (C(lpfleet_plan)) and gives one item per stack and model it serves, with what
    M(lpfleet.ai.runner_health) needs - C(stack) (with its C(runner_host_url) and C(ollama_host_url)), C(model),
    C(planned_tags) (the tags the plan puts in that stack's Ollama) and C(other_ollamas) (the other stacks' Ollamas
    as C({name, url, tags}), where the model must not be loaded).
positional: _input
options:
  _input:
    description: The plan, from P(lpfleet.ai.plan_ai_models#filter).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Check each runner with each model it serves
  lpfleet.ai.runner_health:
    url: "{{ item.stack.runner_host_url }}"
    model_id: "{{ item.model.model_id }}"
    ollama_url: "{{ item.stack.ollama_host_url }}"
    ollama_tag: "{{ item.model.ollama_tag }}"
    planned_tags: "{{ item.planned_tags }}"
    other_ollamas: "{{ item.other_ollamas }}"
  loop: "{{ lpfleet_plan | lpfleet.ai.verify_targets }}"
"""

RETURN = r"""
_value:
  description: The items, stacks in plan order, models in stack order.
  type: list
  elements: dict
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.lpfleet.ai.plugins.plugin_utils.verify import targets


def verify_targets(plan: Any) -> list[dict[str, Any]]:
    """The filter: see DOCUMENTATION."""
    try:
        return targets(plan)
    except (TypeError, KeyError) as exc:
        raise AnsibleFilterError("verify_targets: %s" % exc) from exc


class FilterModule:
    """The verify role's runner checks."""

    def filters(self) -> dict[str, Any]:
        return {"verify_targets": verify_targets}
