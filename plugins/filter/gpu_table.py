# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
name: gpu_table
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.1.0"
short_description: Render lpfleet_gpus as a fixed-width text table
description:
  - One line per GPU under a header with index, name, total and free memory (MiB), driver, CUDA version, compute
    capability and UUID. Missing values show as C(-). An empty list gives C(no NVIDIA GPU found).
positional: _input
options:
  _input:
    description: C(lpfleet_gpus), as set by M(lpfleet.ai.gpu_facts).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Show the host's GPUs
  ansible.builtin.debug:
    msg: "{{ (lpfleet_gpus | lpfleet.ai.gpu_table).splitlines() }}"
"""

RETURN = r"""
_value:
  description: The table, lines separated by newlines, no trailing newline.
  type: str
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.lpfleet.ai.plugins.plugin_utils.tables import gpu_table as render_gpu_table


def gpu_table(gpus: Any) -> str:
    """The filter: see DOCUMENTATION."""
    try:
        return render_gpu_table(gpus)
    except TypeError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    """GPU facts as a table."""

    def filters(self) -> dict[str, Any]:
        return {"gpu_table": gpu_table}
