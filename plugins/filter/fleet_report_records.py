# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_report_records
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.3.0"
short_description: The fleet report's host records, gathered from hostvars
description:
  - Gives the C(fleet_report_record) of each named host, sorted by host; a host that left none appears as a record
    with the error C(the host could not be read).
positional: _input
options:
  _input:
    description: The hosts the report covers.
    type: list
    elements: str
    required: true
  hostvars:
    description: C(hostvars).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Show the report
  ansible.builtin.debug:
    msg: "{{ (fleet_report_hosts | lpfleet.ai.fleet_report_records(hostvars) | lpfleet.ai.fleet_report).splitlines() }}"
"""

RETURN = r"""
_value:
  description: The records.
  type: list
  elements: dict
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.lpfleet.ai.plugins.plugin_utils.fleet_report import collect
from ansible_collections.lpfleet.ai.plugins.plugin_utils.variables import by_host


def fleet_report_records(hosts: Any, hostvars: Any) -> list[dict[str, Any]]:
    """The filter: see DOCUMENTATION."""
    if not isinstance(hosts, list):
        raise AnsibleFilterError("fleet_report_records: expected a list of host names")
    return collect(hosts, by_host(hosts, hostvars, "fleet_report_record"))


class FilterModule:
    """The fleet report's records."""

    def filters(self) -> dict[str, Any]:
        return {"fleet_report_records": fleet_report_records}
