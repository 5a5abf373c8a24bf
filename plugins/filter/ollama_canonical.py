# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
name: ollama_canonical
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.3.0"
short_description: An Ollama model name as Ollama lists it
description:
  - Gives the canonical form of an Ollama model name, the one C(/api/tags) and C(/api/ps) list (Ollama's
    C(DisplayShortest)) - a name without a tag gets C(:latest), the default registry and namespace
    C(registry.ollama.ai/library/) are left out - so that names written differently compare equal
    (C(mistral) and C(registry.ollama.ai/library/mistral:latest) both give C(mistral:latest)).
  - Ollama ignores case when it matches names; with O(fold=true) the result is in lower case, to compare with.
  - Takes one name or a list of names. A name Ollama refuses fails the task, saying what is wrong.
  - The rule lives in the collection's C(module_utils/ollama_names.py); M(lpfleet.ai.ollama_info) and
    M(lpfleet.ai.ollama_model) match names with the same code.
positional: _input
options:
  _input:
    description: A model name, e.g. C(mistral), or a list of them.
    type: raw
    required: true
  fold:
    description: Lower-case the result (Ollama's case-insensitive comparison).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: The canonical names of the planned tags
  ansible.builtin.debug:
    msg: "{{ lpfleet_plan.ollama_tags | lpfleet.ai.ollama_canonical }}"

- name: Whether two names are one model to Ollama
  ansible.builtin.debug:
    msg: "{{ 'Mistral' | lpfleet.ai.ollama_canonical(fold=true) == 'mistral:latest' }}"
"""

RETURN = r"""
_value:
  description: The canonical name, or the list of canonical names in the same order.
  type: raw
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.lpfleet.ai.plugins.module_utils.ollama_names import canonical_name, name_key


def ollama_canonical(names: Any, fold: bool = False) -> Any:
    """The canonical name of NAMES (a name or a list of names); AnsibleFilterError for a name Ollama refuses."""
    convert = name_key if fold else canonical_name
    try:
        if isinstance(names, (list, tuple)):
            return [convert(name) for name in names]
        return convert(names)
    except ValueError as err:
        raise AnsibleFilterError("ollama_canonical: %s" % err) from err


class FilterModule:
    """Ollama's canonical model names."""

    def filters(self) -> dict[str, Any]:
        return {"ollama_canonical": ollama_canonical}
