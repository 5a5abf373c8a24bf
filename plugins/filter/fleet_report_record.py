# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_report_record
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.3.0"
short_description: One host's record for the fleet report, from what was read on it
description:
  - Builds the record P(lpfleet.ai.fleet_report#filter) renders for one host - its GPUs, its plan, the models present
    and loaded in its Ollama servers (canonical names, read with M(lpfleet.ai.ollama_info)), the health of each
    runner (M(lpfleet.ai.runner_health)), the problems met reading them, and its last rollout's record.
  - The record holds the plan, whose entries may carry tokens - set it with C(no_log); the report masks them.
positional: _input
options:
  _input:
    description: The host's plan (C(lpfleet_plan)).
    type: dict
    required: true
  host:
    description: The host's name (C(inventory_hostname)).
    type: str
    required: true
  gpus:
    description: The host's GPUs (C(lpfleet_gpus)).
    type: list
    elements: dict
    default: []
  ollamas:
    description: The results of M(lpfleet.ai.ollama_info) looped over the plan's stacks.
    type: list
    elements: dict
    default: []
  runners:
    description: The results of M(lpfleet.ai.runner_health) looped over the plan's stacks, or over
      P(lpfleet.ai.verify_targets#filter) (a smoke request per model).
    type: list
    elements: dict
    default: []
  last_rollout:
    description: The result of C(ansible.builtin.slurp) of the host's C(last-rollout.json), or null when there is none.
    type: dict
"""

EXAMPLES = r"""
- name: Record what the host reported
  ansible.builtin.set_fact:
    fleet_report_record: >-
      {{ lpfleet_plan | lpfleet.ai.fleet_report_record(host=inventory_hostname, gpus=ansible_facts['lpfleet_gpus'],
           ollamas=ollamas.results, runners=health.results, last_rollout=status) }}
  no_log: true
"""

RETURN = r"""
_value:
  description: The record (C(host), C(gpus), C(plan), C(models_present), C(models_loaded), C(runners), C(problems),
    C(last_rollout), C(error)).
  type: dict
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.lpfleet.ai.plugins.plugin_utils.fleet_report import host_record


def fleet_report_record(plan: Any, host: str, gpus: Any = None, ollamas: Any = None, runners: Any = None,
                        last_rollout: Any = None) -> dict[str, Any]:
    """The filter: see DOCUMENTATION."""
    try:
        return host_record(host, gpus, plan, list(ollamas or []), list(runners or []), last_rollout or None)
    except (TypeError, KeyError) as exc:
        raise AnsibleFilterError("fleet_report_record: cannot read the results: %r" % exc) from exc


class FilterModule:
    """A host's fleet report record."""

    def filters(self) -> dict[str, Any]:
        return {"fleet_report_record": fleet_report_record}
