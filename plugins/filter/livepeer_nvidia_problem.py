# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
name: livepeer_nvidia_problem
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.2.0"
short_description: Say why go-livepeer, as found now, would not carry a plan's GPU placement
description:
  - Compares a plan from P(lpfleet.ai.plan_ai_models#filter) with go-livepeer's command line as
    P(lpfleet.ai.livepeer_node#filter) read it just now. Returns an empty string when the plan carries over (it was
    made for the node's C(-nvidia), the node is not there, the plan starts no managed container, or the node's value
    is the one the plan asks for); otherwise a message naming the host, the node's value, the value the plan needs
    and the fix.
positional: _input, node
options:
  _input:
    description: The plan, C(lpfleet_plan).
    type: dict
    required: true
  node:
    description: The result of P(lpfleet.ai.livepeer_node#filter).
    type: dict
    required: true
  host:
    description: The host's name for the message (default the plan's).
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Stop when go-livepeer's -nvidia does not carry the plan
  ansible.builtin.fail:
    msg: "{{ lpfleet_plan | lpfleet.ai.livepeer_nvidia_problem(ai_models_node) }}"
  when: (lpfleet_plan | lpfleet.ai.livepeer_nvidia_problem(ai_models_node)) | length > 0
"""

RETURN = r"""
_value:
  description: The problem, or an empty string.
  type: str
"""

from typing import Any

from ansible.errors import AnsibleFilterError


def livepeer_nvidia_problem(plan: Any, node: Any, host: str = "") -> str:
    """Why go-livepeer as found now (NODE, from livepeer_node) would not carry PLAN, or '' when it would.

    The plan carries over when it was made for the node's -nvidia, when the node is not there (yet), when the plan
    starts no managed container, or when the node's value is the one the plan asks for.
    """
    if not isinstance(plan, dict) or not isinstance(node, dict):
        raise AnsibleFilterError("livepeer_nvidia_problem expects lpfleet_plan and the result of livepeer_node")
    if plan.get("nvidia_problem"):
        return str(plan["nvidia_problem"])
    actual = node.get("nvidia")
    if not node.get("found") or actual is None or actual.strip() == (plan.get("livepeer_nvidia") or "").strip():
        return ""
    if not any(item.get("managed") for item in plan.get("placement", [])):
        return ""
    needed = plan.get("nvidia_devices") or ""
    every_gpu = ",".join(str(gpu["index"]) for gpu in plan.get("gpus", []))
    if actual.strip() == needed or (actual.strip() == "all" and needed == every_gpu):
        return ""
    made_for = plan.get("livepeer_nvidia")
    return ("%s: go-livepeer now runs with -nvidia %s, but the plan was made for %s and needs -nvidia %s (go-livepeer "
            "starts the n-th warm managed entry of aiModels.json on the n-th listed GPU). Fix: run the play again "
            "(preflight plans for the node's -nvidia), or start go-livepeer with -nvidia %s. Nothing was written."
            % (host or plan.get("host") or "this host", actual.strip() or "(not set)",
               "-nvidia %s" % made_for if made_for is not None else "a node lpfleet could not read", needed, needed))


class FilterModule:
    """Whether go-livepeer carries the plan."""

    def filters(self) -> dict[str, Any]:
        return {"livepeer_nvidia_problem": livepeer_nvidia_problem}
