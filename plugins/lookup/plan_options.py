# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
name: plan_options
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.3.0"
short_description: The planner's options from the variables behind them
description:
  - Returns a dict of the options of P(lpfleet.ai.plan_ai_models#filter) that have a variable behind them (the
    C(lpfleet_*) variables of C(lpfleet.ai.plan), C(ollama_stack_bind_address), C(inventory_hostname)), keyed by
    option name, for the variables that are defined; the planner's default applies to the others.
  - The list of options and their variables is the planner's own (C(PlanOptions)), so the filter call in
    C(roles/plan) passes every option without naming each, C(**lookup('lpfleet.ai.plan_options')).
  - An integer option given as a whole number in a string (C(-e lpfleet_runner_port=8001)) is passed as the
    number; any other value as it is (the planner refuses it, naming the option).
options: {}
"""

EXAMPLES = r"""
- name: Plan this host's models with the inventory's planner options
  ansible.builtin.set_fact:
    my_plan: >-
      {{ lpfleet_gpus | lpfleet.ai.plan_ai_models(lpfleet_model_menu, **lookup('lpfleet.ai.plan_options')) }}
"""

RETURN = r"""
_raw:
  description: One dict, option name to value, for example C(host=gpu-1) and C(runner_port=8000).
  type: list
  elements: dict
"""

from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.lpfleet.ai.plugins.plugin_utils.variables import plan_options


class LookupModule(LookupBase):
    """See DOCUMENTATION."""

    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        if terms:
            raise AnsibleLookupError("lpfleet.ai.plan_options takes no terms, got %r" % (terms,))
        return [plan_options(variables or {}, self._templar.template)]
