# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
name: preflight_disk
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.3.0"
short_description: Preflight's disk check - the models still to download and the room for them
description:
  - From the plan, the results of C(ansible.builtin.stat) on each planned tag's manifest (looped over
    C(lpfleet_plan.ollama_tags), paths from P(lpfleet.ai.ollama_manifest_path#filter)) and the host's mounts, says
    which tags are still to download, how many MB they take plus the margin, which filesystem holds Docker's data
    root and how much it has free, and whether that is enough (C(ok)).
positional: _input
options:
  _input:
    description: The host's plan (C(lpfleet_plan)).
    type: dict
    required: true
  manifests:
    description: The stat results, each with C(item) (the tag) and C(stat.exists).
    type: list
    elements: dict
    required: true
  mounts:
    description: C(ansible_facts.mounts).
    type: list
    elements: dict
    required: true
  data_root:
    description: Docker's data root.
    type: str
    required: true
  margin_mb:
    description: MB to keep free beyond the downloads.
    type: int
    default: 0
"""

EXAMPLES = r"""
- name: Require free disk for the models still to download
  ansible.builtin.assert:
    that: need.ok
  vars:
    need: >-
      {{ lpfleet_plan | lpfleet.ai.preflight_disk(manifests=manifests.results, mounts=ansible_facts['mounts'],
           data_root='/var/lib/docker', margin_mb=2048) }}
"""

RETURN = r"""
_value:
  description: C(missing) (tags), C(download_mb), C(needed_mb), C(mount) (the mount fact or null), C(free_mb), C(ok).
  type: dict
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.lpfleet.ai.plugins.plugin_utils.disk import disk_need


def preflight_disk(plan: Any, manifests: Any, mounts: Any, data_root: str, margin_mb: Any = 0) -> dict[str, Any]:
    """The filter: see DOCUMENTATION."""
    try:
        present = [result["item"] for result in manifests if (result.get("stat") or {}).get("exists")]
        return disk_need(plan, present, list(mounts or []), str(data_root), int(margin_mb))
    except (TypeError, KeyError, ValueError) as exc:
        raise AnsibleFilterError("preflight_disk: %s" % exc) from exc


class FilterModule:
    """Preflight's disk check."""

    def filters(self) -> dict[str, Any]:
        return {"preflight_disk": preflight_disk}
