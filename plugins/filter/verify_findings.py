# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
name: verify_findings
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.3.0"
short_description: What the verify role's checks found on a host - table rows and failures
description:
  - Reads the results the verify role registered on a host - M(lpfleet.ai.runner_health) looped over
    P(lpfleet.ai.verify_targets#filter), M(lpfleet.ai.ollama_info) looped over the plan's stacks, and
    M(lpfleet.ai.ai_models) re-validating the file - into C(rows) (one per runner and model, for
    P(lpfleet.ai.verify_table#filter)) and C(failures) (one sentence per failed check, naming the runner or Ollama,
    its URL and what it saw).
  - A planned model missing from its Ollama, or a warm one not loaded, is a failure; names are compared as Ollama
    compares them (C(mistral) is C(mistral:latest)).
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
  runners:
    description: The runner_health results (the registered variable's C(results)).
    type: list
    elements: dict
    required: true
  ollamas:
    description: The ollama_info results (C(results)); skipped ones mean the models were not checked.
    type: list
    elements: dict
    default: []
  ai_models:
    description: The ai_models re-validation result, or null when not checked.
    type: dict
  ai_models_path:
    description: The path of C(aiModels.json), for the messages.
    type: str
    default: ""
  holds_tokens:
    description: Whether the file holds tokens (then a failure's details are not shown).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Record the results
  ansible.builtin.set_fact:
    verify_result: >-
      {{ lpfleet_plan | lpfleet.ai.verify_findings(host=inventory_hostname, runners=runner_results.results,
           ollamas=ollama_results.results) }}
"""

RETURN = r"""
_value:
  description: C(rows) (C(host), C(runner), C(model), C(health), C(smoke), C(served), C(present), C(warm), C(result))
    and C(failures) (strings).
  type: dict
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.lpfleet.ai.plugins.plugin_utils.verify import findings


def verify_findings(plan: Any, host: str, runners: Any, ollamas: Any = (), ai_models: Any = None,
                    ai_models_path: str = "", holds_tokens: bool = False) -> dict[str, list[Any]]:
    """The filter: see DOCUMENTATION."""
    try:
        return findings(host, plan, list(runners or []), list(ollamas or []), ai_models, ai_models_path,
                        bool(holds_tokens))
    except (TypeError, KeyError) as exc:
        raise AnsibleFilterError("verify_findings: cannot read the results: %r" % exc) from exc


class FilterModule:
    """The verify role's findings."""

    def filters(self) -> dict[str, Any]:
        return {"verify_findings": verify_findings}
