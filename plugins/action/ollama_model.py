# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""Action plugin for lpfleet.ai.ollama_model: shows pull progress on the console while the pull runs.

A pull of many GB takes minutes, and a module only answers when it ends. For the states that
may pull, this plugin starts the module with Ansible's own async machinery (async_wrapper on the
target, the task's async limit forced to the module's timeout), passes it a progress file in the
job's temporary directory (the internal option `_progress_file`), and polls: `async_status`
every few seconds, and the progress file (through `slurp`) every `progress_interval` seconds to
print one line. It returns the module's own result. Everything else (check mode, absent,
unloaded, a task that sets `async` itself, progress_interval 0) runs the module directly.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any, Optional

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash

display = Display()

PULLING_STATES = ("present", "loaded")
POLL_SECONDS = 2.0
# The async limit given to async_wrapper: the module's own timeout plus time to report it.
ASYNC_MARGIN_SECONDS = 120
ASYNC_KEYS = ("ansible_job_id", "started", "finished", "results_file", "stdout", "stderr", "stdout_lines",
              "stderr_lines")
UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_bytes(count: float, decimals: int = 1) -> str:
    """In binary units: human_bytes(1288490189) -> '1.2 GiB'; bytes and KiB never get decimals."""
    unit = 0
    while count >= 1024 and unit < len(UNITS) - 1:
        count /= 1024.0
        unit += 1
    return "%.*f %s" % (decimals if unit >= 2 else 0, count, UNITS[unit])


def transfer_rate(sample: dict[str, Any], previous: Optional[dict[str, Any]]) -> Optional[float]:
    """Bytes per second between two progress samples of one attempt (target clock); None when unknown."""
    if not previous or previous.get("attempt") != sample.get("attempt"):
        return None
    seconds = sample.get("updated_at", 0) - previous.get("updated_at", 0)
    moved = sample.get("completed", 0) - previous.get("completed", 0)
    return moved / seconds if seconds > 0 and moved >= 0 else None


def format_progress(host: str, sample: dict[str, Any], previous: Optional[dict[str, Any]] = None) -> str:
    """One console line, e.g. 'gpu-8g: llama3.1:8b  1.2 GiB / 4.7 GiB (25%)  38 MiB/s  attempt 1'."""
    parts = ["%s: %s" % (host, sample.get("tag", "?"))]
    total, completed = sample.get("total") or 0, sample.get("completed") or 0
    status = sample.get("status") or ""
    if total:
        parts.append("%s / %s (%d%%)" % (human_bytes(completed), human_bytes(total), completed * 100 // total))
        rate = transfer_rate(sample, previous)
        if rate is not None:
            parts.append("%s/s" % human_bytes(rate, decimals=0))
    if status and not (total and status.startswith("pulling ")):
        parts.append(status)
    parts.append("attempt %s" % sample.get("attempt", 1))
    return "  ".join(parts)


class ActionModule(ActionBase):

    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp: Optional[str] = None, task_vars: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        del tmp  # unused since Ansible 2.5
        settings = self._progress_settings()
        if settings is None:
            return merge_hash(result, self._run_directly(task_vars))
        return merge_hash(result, self._run_with_progress(task_vars, *settings))

    def _progress_settings(self) -> Optional[tuple[float, float]]:
        """(module timeout, progress interval) when this task should show progress; None to run directly."""
        args = self._task.args
        if (args.get("state", "present") not in PULLING_STATES or self._task.check_mode or self._task.async_val
                or self._connection.has_native_async):
            return None
        try:
            timeout, interval = float(args.get("timeout", 3600)), float(args.get("progress_interval", 10))
        except (TypeError, ValueError):
            return None  # the module explains bad values
        return (timeout, interval) if timeout > 0 and interval > 0 else None

    def _run_directly(self, task_vars: Optional[dict[str, Any]]) -> dict[str, Any]:
        wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
        result = self._execute_module(task_vars=task_vars, wrap_async=wrap_async)
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _run_with_progress(self, task_vars: Optional[dict[str, Any]], timeout: float,
                           interval: float) -> dict[str, Any]:
        tmpdir = self._connection._shell.tmpdir or self._make_tmp_path()
        # async_wrapper deletes this directory, progress file included, when the job ends.
        progress_file = self._connection._shell.join_path(tmpdir, "ollama_pull_progress.json")
        module_args = dict(self._task.args, _progress_file=progress_file)
        self._task.async_val = int(timeout) + ASYNC_MARGIN_SECONDS
        try:
            started = self._execute_module(module_args=module_args, task_vars=task_vars, wrap_async=True)
        finally:
            self._task.async_val = 0  # the job is ours to poll, not the task executor's
        if started.get("failed") or "ansible_job_id" not in started:
            return started
        try:
            return self._wait(started["ansible_job_id"], progress_file, task_vars, timeout, interval)
        finally:
            self._async_status(started["ansible_job_id"], task_vars, mode="cleanup")
            self._remove_tmp_path(self._connection._shell.tmpdir)

    def _wait(self, jid: str, progress_file: str, task_vars: Optional[dict[str, Any]], timeout: float,
              interval: float) -> dict[str, Any]:
        """Poll the job until it finishes, printing a progress line at most every `interval` seconds."""
        give_up_at = time.monotonic() + timeout + ASYNC_MARGIN_SECONDS + 60
        next_line_at = time.monotonic() + interval
        previous = None
        while time.monotonic() < give_up_at:
            time.sleep(min(POLL_SECONDS, interval))
            status = self._async_status(jid, task_vars)
            if status.get("finished") or status.get("failed"):
                return {key: value for key, value in status.items() if key not in ASYNC_KEYS}
            if time.monotonic() >= next_line_at:
                next_line_at = time.monotonic() + interval
                sample = self._read_progress(progress_file, task_vars)
                if sample:
                    display.display(format_progress(self._task_host(task_vars), sample, previous))
                    previous = sample
        return {"failed": True, "msg": "the ollama_model job %s did not finish in %d s" % (jid, timeout)}

    def _async_status(self, jid: str, task_vars: Optional[dict[str, Any]], mode: str = "status") -> dict[str, Any]:
        async_dir = self._remote_expand_user(self.get_shell_option("async_dir", default="~/.ansible_async"))
        return self._execute_module(module_name="ansible.legacy.async_status", task_vars=task_vars,
                                    module_args={"jid": jid, "mode": mode, "_async_dir": async_dir})

    def _read_progress(self, path: str, task_vars: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
        """The module's latest progress sample; None until it writes one."""
        answer = self._execute_module(module_name="ansible.legacy.slurp", module_args={"src": path},
                                      task_vars=task_vars)
        try:
            return json.loads(base64.b64decode(answer["content"]))
        except (KeyError, TypeError, ValueError):
            return None

    def _task_host(self, task_vars: Optional[dict[str, Any]]) -> str:
        return str((task_vars or {}).get("inventory_hostname", self._play_context.remote_addr))
