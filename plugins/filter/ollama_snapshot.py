# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
name: ollama_snapshot
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.3.0"
short_description: What a host's Ollama servers hold and have loaded, as a snapshot to restore later
description:
  - Takes the results of M(lpfleet.ai.ollama_info) looped over the base URLs of a host's Ollama servers (which share
    one model volume) and gives C({present, loaded}) - C(present) the canonical names of the models in the volume
    (from the first server), C(loaded) per URL the canonical names of the models that server has loaded, each
    sorted. The C(ollama_models) role's C(snapshot) entry point records this; its C(restore) entry point brings the
    servers back to it.
positional: _input
options:
  _input:
    description: The registered loop's C(results); each has C(item) (the URL), C(models) and C(loaded).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Read each Ollama
  lpfleet.ai.ollama_info:
    url: "{{ item }}"
  loop: [http://127.0.0.1:11434, http://127.0.0.1:11435]
  register: read

- name: Record the snapshot
  ansible.builtin.set_fact:
    snapshot: "{{ read.results | lpfleet.ai.ollama_snapshot }}"
"""

RETURN = r"""
_value:
  description: C(present) (list of names) and C(loaded) (URL -> list of names).
  type: dict
"""

from typing import Any, Mapping

from ansible.errors import AnsibleFilterError


def _names(models: Any) -> list[str]:
    return sorted({model["canonical"] for model in models})


def ollama_snapshot(results: Any) -> dict[str, Any]:
    """The filter: see DOCUMENTATION."""
    if not isinstance(results, list) or not all(
            isinstance(result, Mapping) and "models" in result and "loaded" in result for result in results):
        raise AnsibleFilterError("ollama_snapshot: expected the results of lpfleet.ai.ollama_info looped over URLs "
                                 "(each with item, models and loaded)")
    return {"present": _names(results[0]["models"]) if results else [],
            "loaded": {result["item"]: _names(result["loaded"]) for result in results}}


class FilterModule:
    """A snapshot of a host's Ollama servers."""

    def filters(self) -> dict[str, Any]:
        return {"ollama_snapshot": ollama_snapshot}
