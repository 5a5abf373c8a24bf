#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
# ruff: noqa: E402 - Ansible wants DOCUMENTATION, EXAMPLES and RETURN before the imports

from __future__ import annotations

DOCUMENTATION = r"""
module: livepeer_restart
short_description: Restart go-livepeer and watch that it stays up
version_added: 0.1.0
description:
  - Restarts go-livepeer, a Docker container (C(docker restart)) or a systemd service (C(systemctl restart)), then
    watches it for O(settle_seconds), looking every O(poll_interval) seconds.
  - go-livepeer reads C(aiModels.json) and probes its runners only at start-up, and when it stops on them (a file it
    refuses, C(Error AI worker warming ...)) it exits with status B(0), so a supervisor that restarts only on
    failure leaves it stopped, and one that always restarts it keeps it looping. The node counts as stopped when
    it is no longer running, or was started again by Docker's restart policy or systemd's C(Restart=) during the
    watch.
  - Returns whether it stayed up, how it ended and the last O(log_lines) lines it logged in the run watched
    (C(docker logs), or the journal of the service's invocation). A node that stopped does not fail the task
    (RV(stayed_up) says so); the caller decides what to do, for example put the previous file back.
  - Fails when the container or the service does not exist, or the restart command fails.
author:
  - lpfleet developers (@lpfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports the restart it would make and makes none.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  manager:
    description: How go-livepeer runs, V(container) (a Docker container) or V(systemd) (a systemd service).
    type: str
    choices: [container, systemd]
    required: true
  name:
    description: The container's name, or the service's unit name (C(.service) may be left out).
    type: str
    required: true
  settle_seconds:
    description:
      - How long go-livepeer must keep running after the restart. go-livepeer waits up to 2 minutes for each
        external runner's C(/health) before it gives up, so a value under 120 can miss a node that stops then.
    type: float
    default: 150
  poll_interval:
    description: Seconds between two looks at the node (at least 1).
    type: float
    default: 5
  log_lines:
    description: How many of its last log lines to return.
    type: int
    default: 20
"""

EXAMPLES = r"""
- name: Restart go-livepeer's container and require it to stay up for 150 s
  lpfleet.ai.livepeer_restart:
    manager: container
    name: livepeer
  register: node

- name: Stop when it did not
  ansible.builtin.fail:
    msg: "go-livepeer {{ node.state }}; it logged: {{ node.log | join(' / ') }}"
  when: not node.stayed_up
"""

RETURN = r"""
stayed_up:
  description: The node kept running for O(settle_seconds) after the restart (null in check mode).
  returned: always
  type: bool
state:
  description: How the watch ended, in words (C(running for 150 s), C(exited with status 0 after 3 s),
    C(restarted by Docker's restart policy after 2 s)).
  returned: always
  type: str
exit_code:
  description: The status the node exited with, when it stopped (null otherwise or when unknown).
  returned: always
  type: int
stopped_after:
  description: Seconds from the restart to the look that found the node stopped (null when it stayed up).
  returned: always
  type: float
log:
  description: The node's last O(log_lines) log lines of the run watched (stdout and stderr, oldest first).
  returned: always
  type: list
  elements: str
"""

import json
import re
from dataclasses import dataclass
from typing import Any, Optional

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lpfleet.ai.plugins.module_utils.http import Clock

CLOCK = Clock()

# docker logs --timestamps: RFC 3339 with nanoseconds, then a space.
_DOCKER_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) ")


@dataclass(frozen=True)
class NodeState:
    """One look at the node: is it running, which run is it (start time or PID), and how it ended."""

    running: bool
    run_id: str
    restarts: int
    exit_code: Optional[int]
    words: str


class Node:
    """go-livepeer under one manager: restart it, look at it, read its log."""

    kind = ""
    supervisor = ""
    # The manager sets its restart count to 0 on a restart by hand (Docker does): any count above 0 is then
    # a restart by the supervisor, even one that happened before the first look.
    count_restarts_from_zero = False

    def __init__(self, module: AnsibleModule, name: str) -> None:
        self.module = module
        self.name = name

    def command(self, *argv: str, check: bool = True) -> tuple[int, str, str]:
        rc, out, err = self.module.run_command(list(argv))
        if check and rc != 0:
            self.module.fail_json(msg="%s failed (exit %d): %s" % (" ".join(argv), rc, (err or out).strip()),
                                  stayed_up=None, state="unknown", exit_code=None, stopped_after=None, log=[])
        return rc, out, err

    def restart(self) -> None:
        raise NotImplementedError

    def look(self) -> NodeState:
        raise NotImplementedError

    def log(self, watched: NodeState, lines: int) -> list[str]:
        raise NotImplementedError


class Container(Node):
    kind = "container"
    supervisor = "Docker's restart policy"
    count_restarts_from_zero = True

    def restart(self) -> None:
        self.command("docker", "restart", self.name)

    def look(self) -> NodeState:
        rc, out, err = self.command("docker", "inspect", "--type", "container", self.name, check=False)
        if rc != 0:
            self.module.fail_json(msg="no container %s: %s" % (self.name, err.strip()), stayed_up=None,
                                  state="missing", exit_code=None, stopped_after=None, log=[])
        info = json.loads(out)[0]
        state = info.get("State", {})
        running = bool(state.get("Running")) and not state.get("Restarting")
        exit_code = None if running else state.get("ExitCode")
        words = "running" if running else ("restarting" if state.get("Restarting")
                                           else "exited with status %s" % exit_code)
        return NodeState(running, str(state.get("StartedAt", "")), int(info.get("RestartCount") or 0),
                         exit_code, words)

    def log(self, watched: NodeState, lines: int) -> list[str]:
        argv = ["docker", "logs", "--timestamps", "--tail", str(lines)]
        if watched.run_id:
            argv += ["--since", watched.run_id]
        rc, out, err = self.command(*argv, self.name, check=False)
        if rc != 0:
            return ["(docker logs failed: %s)" % err.strip()]
        # stdout and stderr come back apart: put them back in time order by Docker's timestamps.
        stamped = [line for line in (out + err).splitlines() if line.strip()]
        stamped.sort(key=lambda line: _DOCKER_STAMP.match(line).group(1) if _DOCKER_STAMP.match(line) else "")
        return [_DOCKER_STAMP.sub("", line) for line in stamped][-lines:]


