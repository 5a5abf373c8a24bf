#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
module: docker_daemon_json
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.2.0"
short_description: Merge keys into Docker's daemon.json, keeping the keys others own
description:
  - The one place lpfleet reads and writes Docker's C(daemon.json). Its keys have several owners (lpfleet's
    O(options), the NVIDIA runtime, an operator's registry mirrors); the module reads the file, merges O(options)
    in key by key (nested objects merged, lists and other values replaced) and writes only when the merged result
    differs from what the file holds (its formatting is not a difference).
  - A missing file counts as C({}). A file that is not a JSON object stops the task naming the file; it is never
    overwritten.
  - With O(validate) and a C(dockerd) of version 23 or later, the merged file is checked with
    C(dockerd --validate) before it replaces the old one, so that a bad option cannot stop Docker at its restart.
  - Written atomically (mode 0644), with a backup of the old file when O(backup); C(--diff) shows the change.
  - It does not restart Docker; notify a handler on C(changed).
options:
  path:
    description: Docker's configuration file.
    type: path
    default: /etc/docker/daemon.json
  options:
    description: The keys to merge in.
    type: dict
    required: true
  validate:
    description: Check the merged file with C(dockerd --validate) when C(dockerd) is 23 or later.
    type: bool
    default: true
  backup:
    description: Keep the old file beside the new one (Ansible's timestamped backup name).
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Merge lpfleet's options into daemon.json
  lpfleet.ai.docker_daemon_json:
    options:
      log-driver: json-file
      log-opts: {max-size: 100m}
  notify: Restart Docker

- name: Give Docker the NVIDIA runtime (what nvidia-ctk runtime configure --runtime=docker writes)
  lpfleet.ai.docker_daemon_json:
    options:
      runtimes:
        nvidia: {path: nvidia-container-runtime, args: []}
"""

RETURN = r"""
config:
  description: The merged configuration (what the file holds after the task, or would hold in check mode).
  returned: success
  type: dict
before:
  description: What the file held (C({}) when it was missing).
  returned: success
  type: dict
backup_file:
  description: The backup of the old file, when one was written.
  returned: changed and a file existed and O(backup)
  type: str
validated:
  description: Whether C(dockerd --validate) checked the new file.
  returned: changed
  type: bool
"""

import json
import os
import re
import tempfile
from typing import Any, Dict, Optional, Tuple

from ansible.module_utils.basic import AnsibleModule

VALIDATE_SINCE = (23, 0)


def merge(current: Dict[str, Any], options: Dict[str, Any]) -> Dict[str, Any]:
    """CURRENT with OPTIONS merged in: objects merged key by key, every other value replaced."""
    merged = dict(current)
    for key, value in options.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def render(config: Dict[str, Any]) -> str:
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def read_config(path: str) -> Tuple[Dict[str, Any], bool]:
    """(the file's object, whether it exists); raises ValueError saying what is wrong with it."""
    if not os.path.exists(path):
        return {}, False
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if not text.strip():
        return {}, True
    try:
        config = json.loads(text)
    except ValueError as error:
        raise ValueError("%s is not valid JSON (%s); lpfleet merges keys into it and will not overwrite it. "
                         "Fix: repair it (python3 -m json.tool %s shows where)." % (path, error, path)) from None
    if not isinstance(config, dict):
        raise ValueError("%s holds a JSON %s, not an object (key: value); Docker would not start with it. "
                         "Fix: make it an object, e.g. {}." % (path, type(config).__name__))
    return config, True


def dockerd_version(module: AnsibleModule) -> Optional[Tuple[int, int]]:
    """(major, minor) of the installed dockerd, or None without one."""
    dockerd = module.get_bin_path("dockerd")
    if dockerd is None:
        return None
    rc, out, _err = module.run_command([dockerd, "--version"])
    found = re.search(r"version (\d+)\.(\d+)", out)
    return (int(found.group(1)), int(found.group(2))) if rc == 0 and found else None


def validate(module: AnsibleModule, text: str) -> bool:
    """Checks TEXT with dockerd --validate when dockerd can; fails the task on a refusal. Whether it checked."""
    version = dockerd_version(module)
    if version is None or version < VALIDATE_SINCE:
        return False
    handle, candidate = tempfile.mkstemp(prefix="daemon.", suffix=".json", dir=module.tmpdir)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(text)
    rc, out, err = module.run_command([module.get_bin_path("dockerd"), "--validate", "--config-file", candidate])
    if rc != 0:
        module.fail_json(msg="dockerd --validate refuses the merged %s: %s. Nothing was written. Fix: correct the "
                         "option it names." % (module.params["path"], (err or out).strip()), config=json.loads(text))
    return True


def write(module: AnsibleModule, text: str) -> Optional[str]:
    """Replaces the file atomically with TEXT; the backup's path, if one was made."""
    path = module.params["path"]
    backup = module.backup_local(path) if module.params["backup"] and os.path.exists(path) else None
    handle, staged = tempfile.mkstemp(prefix=".daemon.", suffix=".json", dir=os.path.dirname(path))
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.chmod(staged, 0o644)
    module.atomic_move(staged, path)
    return backup


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "default": "/etc/docker/daemon.json"},
            "options": {"type": "dict", "required": True},
            "validate": {"type": "bool", "default": True},
            "backup": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    path = module.params["path"]
    try:
        before, exists = read_config(path)
    except ValueError as error:
        module.fail_json(msg=str(error))
    config = merge(before, module.params["options"])
    result: Dict[str, Any] = {"changed": config != before, "config": config, "before": before}
    if not result["changed"]:
        module.exit_json(**result)
    text = render(config)
    if module._diff:  # pylint: disable=protected-access  # how modules read --diff
        result["diff"] = {"before_header": path, "after_header": path,
                          "before": render(before) if exists else "", "after": text}
    if not module.check_mode:
        if not os.path.isdir(os.path.dirname(path)):
            module.fail_json(msg="%s does not exist: create it (or install Docker) first." % os.path.dirname(path))
        result["validated"] = validate(module, text) if module.params["validate"] else False
        backup = write(module, text)
        if backup:
            result["backup_file"] = backup
    module.exit_json(**result)


if __name__ == "__main__":
    main()
