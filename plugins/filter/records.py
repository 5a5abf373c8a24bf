# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""What lpfleet's roles read from the plan and from module results: thin wrappers over plugins/plugin_utils
(planner.py, verify.py, fleet_report.py, disk.py, stack_endpoints.py, variables.py).

Each filter is documented in its own file beside this one (plugins/filter/<name>.yml)."""

from __future__ import annotations

from typing import Any, Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.lpfleet.ai.plugins.plugin_utils import verify
from ansible_collections.lpfleet.ai.plugins.plugin_utils.disk import disk_need
from ansible_collections.lpfleet.ai.plugins.plugin_utils.filters import checked
from ansible_collections.lpfleet.ai.plugins.plugin_utils.fleet_report import collect, host_record
from ansible_collections.lpfleet.ai.plugins.plugin_utils.planner import PlanError, entries_with_token
from ansible_collections.lpfleet.ai.plugins.plugin_utils.stack_endpoints import endpoints
from ansible_collections.lpfleet.ai.plugins.plugin_utils.variables import by_host

_CANNOT_READ = "cannot read the results: "


def _fleet_report_record(plan: Any, host: str, gpus: Any = None, ollamas: Any = None, runners: Any = None,
                         last_rollout: Any = None) -> dict[str, Any]:
    return host_record(host, gpus, plan, list(ollamas or []), list(runners or []), last_rollout or None)


def fleet_report_records(hosts: Any, hostvars: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each host's fleet_report_record, from hostvars."""
    if not isinstance(hosts, list):
        raise AnsibleFilterError("fleet_report_records: expected a list of host names")
    return collect(hosts, by_host(hosts, hostvars, "fleet_report_record"))


def _verify_findings(plan: Any, host: str, runners: Any, ollamas: Any = (), ai_models: Any = None,
                     ai_models_path: str = "", holds_tokens: bool = False) -> dict[str, list[Any]]:
    return verify.findings(host, plan, list(runners or []), list(ollamas or []), ai_models, ai_models_path,
                           bool(holds_tokens))


def _preflight_disk(plan: Any, manifests: Any, mounts: Any, data_root: str, margin_mb: Any = 0) -> dict[str, Any]:
    present = [result["item"] for result in manifests if (result.get("stat") or {}).get("exists")]
    return disk_need(plan, present, list(mounts or []), str(data_root), int(margin_mb))


def ollama_snapshot(results: Any) -> dict[str, Any]:
    """The models present on a host's Ollama servers and those each has loaded, from ollama_info's results."""
    if not isinstance(results, list) or not all(
            isinstance(result, Mapping) and "models" in result and "loaded" in result for result in results):
        raise AnsibleFilterError("ollama_snapshot: expected the results of lpfleet.ai.ollama_info looped over URLs "
                                 "(each with item, models and loaded)")
    return {"present": _names(results[0]["models"]) if results else [],
            "loaded": {result["item"]: _names(result["loaded"]) for result in results}}


def _names(models: Any) -> list[str]:
    return sorted({model["canonical"] for model in models})


def _plan_entries(plan: Any, token: Any = None) -> list[dict[str, Any]]:
    return entries_with_token(plan, token)


fleet_report_record = checked("fleet_report_record", _fleet_report_record, (TypeError, KeyError), _CANNOT_READ, repr)
verify_findings = checked("verify_findings", _verify_findings, (TypeError, KeyError), _CANNOT_READ, repr)
verify_targets = checked("verify_targets", verify.targets, (TypeError, KeyError))
preflight_disk = checked("preflight_disk", _preflight_disk, (TypeError, KeyError, ValueError))
plan_entries = checked("plan_entries", _plan_entries, (PlanError,))
stack_endpoints = checked("stack_endpoints", endpoints, (TypeError, KeyError, ValueError, IndexError),
                          "cannot read docker_host_info's results: ", repr)


class FilterModule:
    """The plan's and the modules' results, read."""

    def filters(self) -> dict[str, Any]:
        return {"fleet_report_record": fleet_report_record, "fleet_report_records": fleet_report_records,
                "verify_findings": verify_findings, "verify_targets": verify_targets,
                "preflight_disk": preflight_disk, "plan_entries": plan_entries, "stack_endpoints": stack_endpoints,
                "ollama_snapshot": ollama_snapshot}
