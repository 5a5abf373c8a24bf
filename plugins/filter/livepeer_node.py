# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
name: livepeer_node
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.2.0"
short_description: Read go-livepeer's command line (its -nvidia flag) from docker inspect or systemctl show
description:
  - Takes the output of C(docker inspect <container>) (a JSON list; the container's C(Path) and C(Args)) or of
    C(systemctl show --property=LoadState --property=ExecStart <unit>), and returns whether the node was found, its
    command line and the value of its C(-nvidia) flag (C(-nvidia X), C(-nvidia=X), C(--nvidia X) or
    C(--nvidia=X); the last one wins, as in Go's flag package).
  - C(nvidia) is V(None) when the node was not found, an empty string when it runs without C(-nvidia).
positional: _input, source
options:
  _input:
    description: The standard output of the command named by O(source).
    type: str
    required: true
  source:
    description: C(docker) for C(docker inspect), C(systemd) for C(systemctl show).
    type: str
    required: true
    choices: [docker, systemd]
"""

EXAMPLES = r"""
- name: Read go-livepeer's container
  ansible.builtin.command:
    argv: [docker, inspect, livepeer]
  register: inspected
  changed_when: false
  failed_when: false

- name: Its -nvidia
  ansible.builtin.debug:
    msg: "{{ (inspected.stdout | lpfleet.ai.livepeer_node('docker')).nvidia }}"
"""

RETURN = r"""
_value:
  description: C(found) (bool), C(argv) (list of str, the command line), C(nvidia) (str, or V(None) when not found).
  type: dict
"""

import json
import shlex
from typing import Any

from ansible.errors import AnsibleFilterError

_FLAG_NAMES = ("-nvidia", "--nvidia")


def livepeer_node(output: Any, source: str) -> dict[str, Any]:
    """The filter: see DOCUMENTATION."""
    if source not in ("docker", "systemd"):
        raise AnsibleFilterError("livepeer_node: source must be docker or systemd, not %r" % (source,))
    text = output if isinstance(output, str) else ""
    argv = _docker_argv(text) if source == "docker" else _systemd_argv(text)
    if argv is None:
        return {"found": False, "argv": [], "nvidia": None}
    return {"found": True, "argv": argv, "nvidia": nvidia_flag(argv[1:])}


def nvidia_flag(args: list[str]) -> str:
    """The value of -nvidia in ARGS ('' when absent): -nvidia X, -nvidia=X, --nvidia X or --nvidia=X, the last wins."""
    value = ""
    for position, arg in enumerate(args):
        name, has_value, inline = arg.partition("=")
        if name in _FLAG_NAMES:
            if has_value:
                value = inline
            elif position + 1 < len(args):
                value = args[position + 1]
    return value


def _docker_argv(text: str) -> list[str] | None:
    try:
        containers = json.loads(text)
    except ValueError:
        return None
    if not isinstance(containers, list) or not containers or not isinstance(containers[0], dict):
        return None
    container = containers[0]
    path, args = container.get("Path"), container.get("Args") or []
    if not isinstance(path, str) or not isinstance(args, list):
        return None
    return [path] + [str(arg) for arg in args]


def _systemd_argv(text: str) -> list[str] | None:
    properties = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    if properties.get("LoadState") != "loaded":
        return None
    exec_start = properties.get("ExecStart", "")
    marker = "argv[]="
    if marker not in exec_start:
        return None
    command = exec_start.split(marker, 1)[1].split(" ;", 1)[0]
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()


class FilterModule:
    """go-livepeer's command line."""

    def filters(self) -> dict[str, Any]:
        return {"livepeer_node": livepeer_node}
