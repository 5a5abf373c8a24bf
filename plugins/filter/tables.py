# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""lpfleet's tables and reports for operators: thin wrappers over plugins/plugin_utils (tables.py, verify.py,
fleet_report.py), which draw every table with tables.format_table.

Each filter is documented in its own file beside this one (plugins/filter/<name>.yml)."""

from __future__ import annotations

from typing import Any, Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.lpfleet.ai.plugins.plugin_utils import fleet_report as report
from ansible_collections.lpfleet.ai.plugins.plugin_utils import tables, verify
from ansible_collections.lpfleet.ai.plugins.plugin_utils.filters import checked
from ansible_collections.lpfleet.ai.plugins.plugin_utils.variables import by_host

gpu_table = checked("gpu_table", tables.gpu_table, (TypeError,))
plan_table = checked("plan_table", tables.plan_table, (TypeError,))


def _gpu_inventory(hosts: Any, hostvars: Mapping[str, Any]) -> str:
    return tables.gpu_inventory(hosts, by_host(list(hosts or []), hostvars, "ansible_facts"))


gpu_inventory = checked("gpu_inventory", _gpu_inventory, (TypeError, ValueError))


def verify_table(rows: Any) -> str:
    """The rows of verify_findings as a table."""
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise AnsibleFilterError("verify_table: expected a list of rows (mappings) from verify_findings")
    return verify.table(rows)


def _fleet_report(records: Any, format: str = "text", generated: str | None = None) -> str:  # noqa: A002
    renderers = {"text": report.report_text, "markdown": report.report_markdown,
                 "json": lambda records: report.report_json(records, generated)}
    if format not in renderers:
        raise AnsibleFilterError("fleet_report: format must be 'text', 'markdown' or 'json', got %r" % (format,))
    return renderers[format](records)


fleet_report = checked("fleet_report", _fleet_report, (TypeError, KeyError))


class FilterModule:
    """Tables and reports."""

    def filters(self) -> dict[str, Any]:
        return {"gpu_table": gpu_table, "plan_table": plan_table, "gpu_inventory": gpu_inventory,
                "verify_table": verify_table, "fleet_report": fleet_report}
