# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""Action plugin lpfleet.ai.applied_state: the module, with the calling role's code in its inputs.

A record says "these inputs, applied by this role's code, left the host so". The digest the module gets covers,
on the controller: the values of every variable the role's argument spec declares for `main` (templated, as the role
sees them), the task's own `inputs` (facts, a part of the plan), and the sha256 of the role's files that decide what
it does (tasks, handlers, templates, files, vars, defaults: a new lpfleet version applies again). The values never
leave the controller.

With `roles` (a list of role names: preflight's one check of the whole host), each role's digest and watch are built
here as the role builds them in its own check: its `main` variables and `__<role>_applied_inputs` /
`__<role>_applied_watch` (vars/main.yml), templated over the role's defaults, the play's variables, the role's vars and
its vars file for the host's release (vars/<distribution>-<major>.yml, else vars/<distribution>.yml).
A role whose values cannot be built so answers "not in sync" (the role then checks itself, as without this call):
this check can only let a host skip work that the roles' own checks would also skip.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Optional

import yaml
from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.lpfleet.ai.plugins.module_utils.applied_state import digest

ROLES_DIR = Path(__file__).resolve().parents[2] / "roles"
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
        if isinstance(args.get("roles"), list) and all(isinstance(name, str) for name in args["roles"]):
            args["roles"] = [self._role_check(name, task_vars) for name in args["roles"]]
            result.update(self._execute_module(module_name="lpfleet.ai.applied_state", module_args=args,
                                               task_vars=task_vars))
            return result
        role_path = task_vars.get("role_path")
        inputs = {"task": args.pop("inputs", None), "code": role_code_sha256(role_path) if role_path else None,
                  "variables": self._variables(declared_variables(role_path) if role_path else [], task_vars)}
        # Hashed here: the inputs (a token among them) never travel to the host or into its results.
        args["inputs_sha256"] = digest(inputs)
        result.update(self._execute_module(module_name="lpfleet.ai.applied_state", module_args=args,
                                           task_vars=task_vars))
        return result

    def _role_check(self, name: str, task_vars: dict[str, Any]) -> dict[str, Any]:
        """{name, inputs_sha256, watch} of role NAME as its own check builds them; a digest no record holds when the
        role's values cannot be built here."""
        role_path = ROLES_DIR / name
        scope = {**self._load(role_path / "defaults" / "main.yml"), **task_vars,
                 **self._load(role_path / "vars" / "main.yml"), **self._os_vars(role_path, task_vars),
                 "role_path": str(role_path), "role_name": name}
        templar = self._templar.copy_with_new_env(available_variables=scope)
        try:
            task_inputs = templar.template(scope.get(f"__{name}_applied_inputs", {}))
            watch = templar.template(scope[f"__{name}_applied_watch"])
        except (AnsibleError, KeyError) as error:
            return {"name": name, "inputs_sha256": "cannot be built here: %s" % type(error).__name__, "watch": {}}
        inputs = {"task": task_inputs, "code": role_code_sha256(str(role_path)),
                  "variables": self._variables(declared_variables(str(role_path)), scope, templar)}
        return {"name": name, "inputs_sha256": digest(inputs), "watch": watch}

    def _os_vars(self, role_path: Path, task_vars: dict[str, Any]) -> dict[str, Any]:
        """The role's vars file for this release, found as the roles load theirs (include_vars of the first found of
        vars/<distribution>-<major version>.yml and vars/<distribution>.yml)."""
        facts = task_vars.get("ansible_facts") or {}
        distribution, major = facts.get("distribution"), facts.get("distribution_major_version")
        for candidate in (f"{distribution}-{major}.yml", f"{distribution}.yml"):
            if distribution and (role_path / "vars" / candidate).is_file():
                return self._load(role_path / "vars" / candidate)
        return {}

    def _load(self, path: Path) -> dict[str, Any]:
        if not path.is_file():
            return {}
        data = self._loader.load_from_file(str(path), trusted_as_template=True)
        return data if isinstance(data, dict) else {}

    def _variables(self, names: list[str], task_vars: dict[str, Any], templar: Any = None) -> dict[str, Any]:
        templar = templar or self._templar
        values = {}
        for name in names:
            if name not in task_vars:
                continue
            try:
                values[name] = templar.template(task_vars[name])
            except AnsibleError as error:  # an undefined part: hashed as such, the role's own checks say more
                values[name] = f"<cannot template: {type(error).__name__}>"
        return values
