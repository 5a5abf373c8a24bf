# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
name: verify_table
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.3.0"
short_description: The verify role's results as one text table
description:
  - Draws the rows of P(lpfleet.ai.verify_findings#filter), of any number of hosts, as one fixed-width table
    (host, runner, model, health, smoke latency, served as planned, in Ollama, warm, result), with the collection's
    one table renderer.
positional: _input
options:
  _input:
    description: The rows.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Show the results of every host
  ansible.builtin.debug:
    msg: "{{ (rows | lpfleet.ai.verify_table).splitlines() }}"
"""

RETURN = r"""
_value:
  description: The table, lines separated by newlines.
  type: str
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.lpfleet.ai.plugins.plugin_utils.verify import table


def verify_table(rows: Any) -> str:
    """The filter: see DOCUMENTATION."""
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise AnsibleFilterError("verify_table: expected a list of rows (mappings) from verify_findings")
    return table(rows)


class FilterModule:
    """The verify role's table."""

    def filters(self) -> dict[str, Any]:
        return {"verify_table": verify_table}
