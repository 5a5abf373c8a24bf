# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""Action plugin lpfleet.ai.warn: a real Ansible warning from a task.

`ansible.builtin.debug` prints a message among the task output; a warning is what Ansible shows as
`[WARNING]:` and counts as one (callbacks, AWX's job events, `ANSIBLE_*` warning settings). This runs
on the controller only: no connection to the host, the same in check mode.
"""

from __future__ import annotations

from typing import Any, Optional

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    """Returns MSG as the task's warning, changing nothing."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("msg",))
    _requires_connection = False

    def run(self, tmp: Optional[str] = None, task_vars: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        msg = self._task.args.get("msg")
        if not isinstance(msg, str) or not msg.strip():
            result.update(failed=True, msg="lpfleet.ai.warn needs msg, a non-empty string (got %r)." % (msg,))
            return result
        result.update(changed=False, msg=msg, warnings=[msg])
        return result
