# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
name: report_dir
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.3.0"
short_description: The control node's report directory, lpfleet_report_dir, as an absolute path
description:
  - Returns C(lpfleet_report_dir) with C(~) expanded and links resolved; C(reports) when it is undefined or
    empty. A relative path is taken from the directory C(ansible-playbook) runs in (the playbook project,
    never the installed collection, which an AWX job container throws away).
  - The one place C(lpfleet_report_dir) is defaulted; C(playbooks/fleet_report.yml) and C(lpfleet.ai.rollout)
    read it through this lookup.
options: {}
"""

EXAMPLES = r"""
- name: Write a report where the fleet report and the rollout write theirs
  ansible.builtin.copy:
    content: "{{ my_report | to_nice_json }}"
    dest: "{{ lookup('lpfleet.ai.report_dir') }}/my-report.json"
    mode: "0600"
  delegate_to: localhost
"""

RETURN = r"""
_raw:
  description: One absolute path.
  type: list
  elements: str
"""

from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.lpfleet.ai.plugins.plugin_utils.variables import report_dir


class LookupModule(LookupBase):
    """See DOCUMENTATION."""

    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[str]:
        if terms:
            raise AnsibleLookupError("lpfleet.ai.report_dir takes no terms, got %r" % (terms,))
        try:
            return [report_dir(variables or {}, self._templar.template)]
        except ValueError as err:
            raise AnsibleLookupError(str(err)) from err
