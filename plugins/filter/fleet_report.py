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
  - C(json) gives the records themselves as a JSON document C({generated, hosts}).
  - Secrets never reach the report, in any format - runner and menu-item tokens, values of keys that look like
    secrets (token, auth, key, password, secret) and URL passwords show as C(********).
positional: _input
options:
  _input:
    description: A list of host records, each a mapping with at least C(host).
    type: list
    elements: dict
    required: true
  format:
    description: C(text) for fixed-width tables (the console), C(markdown) for a Markdown document, C(json) for the
      records as JSON.
    type: str
    choices: [text, markdown, json]
    default: text
  generated:
    description: The time the report was made, recorded in the C(json) format.
    type: str
"""

EXAMPLES = r"""
- name: Print the report
  ansible.builtin.debug:
    msg: "{{ (records | lpfleet.ai.fleet_report).splitlines() }}"

- name: Write it as Markdown, readable by its owner only
  ansible.builtin.copy:
    content: "{{ records | lpfleet.ai.fleet_report(format='markdown') }}"
    dest: reports/fleet.md
    mode: "0600"
"""

RETURN = r"""
_value:
  description: The report, lines separated by newlines.
  type: str
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.lpfleet.ai.plugins.plugin_utils.fleet_report import (
    report_json,
    report_markdown,
    report_text,
)


def fleet_report(records: Any, format: str = "text", generated: str | None = None) -> str:  # noqa: A002
    """The filter: see DOCUMENTATION (`format` is the documented option name)."""
    renderers = {"text": report_text, "markdown": report_markdown,
                 "json": lambda records: report_json(records, generated)}
    if format not in renderers:
        raise AnsibleFilterError("fleet_report: format must be 'text', 'markdown' or 'json', got %r" % (format,))
    try:
        return renderers[format](records)
    except (TypeError, KeyError) as exc:
        raise AnsibleFilterError("fleet_report: %s" % exc) from exc


class FilterModule:
    """The fleet report."""

    def filters(self) -> dict[str, Any]:
        return {"fleet_report": fleet_report}
