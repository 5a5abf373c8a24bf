# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
name: gpu_inventory
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.3.0"
short_description: The GPUs of many hosts as one listing
description:
  - For each host, a summary line (GPU count, total MiB, driver, CUDA) and its GPUs as P(lpfleet.ai.gpu_table#filter)
    draws them, indented; a host whose facts M(lpfleet.ai.gpu_facts) did not set shows as not read; then the totals.
positional: _input
options:
  _input:
    description: The hosts, e.g. C(ansible_play_hosts_all).
    type: list
    elements: str
    required: true
  hostvars:
    description: C(hostvars) (each host's C(ansible_facts) is read).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Show the GPUs of every host
  ansible.builtin.debug:
    msg: "{{ (ansible_play_hosts_all | lpfleet.ai.gpu_inventory(hostvars)).splitlines() }}"
  run_once: true
"""

RETURN = r"""
_value:
  description: The listing, lines separated by newlines.
  type: str
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.lpfleet.ai.plugins.plugin_utils.tables import gpu_inventory as render


def gpu_inventory(hosts: Any, hostvars: Any) -> str:
    """The filter: see DOCUMENTATION."""
    try:
        facts = {host: (hostvars[host].get("ansible_facts") if host in hostvars else None) for host in hosts or []}
        return render(hosts, facts)
    except TypeError as exc:
        raise AnsibleFilterError("gpu_inventory: %s" % exc) from exc


class FilterModule:
    """Many hosts' GPUs."""

    def filters(self) -> dict[str, Any]:
        return {"gpu_inventory": gpu_inventory}
