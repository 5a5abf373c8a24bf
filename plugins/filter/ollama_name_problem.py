# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
name: ollama_name_problem
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.2.0"
short_description: Say why Ollama would refuse a model name
description:
  - Checks a name against Ollama's rules for model names, C([host/][namespace/]model[:tag]), as
    M(lpfleet.ai.ollama_model) does before any request. Returns an empty string for a valid name, else what is wrong
    (empty, whitespace around it, a control character, or a part Ollama refuses).
  - The rule lives in C(module_utils/ollama_names.py); this filter lets a role check the planned tags before any
    change, so that a bad tag stops the run in preflight rather than at the pull.
positional: _input
options:
  _input:
    description: The name, e.g. C(llama3.1:8b).
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Require Ollama names Ollama accepts
  ansible.builtin.assert:
    that:
      - item | lpfleet.ai.ollama_name_problem == ''
    fail_msg: "{{ item | to_json }} {{ item | lpfleet.ai.ollama_name_problem }}"
  loop: "{{ lpfleet_plan.ollama_tags }}"
"""

RETURN = r"""
_value:
  description: The problem, or an empty string.
  type: str
"""

from typing import Any

from ansible_collections.lpfleet.ai.plugins.module_utils.ollama_names import name_problem


def ollama_name_problem(name: Any) -> str:
    """Why Ollama would refuse NAME, or '' when it is a valid model name."""
    return name_problem(name) or ""


class FilterModule:
    """Ollama's model name rules."""

    def filters(self) -> dict[str, Any]:
        return {"ollama_name_problem": ollama_name_problem}
