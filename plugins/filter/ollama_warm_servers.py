# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
name: ollama_warm_servers
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.4.0"
short_description: Each Ollama of a plan with the warm models it keeps loaded
description:
  - Takes a plan (P(lpfleet.ai.plan_ai_models#filter)) and gives one C({url, models}) per stack, in the plan's order -
    C(url) the stack's C(ollama_host_url) (where the host itself reaches it), C(models) the C(ollama_tag) of each of
    its models with C(warm) true, in the stack's order.
  - The shape of C(servers) in the warm unit's C(warm.json) (role C(ollama_stack)), and, with O(planned=true), of the
    C(ollama) watch of M(lpfleet.ai.applied_state) (role C(ollama_models)).
positional: _input
options:
  _input:
    description: The plan, C(lpfleet_plan).
    type: dict
    required: true
  planned:
    description:
      - Also give each server C(planned), the C(ollama_tag) of every model of its stack (warm or cold), in the stack's
        order, so that M(lpfleet.ai.applied_state) finds a loaded model the plan does not put in that Ollama.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: The warm unit's input
  ansible.builtin.copy:
    content: "{{ {'budget_seconds': 600, 'servers': lpfleet_plan | lpfleet.ai.ollama_warm_servers} | to_nice_json }}"
    dest: /opt/lpfleet/ollama-stack/warm.json
    mode: "0644"

- name: What ollama_models' applied-state record watches in each Ollama
  ansible.builtin.set_fact:
    watched_ollamas: "{{ lpfleet_plan | lpfleet.ai.ollama_warm_servers(planned=true) }}"
"""

RETURN = r"""
_value:
  description: One C({url, models}) per stack (C({url, models, planned}) with O(planned=true)).
  type: list
  elements: dict
"""

from typing import Any

from ansible.errors import AnsibleFilterError


def _server(stack: dict[str, Any], planned: bool) -> dict[str, Any]:
    models = stack.get("models") or []
    server = {"url": str(stack["ollama_host_url"]),
              "models": [str(model["ollama_tag"]) for model in models if model.get("warm")]}
    if planned:
        server["planned"] = [str(model["ollama_tag"]) for model in models]
    return server


def warm_servers(plan: Any, planned: bool = False) -> list[dict[str, Any]]:
    """The filter: see DOCUMENTATION."""
    try:
        return [_server(stack, bool(planned)) for stack in plan.get("stacks") or []]
    except (AttributeError, KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"ollama_warm_servers: not a plan with stacks ({exc!r})") from exc


class FilterModule:
    """The warm models of each Ollama."""

    def filters(self) -> dict[str, Any]:
        return {"ollama_warm_servers": warm_servers}