class Service(Node):
    kind = "service"
    supervisor = "systemd's Restart="

    def __init__(self, module: AnsibleModule, name: str) -> None:
        super().__init__(module, name if "." in name else name + ".service")

    def restart(self) -> None:
        self.command("systemctl", "restart", self.name)

    def properties(self) -> dict[str, str]:
        wanted = ("LoadState", "ActiveState", "SubState", "MainPID", "NRestarts", "ExecMainStatus",
                  "ExecMainStartTimestampMonotonic", "InvocationID")
        out = self.command("systemctl", "show", "--property=" + ",".join(wanted), self.name)[1]
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def look(self) -> NodeState:
        props = self.properties()
        if props.get("LoadState") != "loaded":
            self.module.fail_json(msg="no systemd service %s (LoadState=%s)" % (self.name, props.get("LoadState")),
                                  stayed_up=None, state="missing", exit_code=None, stopped_after=None, log=[])
        running = props.get("ActiveState") in ("active", "reloading") and props.get("MainPID", "0") != "0"
        exit_code = None if running else int(props.get("ExecMainStatus") or 0)
        words = "running" if running else "%s (%s), its last exit status %s" % (
            props.get("ActiveState"), props.get("SubState"), exit_code)
        run_id = "%s %s" % (props.get("InvocationID", ""), props.get("ExecMainStartTimestampMonotonic", ""))
        return NodeState(running, run_id, int(props.get("NRestarts") or 0), exit_code, words)

    def log(self, watched: NodeState, lines: int) -> list[str]:
        invocation = watched.run_id.split(" ")[0]
        match = "_SYSTEMD_INVOCATION_ID=%s" % invocation if invocation else "_SYSTEMD_UNIT=%s" % self.name
        rc, out, err = self.command("journalctl", match, "--lines", str(lines), "--output", "cat", "--no-pager",
                                    check=False)
        if rc != 0:
            return ["(journalctl failed: %s)" % err.strip()]
        return [line for line in out.splitlines() if line.strip()][-lines:]


def stopped(first: NodeState, now: NodeState, restarts_before: int) -> bool:
    """The node is down, or its supervisor started it again (since the first look, or since the restart
    when RESTARTS_BEFORE is 0)."""
    return not now.running or now.run_id != first.run_id or now.restarts > restarts_before


def watch(node: Node, settle: float, interval: float) -> tuple[NodeState, NodeState, Optional[float]]:
    """Looks at NODE until SETTLE seconds have passed or it stopped; the first look, the last, and the
    seconds after which it was found stopped (None when it stayed up)."""
    started = CLOCK.monotonic()
    first = last = node.look()
    restarts_before = 0 if node.count_restarts_from_zero else first.restarts
    while not stopped(first, last, restarts_before):
        waited = CLOCK.monotonic() - started
        if waited >= settle:
            return first, last, None
        CLOCK.sleep(min(interval, settle - waited))
        last = node.look()
    return first, last, round(CLOCK.monotonic() - started, 1)


def describe(node: Node, first: NodeState, last: NodeState, after: Optional[float], settle: float) -> str:
    if after is None:
        return "running for %g s" % settle
    if last.running or last.restarts > (0 if node.count_restarts_from_zero else first.restarts):
        return "restarted by %s after %g s (it stopped, %s)" % (node.supervisor, after, last.words)
    return "%s after %g s" % (last.words, after)


NODES = {"container": Container, "systemd": Service}


def bad_input(params: dict[str, Any]) -> Optional[str]:
    if not 0 <= params["settle_seconds"] <= 86400:
        return "settle_seconds=%s must be from 0 to 86400" % params["settle_seconds"]
    if not 1 <= params["poll_interval"] <= 3600:
        return "poll_interval=%s must be from 1 to 3600 seconds" % params["poll_interval"]
    if not 1 <= params["log_lines"] <= 1000:
        return "log_lines=%s must be from 1 to 1000" % params["log_lines"]
    return None


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            manager=dict(type="str", required=True, choices=list(NODES)),
            name=dict(type="str", required=True),
            settle_seconds=dict(type="float", default=150),
            poll_interval=dict(type="float", default=5),
            log_lines=dict(type="int", default=20),
        ),
        supports_check_mode=True,
    )
    params = module.params
    problem = bad_input(params)
    if problem:
        module.fail_json(msg=problem)
    node = NODES[params["manager"]](module, params["name"])
    if module.check_mode:
        node.look()
        module.exit_json(changed=True, stayed_up=None, state="would restart", exit_code=None, stopped_after=None,
                         log=[])
    node.restart()
    first, last, after = watch(node, params["settle_seconds"], params["poll_interval"])
    watched = first if after is not None and last.run_id != first.run_id else last
    module.exit_json(changed=True, stayed_up=after is None,
                     state=describe(node, first, last, after, params["settle_seconds"]),
                     exit_code=None if after is None else last.exit_code, stopped_after=after,
                     log=node.log(watched, params["log_lines"]) if after is not None else [])


if __name__ == "__main__":
    main()
