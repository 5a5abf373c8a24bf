#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
module: applied_state
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.4.0"
short_description: Whether a role's last apply still holds on the host, and its record
description:
  - Lets a role skip its work on a run that would change nothing, while still finding drift behind lpfleet's back.
  - O(state=record), after the role applied (its handlers flushed), writes C(<dir>/<name>.json) (0600, atomically),
    the sha256 of O(inputs) and one observation of what O(watch) names. Never in check mode. The record is
    lpfleet's own bookkeeping, not the host's configuration, so writing it is never reported as a change
    (RV(written) says whether it was written); a run that changes nothing else stays C(changed=0).
  - O(state=check) compares. When the inputs hash the same and the host shows the same observation now, RV(in_sync)
    is true; otherwise RV(reason) says why in words (C(inputs changed), C(/etc/docker/daemon.json changed since
    lpfleet wrote it), C(container ollama is not running), C(model llama3.1:8b is missing from the Ollama at ...)).
  - O(inputs) are hashed (canonical JSON, sorted keys), never stored, returned or logged (they may hold tokens).
  - An action plugin of the same name hashes O(inputs) on the controller together with the sha256 of the calling
    role's files (tasks, templates, files, vars, handlers, defaults), so that a new lpfleet version applies again,
    and passes the module only O(inputs_sha256).
  - The logic is in the collection's C(module_utils/applied_state.py).
