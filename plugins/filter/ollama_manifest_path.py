# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
name: ollama_manifest_path
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.3.0"
short_description: Where Ollama keeps a model's manifest
description:
  - Gives the path, under the C(manifests/) directory of Ollama's models directory, of the manifest of a model name -
    C(host/namespace/model/tag), with Ollama's defaults filled in (C(mistral) gives
    C(registry.ollama.ai/library/mistral/latest)). A name Ollama refuses fails the task.
  - The rule lives in the collection's C(module_utils/ollama_names.py).
positional: _input
options:
  _input:
    description: The model name.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Is the model in the volume?
  ansible.builtin.stat:
    path: "/var/lib/docker/volumes/ollama/_data/models/manifests/{{ 'mistral' | lpfleet.ai.ollama_manifest_path }}"
"""

RETURN = r"""
_value:
  description: The relative path.
  type: str
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.lpfleet.ai.plugins.module_utils.ollama_names import manifest_path


def ollama_manifest_path(name: Any) -> str:
    """The filter: see DOCUMENTATION."""
    try:
        return manifest_path(name)
    except ValueError as exc:
        raise AnsibleFilterError("ollama_manifest_path: %s" % exc) from exc


class FilterModule:
    """Ollama's manifest paths."""

    def filters(self) -> dict[str, Any]:
        return {"ollama_manifest_path": ollama_manifest_path}
