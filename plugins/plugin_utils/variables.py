# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""Reading play variables from a lookup plugin: the planner's options, the report directory."""

from __future__ import annotations

import os
import re
from dataclasses import fields
from typing import Any, Callable, Mapping

from ansible_collections.lpfleet.ai.plugins.plugin_utils.planner import PlanOptions

# Where the control node's reports go when lpfleet_report_dir is not set: relative to the directory
# ansible-playbook runs in (the playbook project), never inside the installed collection.
REPORT_DIR_VARIABLE = "lpfleet_report_dir"
REPORT_DIR_DEFAULT = "reports"

_WHOLE_NUMBER = re.compile(r"^\s*-?[0-9]+\s*$")

Render = Callable[[Any], Any]


def plan_options(variables: Mapping[str, Any], render: Render) -> dict[str, Any]:
    """Each PlanOptions field whose variable is defined, by field name (a field's default otherwise).

    An `int` option given as a whole number in a string (`-e lpfleet_runner_port=8001`) becomes the
    number; any other value goes to the planner as it is, which refuses it naming the option.
    """
    options = {}
    for option in fields(PlanOptions):
        variable = option.metadata["variable"]
        if variable and variable in variables:
            value = render(variables[variable])
            if option.type == "int" and isinstance(value, str) and _WHOLE_NUMBER.match(value):
                value = int(value)
            options[option.name] = value
    return options


def report_dir(variables: Mapping[str, Any], render: Render) -> str:
    """lpfleet_report_dir, or reports/, as an absolute path (`~` expanded, links resolved)."""
    value = render(variables[REPORT_DIR_VARIABLE]) if REPORT_DIR_VARIABLE in variables else None
    if value in (None, ""):
        value = REPORT_DIR_DEFAULT
    if not isinstance(value, str):
        raise ValueError("%s must be a directory path (a string), not %r." % (REPORT_DIR_VARIABLE, value))
    return os.path.realpath(os.path.expanduser(value))


def by_host(hosts: Any, hostvars: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Each host's variable NAME, by host, from hostvars; None for a host that has none (or no hostvars)."""
    if not isinstance(hosts, (list, tuple)) or not all(isinstance(host, str) for host in hosts):
        raise ValueError("expected a list of host names, not %r" % (hosts,))
    return {host: hostvars[host].get(name) if host in hostvars else None for host in hosts}