options:
  state:
    description: C(check) compares the host with the record; C(record) writes the record.
    type: str
    choices: [check, record]
    default: check
  name:
    description:
      - The role (the record's file name). Letters, digits and C(_) only.
      - Exactly one of O(name) and O(roles) is required.
    type: str
  roles:
    description:
      - O(state=check) of several roles in one call (preflight's check of the whole host); each item is
        C({name, inputs_sha256, watch}), as O(name), O(inputs_sha256) and O(watch) of one role.
      - The action plugin builds the items from role names alone, from each role's files (see the action's notes).
      - RV(in_sync) is true only when every role is in sync and no path of O(absent) exists.
    type: list
    elements: dict
  absent:
    description: With O(roles), paths that must not exist for the host to be in sync (a marker of unfinished work).
    type: list
    elements: path
    default: []
  inputs:
    description:
      - What the role applied from (its variables and its part of the plan); hashed only. The action plugin hashes it
        on the controller and passes O(inputs_sha256) instead, so the inputs never reach the host.
      - Exactly one of O(inputs) and O(inputs_sha256) is required.
    type: raw
  inputs_sha256:
    description: The sha256 of the canonical JSON of the inputs, as the action plugin computes it.
    type: str
  watch:
    description:
      - What to observe on the host, in one pass. Every key is optional.
      - C(files) (paths) - sha256, mode and owner; C(json_keys) (list of C({path, keys})) - the value of each
        key of a JSON object (other writers may own the file's other keys); C(units) (systemd units) - active and
        enabled; C(containers) (names) - id, running, image; C(networks), C(volumes) (Docker names) - id or
        creation; C(packages) (dpkg names) - version; C(ollama) (list of C({url, models, planned}),
        P(lpfleet.ai.ollama_warm_servers#filter) with C(planned=true)) - every model's digest, whether each of
        C(models) (the warm ones) is loaded, and, when C(planned) (every model the plan puts in that Ollama) is given,
        each loaded model it does not name (compared as Ollama compares names) - always drift, even when the
        record holds it; a loaded model of C(planned) that is not in C(models) is not.
    type: dict
    default: {}
  enabled:
    description:
      - When false, O(state=check) always answers RV(in_sync=false) (C(lpfleet_skip_unchanged) is false), and
        O(state=record) still records.
    type: bool
    default: true
  dir:
    description: Where the records are kept.
    type: path
    default: /var/lib/lpfleet/applied
  ollama_timeout:
    description: Seconds to wait for each Ollama request of O(watch).
    type: float
    default: 10
attributes:
  check_mode:
    support: full
    description: C(check) reads only; C(record) says whether it would write, and writes nothing.
  diff_mode:
    support: none
    description: The record is lpfleet's bookkeeping; there is nothing to show.
notes:
  - Runs on the host, as root (the records are root's).
seealso:
  - module: lpfleet.ai.ollama_info
"""

EXAMPLES = r"""
- name: Compare the host with what docker_engine last applied
  lpfleet.ai.applied_state:
    name: docker_engine
    inputs: {options: "{{ docker_engine_daemon_options }}", source: "{{ docker_engine_source }}"}
    watch:
      json_keys: [{path: /etc/docker/daemon.json, keys: "{{ docker_engine_daemon_options.keys() | list }}"}]
      units: [docker.service]
      packages: [docker.io]
  register: applied

- name: Install Docker (something changed)
  ansible.builtin.include_tasks: apply.yml
  when: not applied.in_sync

- name: Record what was applied (in apply.yml, after flush_handlers)
  lpfleet.ai.applied_state:
    name: docker_engine
    state: record
    inputs: {options: "{{ docker_engine_daemon_options }}", source: "{{ docker_engine_source }}"}
    watch:
      json_keys: [{path: /etc/docker/daemon.json, keys: "{{ docker_engine_daemon_options.keys() | list }}"}]
      units: [docker.service]
      packages: [docker.io]
"""

RETURN = r"""
in_sync:
  description: O(state=check) - the inputs and the host are as the role last applied them.
  returned: always
  type: bool
reason:
  description: Why not in sync, in words (the reasons joined with C(; )); empty when in sync.
  returned: always
  type: str
  sample: "container ollama is not running; /etc/docker/daemon.json changed since lpfleet wrote it (key(s) runtimes)"
roles:
  description: With O(roles) - each role's answer, by name.
  returned: when O(roles) is given
  type: dict
  sample: {docker_engine: {in_sync: true, reason: ""}, ai_models: {in_sync: false, reason: "inputs changed"}}
reasons:
  description: The same, one item per difference (with O(roles), each prefixed with the role's name).
  returned: always
  type: list
  elements: str
written:
  description: O(state=record) - the record was written (or, in check mode, would have been); never a change.
  returned: always
  type: bool
path:
  description: The record's file.
  returned: always
  type: str
  sample: /var/lib/lpfleet/applied/docker_engine.json
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lpfleet.ai.plugins.module_utils.applied_state import (
    build_record,
    compare,
    digest,
    normalise_watch,
    observe,
    read_record,
    record_path,
    write_record,
)

_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def _runner(module: AnsibleModule):
    def run(argv: list[str]) -> tuple[int, str, str]:
        program = module.get_bin_path(argv[0])
        if program is None:
            return 127, "", f"{argv[0]}: not found"
        return module.run_command([program, *argv[1:]])
    return run


def check_roles(module: AnsibleModule) -> None:
    """state=check of every item of `roles` (and the `absent` paths) in one answer; exits."""
    params = module.params
    if params["state"] != "check":
        module.fail_json(msg="roles is for state=check only; record each role with name.")
    run = _runner(module)
    answers, reasons = {}, []
    for item in params["roles"]:
        name, inputs_sha256 = item.get("name"), item.get("inputs_sha256")
        if not isinstance(name, str) or not _NAME.match(name) or not isinstance(inputs_sha256, str):
            module.fail_json(msg=f"each item of roles needs name (letters, digits and _) and inputs_sha256: {item!r}")
        if not params["enabled"]:
            found = ["lpfleet_skip_unchanged is false"]
        else:
            try:
                watch = normalise_watch(item.get("watch") or {})
            except ValueError as error:
                module.fail_json(msg=f"{name}: {error}")
            path = record_path(params["dir"], name)
            found = compare(name, read_record(path), inputs_sha256, watch,
                            lambda watch=watch: observe(watch, run, params["ollama_timeout"]))
        answers[name] = {"in_sync": not found, "reason": "; ".join(found)}
        reasons += [f"{name}: {reason}" for reason in found]
    reasons += [f"{path} exists" for path in params["absent"] if os.path.lexists(path)]
    module.exit_json(changed=False, in_sync=not reasons, reason="; ".join(reasons), reasons=reasons, roles=answers,
                     written=False, path=params["dir"])


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["check", "record"], default="check"),
            name=dict(type="str"),
            roles=dict(type="list", elements="dict"),
            absent=dict(type="list", elements="path", default=[]),
            inputs=dict(type="raw", no_log=True),
            inputs_sha256=dict(type="str"),
            watch=dict(type="dict", default={}),
            enabled=dict(type="bool", default=True),
            dir=dict(type="path", default="/var/lib/lpfleet/applied"),
            ollama_timeout=dict(type="float", default=10),
        ),
        supports_check_mode=True,
        required_one_of=[("name", "roles")],
        mutually_exclusive=[("inputs", "inputs_sha256"), ("name", "roles")],
    )
    params = module.params
    if params["roles"] is not None:
        check_roles(module)
    if params["inputs"] is None and params["inputs_sha256"] is None:
        module.fail_json(msg="one of inputs and inputs_sha256 is required with name.")
    path = record_path(params["dir"], params["name"])
    if not _NAME.match(params["name"]):
        module.fail_json(msg=f"name {params['name']!r}: letters, digits and _ only (it names {path}).", path=path)
    try:
        watch = normalise_watch(params["watch"])
    except ValueError as error:
        module.fail_json(msg=str(error), path=path)
    run = _runner(module)
    inputs_sha256 = params["inputs_sha256"] or digest(params["inputs"])

    def observe_now():
        return observe(watch, run, params["ollama_timeout"])

    if params["state"] == "check":
        if not params["enabled"]:
            reasons = ["lpfleet_skip_unchanged is false"]
        else:
            reasons = compare(params["name"], read_record(path), inputs_sha256, watch, observe_now)
        module.exit_json(changed=False, in_sync=not reasons, reason="; ".join(reasons), reasons=reasons,
                         written=False, path=path)

    record = build_record(params["name"], inputs_sha256, watch, observe_now())
    if module.check_mode:
        written = read_record(path) != record
    else:
        written = write_record(path, record)
    module.exit_json(changed=False, written=written, in_sync=True, reason="", reasons=[], path=path)


if __name__ == "__main__":
    main()
