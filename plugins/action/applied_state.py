# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""Action plugin lpfleet.ai.applied_state: the module, with the calling role's code in its inputs.

A record says "these inputs, applied by this role's code, left the host so". The digest the module gets covers,
on the controller: the values of every variable the role's argument spec declares for `main` (templated, as the role
sees them), the task's own `inputs` (facts, a part of the plan), and the sha256 of the role's files that decide what
it does (tasks, handlers, templates, files, vars, defaults: a new lpfleet version applies again). The values never
leave the controller.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Optional

import yaml
from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.lpfleet.ai.plugins.module_utils.applied_state import digest

CODE_DIRS = ("defaults", "files", "handlers", "tasks", "templates", "vars")


def role_code_sha256(role_path: str) -> str:
    """sha256 over the relative paths and contents of the role's code files, in a fixed order."""
    digest = hashlib.sha256()
    for top in CODE_DIRS:
        for directory, subdirs, files in sorted(os.walk(os.path.join(role_path, top))):
            subdirs.sort()
            for name in sorted(files):
                path = os.path.join(directory, name)
                digest.update(os.path.relpath(path, role_path).encode() + b"\0")
                with open(path, "rb") as handle:
                    digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()


def declared_variables(role_path: str) -> list[str]:
    """The options of the role's entry point `main` (meta/argument_specs.yml), sorted."""
    try:
        with open(os.path.join(role_path, "meta", "argument_specs.yml"), encoding="utf-8") as handle:
            specs = yaml.safe_load(handle) or {}
    except FileNotFoundError:
        return []
    options = ((specs.get("argument_specs") or {}).get("main") or {}).get("options") or {}
    # Whether to skip is not what the role applies: a run with the skip off must not make the next run apply again.
    return sorted(name for name in options if name != "lpfleet_skip_unchanged")


class ActionModule(ActionBase):
    """Runs lpfleet.ai.applied_state with inputs_sha256 = the digest of {role: <inputs>, code: <the role's files>}."""

    TRANSFERS_FILES = False

    def run(self, tmp: Optional[str] = None, task_vars: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        role_path = task_vars.get("role_path")
        inputs = {"task": args.pop("inputs", None), "code": role_code_sha256(role_path) if role_path else None,
                  "variables": self._variables(declared_variables(role_path) if role_path else [], task_vars)}
        # Hashed here: the inputs (a token among them) never travel to the host or into its results.
        args["inputs_sha256"] = digest(inputs)
        result.update(self._execute_module(module_name="lpfleet.ai.applied_state", module_args=args,
                                           task_vars=task_vars))
        return result

    def _variables(self, names: list[str], task_vars: dict[str, Any]) -> dict[str, Any]:
        values = {}
        for name in names:
            if name not in task_vars:
                continue
            try:
                values[name] = self._templar.template(task_vars[name])
            except AnsibleError as error:  # an undefined part: hashed as such, the role's own checks say more
                values[name] = f"<cannot template: {type(error).__name__}>"
        return values
