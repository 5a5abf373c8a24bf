# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""Action plugin lpfleet.ai.role_checks: every listed role's variables checked in one task, on the controller.

For each role: its variables (the options of its `checks` argument spec entry point, else of its
`main` one, else its defaults) are read as the play sees them, its role defaults underneath; they are validated against
that spec (types, choices: Ansible's own validator and messages), then the role's rules
(plugin_utils/role_checks.py) run. Every problem of every role is reported at once, each naming
the host, the variable and the fix. No connection to the host; the same in check mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.lpfleet.ai.plugins.plugin_utils.role_checks import (
    EXTRA_VARIABLES,
    RULES,
    SHARED_VARIABLES,
    check_role,
)

ROLES_DIR = Path(__file__).resolve().parents[2] / "roles"


class ActionModule(ActionBase):
    """Checks the variables of the roles named in `roles`."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("roles",))
    _requires_connection = False

    def run(self, tmp: Optional[str] = None, task_vars: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        host = str(task_vars.get("inventory_hostname", "this host"))
        roles = self._task.args.get("roles")
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            return dict(result, failed=True, msg="lpfleet.ai.role_checks needs roles, a list of role names (got %r)."
                        % (roles,))
        problems: list[str] = []
        warnings: list[str] = []
        for role in roles:
            found, shown = self._check(role, task_vars)
            problems += found
            warnings += shown
        result.update(changed=False, roles=roles, problems=["%s: %s" % (host, p) for p in problems])
        if warnings:
            result["warnings"] = ["%s: %s" % (host, w) for w in warnings]
        if problems:
            result.update(failed=True, msg="\n".join(result["problems"]))
        return result

    def _check(self, role: str, task_vars: dict[str, Any]) -> tuple[list[str], list[str]]:
        """ROLE's problems and warnings."""
        role_dir = ROLES_DIR / role
        if not (role_dir / "tasks" / "main.yml").is_file() or role not in RULES:
            return ["lpfleet.ai.role_checks knows no role %r. Fix: name lpfleet roles (%s)."
                    % (role, ", ".join(sorted(RULES)))], []
        specs = self._load(role_dir / "meta" / "argument_specs.yml").get("argument_specs", {})
        # A role whose main entry point is all it has (preflight) is checked against that one.
        spec = specs.get("checks") or specs.get("main")
        defaults = self._load(role_dir / "defaults" / "main.yml")
        names = list(dict.fromkeys([*((spec or {}).get("options") or defaults), *SHARED_VARIABLES,
                                    *EXTRA_VARIABLES.get(role, ())]))
        raw, problems = self._values(names, defaults, task_vars)
        values = dict(raw)
        if spec:
            options = spec.get("options") or {}
            validated = ArgumentSpecValidator(options).validate({k: v for k, v in raw.items() if k in options})
            problems += ["%s (the argument spec of %s). Fix: correct it as roles/%s/README.md describes."
                         % (self._scrub(message, raw), role, role) for message in validated.error_messages]
            # The values as the spec coerced them ("yes" -> True); none it made up for variables not set.
            values.update({k: v for k, v in validated.validated_parameters.items() if k in raw})
        findings = check_role(role, values, raw)
        return problems + findings.problems, findings.warnings

    def _load(self, path: Path) -> dict[str, Any]:
        if not path.is_file():
            return {}
        data = self._loader.load_from_file(str(path), trusted_as_template=True)
        return data if isinstance(data, dict) else {}

    def _values(self, names: list[str], defaults: dict[str, Any],
                task_vars: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """NAMES as the play sees them (the role's defaults underneath), templated; unreadable ones as problems."""
        templar = self._templar.copy_with_new_env(available_variables={**defaults, **task_vars})
        values, problems = {}, []
        for name in names:
            if name not in task_vars and name not in defaults:
                continue
            try:
                values[name] = templar.template(task_vars[name] if name in task_vars else defaults[name])
            except AnsibleError as error:
                problems.append("%s cannot be read: %s. Fix: correct its value." % (name, error.message))
        return values, problems

    @staticmethod
    def _scrub(message: str, values: dict[str, Any]) -> str:
        """MESSAGE without the runner token's value (the spec's messages may quote a value)."""
        token = values.get("lpfleet_runner_token")
        return message.replace(token, "********") if isinstance(token, str) and token else message
