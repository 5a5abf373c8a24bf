# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_report
author: lpfleet developers
version_added: "0.1.0"
short_description: Render the fleet report (host records) as text tables or Markdown
description:
  - Takes the host records that C(playbooks/fleet_report.yml) collects (per host the GPUs, the plan, the models
    present and loaded, the health of each runner) and renders one report for the whole fleet.
  - Sections are hosts, placement (with each model's state), runners, and menu items not placed with the reason.
positional: _input
options:
  _input:
    description: A list of host records, each a mapping with at least C(host).
    type: list
    elements: dict
    required: true
  format:
    description: C(text) for fixed-width tables (the console), C(markdown) for a Markdown document.
    type: str
    choices: [text, markdown]
    default: text
"""

EXAMPLES = r"""
- name: Print the report
  ansible.builtin.debug:
    msg: "{{ (records | lpfleet.ai.fleet_report).splitlines() }}"

- name: Write it as Markdown
  ansible.builtin.copy:
    content: "{{ records | lpfleet.ai.fleet_report(format='markdown') }}"
    dest: reports/fleet.md
    mode: "0644"
"""

RETURN = r"""
_value:
  description: The report, lines separated by newlines.
  type: str
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.lpfleet.ai.plugins.plugin_utils.fleet_report import report_markdown, report_text


def fleet_report(records: Any, format: str = "text") -> str:  # noqa: A002 - the documented option name
    """The filter: see DOCUMENTATION."""
    renderers = {"text": report_text, "markdown": report_markdown}
    if format not in renderers:
        raise AnsibleFilterError("fleet_report: format must be 'text' or 'markdown', got %r" % (format,))
    try:
        return renderers[format](records)
    except (TypeError, KeyError) as exc:
        raise AnsibleFilterError("fleet_report: %s" % exc) from exc


class FilterModule:
    """The fleet report."""

    def filters(self) -> dict[str, Any]:
        return {"fleet_report": fleet_report}
