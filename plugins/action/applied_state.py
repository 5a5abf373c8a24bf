# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""Action plugin lpfleet.ai.applied_state: the module, with the calling role's code in its inputs.

A record says "these inputs, applied by this role's code, left the host so". A new lpfleet version changes the
code without changing the inputs, so the sha256 of the role's files that decide what it does (tasks, handlers,
templates, files, vars, defaults) is added to `inputs` here, on the controller, before the module runs.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Optional

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


class ActionModule(ActionBase):
    """Runs lpfleet.ai.applied_state with inputs_sha256 = the digest of {role: <inputs>, code: <the role's files>}."""

    TRANSFERS_FILES = False

    def run(self, tmp: Optional[str] = None, task_vars: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        role_path = task_vars.get("role_path")
        code = role_code_sha256(role_path) if role_path else None
        # Hashed here: the inputs (a token among them) never travel to the host or into its results.
        args["inputs_sha256"] = digest({"role": args.pop("inputs", None), "code": code})
        result.update(self._execute_module(module_name="lpfleet.ai.applied_state", module_args=args,
                                           task_vars=task_vars))
        return result
