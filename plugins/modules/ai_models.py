#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
module: ai_models
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.1.0"
short_description: Validate and write go-livepeer's aiModels.json
description:
  - With O(entries), checks them against go-livepeer's rules and writes them to O(path) as JSON (2-space indent,
    keys in a fixed order, trailing newline). The write is atomic (a temporary file in the same directory, then a
    rename), the previous file is backed up, and a file that already holds the same entries is left alone.
  - Without O(entries), checks the file at O(path) and changes nothing
    (C(ansible HOST -m lpfleet.ai.ai_models -a path=/var/lib/livepeer/aiModels.json)).
  - "Errors are what go-livepeer refuses or what breaks at run time: JSON syntax (with line and column), a value of
    the wrong JSON type, a key given twice (keys match case-insensitively), an unknown pipeline (C(LLM) is not
    C(llm)), a price that is a string or negative or missing, a C(pixels_per_unit) that is not a positive whole
    number, a negative C(capacity), the same model warm in one entry and cold in another, more warm managed entries
    than GPU slots (with O(gpu_count)), an Ollama tag or an id without organisation as C(model_id), C(SFAST) with
    C(DEEPCACHE), a C(url) that is not http(s)."
  - "Warnings are lpfleet's advice: C(DEEPCACHE) on a Lightning or Turbo model, C(optimization_flags) without
    C(warm) or on an entry with C(url), an unknown optimization flag, an C(llm) entry without C(url), a currency the
    default price feed lacks, C(capacity) above 1 on a managed entry, C(capacity) 0, a C(token) without C(url),
    an empty C(url), a key go-livepeer ignores, and (validation only) a file holding a token that others can read."
  - Every finding is reported at once, with the entry's index, the field, the value and the fix. On any error
    nothing is written and the task fails listing every error, one per line. Warnings are shown and returned.
  - Runner tokens are never shown in the output, the diff or the logs.
options:
  path:
    description: The aiModels.json file (go-livepeer's C(-aiModels) flag). Its directory must exist.
    type: path
    required: true
  entries:
    description:
      - The entries to write, in order. Leave out to only validate the file at O(path).
      - Keys may be given in any case (go-livepeer matches them case-insensitively); lpfleet writes them lower case.
    type: list
    elements: dict
    suboptions:
      pipeline:
        description: The pipeline, exactly as go-livepeer names it (C(text-to-image), C(llm), ...).
        type: raw
      model_id:
        description: The Hugging Face id, with its organisation prefix and exact case.
        type: raw
      warm:
        description: Keep the model loaded (a boolean).
        type: raw
      url:
        description: An external container (http or https); go-livepeer then starts no container for the entry.
        type: raw
      token:
        description: Bearer token go-livepeer sends to O(entries[].url). Never logged; the file becomes C(0600).
        type: raw
      capacity:
        description: Managed entry, the number of containers; with O(entries[].url), the advertised concurrency.
        type: raw
      price_per_unit:
        description: A JSON number (wei, or in O(entries[].currency)).
        type: raw
      currency:
        description: C(wei), C(eth), C(USD) (or another currency your price feed knows).
        type: raw
      pixels_per_unit:
        description: Units per price unit, a positive whole number (tokens for C(llm)).
        type: raw
      gateway:
        description: The gateway this price applies to (go-livepeer's default is C(default)).
        type: raw
      optimization_flags:
        description: C(SFAST) or C(DEEPCACHE) for warm managed diffusion models, as a mapping of flag to C(true).
        type: raw
  gpu_count:
    description: The host's GPU count. When given, warm managed entries beyond O(gpu_count) x O(containers_per_gpu)
      slots are errors, as go-livepeer stops on them.
    type: int
  containers_per_gpu:
    description: go-livepeer's C(-aiRunnerContainersPerGPU).
    type: int
    default: 1
  backup:
    description: Keep a timestamped copy of the previous file next to it before replacing it.
    type: bool
    default: true
  owner:
    description: Owner of the file. Left out, a replaced file keeps its owner.
    type: str
  group:
    description: Group of the file. Left out, a replaced file keeps its group.
    type: str
  mode:
    description: Mode of the file. Left out, C(0600) when any entry has a token, else C(0644).
    type: raw
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff shows the file's text before and after, tokens masked.
  platform:
    platforms: posix
notes:
  - Validation follows go-livepeer's source (C(core/ai.go), C(cmd/livepeer/starter/starter.go), C(ai/worker)), which
    the Livepeer docs do not always match; the docs' string price C(0.5e-3USD), for one, stops the node.
"""

EXAMPLES = r"""
- name: Write the planned entries
  lpfleet.ai.ai_models:
    path: /var/lib/livepeer/aiModels.json
    entries: "{{ lpfleet_plan.ai_models }}"
    gpu_count: "{{ lpfleet_gpus | length }}"

- name: Write one external LLM runner with a token from vault
  lpfleet.ai.ai_models:
    path: /var/lib/livepeer/aiModels.json
    entries:
      - pipeline: llm
        model_id: meta-llama/Meta-Llama-3.1-8B-Instruct
        warm: true
        price_per_unit: 0.18
        currency: USD
        pixels_per_unit: 1000000
        url: http://llm_runner:8000
        token: "{{ vault_runner_token }}"

- name: Check a hand-written file, changing nothing
  lpfleet.ai.ai_models:
    path: /var/lib/livepeer/aiModels.json
"""

RETURN = r"""
errors:
  description: Every error found (the task fails when there is one). Token values show as C(********).
  returned: always
  type: list
  elements: dict
  contains:
    index:
      description: The entry's position in the list (null for the whole file).
      type: int
    field:
      description: The key as written (null when the problem is the whole entry or file).
      type: str
    value:
      description: The value found.
      type: raw
    message:
      description: What is wrong and what go-livepeer does about it.
      type: str
    fix:
      description: How to fix it.
      type: str
advice:
  description: The warnings found (lpfleet's advice), same shape as RV(errors); also shown as task warnings.
    Named C(advice) because Ansible reserves C(warnings) in module results.
  returned: always
  type: list
  elements: dict
backup_file:
  description: The copy of the previous file, when one was made.
  returned: when a file was replaced and O(backup) is true
  type: str
  sample: /var/lib/livepeer/aiModels.json.12345.2026-03-16@10:00:00~
entries:
  description: The entries as written (or as found when validating only), tokens masked.
  returned: success
  type: list
  elements: dict
path:
  description: The file.
  returned: always
  type: str
"""

import contextlib
import os
import stat
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lpfleet.ai.plugins.module_utils.aimodels_rules import (
    FIELD_TYPES,
    Finding,
    Report,
    canonical_entry,
    parse_document,
    render,
    render_document,
    tokens_in,
    validate_document,
    validate_entries,
)

ARGUMENT_SPEC: dict[str, Any] = {
    "path": {"type": "path", "required": True},
    "entries": {
        "type": "list",
        "elements": "dict",
        "options": {name: {"type": "raw", "no_log": name == "token"} for name in FIELD_TYPES},
    },
    "gpu_count": {"type": "int"},
    "containers_per_gpu": {"type": "int", "default": 1},
    "backup": {"type": "bool", "default": True},
    "owner": {"type": "str"},
    "group": {"type": "str"},
    "mode": {"type": "raw"},
}


def read_text(module: AnsibleModule, path: str) -> str | None:
    """The file's text, or None when there is no file."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        module.fail_json(msg="cannot read %s: %s" % (path, exc), path=path, errors=[], advice=[])
    return None  # not reached: fail_json exits


def hide_tokens(module: AnsibleModule, data: Any) -> None:
    """Keep every token out of the result, the diff and the logs (Ansible masks no_log values everywhere)."""
    module.no_log_values.update(tokens_in(data))


def report_warnings(module: AnsibleModule, findings: list[Finding]) -> None:
    for finding in findings:
        module.warn("aiModels.json %s" % finding.describe())


def fail_on_errors(module: AnsibleModule, report: Report, path: str, action: str) -> None:
    if report.errors:
        module.fail_json(
            msg="%s: %d error(s), %s:\n%s" % (path, len(report.errors), action,
                                              "\n".join(f.describe() for f in report.errors)),
            path=path,
            errors=[f.as_dict() for f in report.errors],
            advice=[f.as_dict() for f in report.warnings],
        )


def readable_by_others_warning(path: str, data: Any) -> Finding | None:
    """A file with a token in it should be readable by its owner only."""
    if not tokens_in(data):
        return None
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if not mode & 0o077:
        return None
    return Finding(None, "mode", "%04o" % mode,
                   "the file holds a runner token and group or others can read it.",
                   "chmod 600 %s (lpfleet.ai.ai_models writes it 0600 when a token is inside)." % path)


def validate_only(module: AnsibleModule, path: str) -> None:
    text = read_text(module, path)
    if text is None:
        module.fail_json(
            msg="%s does not exist. go-livepeer would then read the path as an inline model list and exit "
                "('invalid AI model config'). Fix: give the right path, or write the file with entries." % path,
            path=path, errors=[], advice=[])
    data, report = parse_document(text)
    if data is not None:
        report = validate_document(data, module.params["gpu_count"], module.params["containers_per_gpu"])
        mode_warning = readable_by_others_warning(path, data)
        if mode_warning:
            report.warnings.append(mode_warning)
    hide_tokens(module, data)
    report_warnings(module, report.warnings)
    fail_on_errors(module, report, path, "go-livepeer would not start with this file")
    module.exit_json(changed=False, path=path, entries=data, errors=[],
                     advice=[f.as_dict() for f in report.warnings], backup_file=None)


def atomic_write(module: AnsibleModule, path: str, text: str) -> None:
    """Write text to path through a temporary file in the same directory and a rename.

    mkstemp creates the file 0600, so a token is never readable by others, not even for a moment;
    the final mode is set afterwards. A replaced file keeps its owner and group.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        module.fail_json(msg="the directory %s does not exist. Fix: create it first (go-livepeer's data directory)."
                         % directory, path=path, errors=[], advice=[])
    fd, temporary = tempfile.mkstemp(prefix=".aiModels.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if os.path.exists(path):
            previous = os.stat(path)
            with contextlib.suppress(PermissionError):
                os.chown(temporary, previous.st_uid, previous.st_gid)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        module.fail_json(msg="cannot write %s: %s" % (path, exc), path=path, errors=[], advice=[])


def write_entries(module: AnsibleModule, path: str) -> None:
    entries = [{key: value for key, value in entry.items() if value is not None} for entry in module.params["entries"]]
    hide_tokens(module, entries)
    report = validate_entries(entries, module.params["gpu_count"], module.params["containers_per_gpu"])
    report_warnings(module, report.warnings)
    fail_on_errors(module, report, path, "nothing was written and the file is unchanged")

    old_text = read_text(module, path)
    old_data = parse_document(old_text)[0] if old_text is not None else None
    hide_tokens(module, old_data)
    new_text = render(entries)
    content_changed = old_text is None or (old_text != new_text and render_document(old_data) != new_text)

    result: dict[str, Any] = {
        "changed": content_changed,
        "path": path,
        "entries": [canonical_entry(entry) for entry in entries],
        "errors": [],
        "advice": [f.as_dict() for f in report.warnings],
        "backup_file": None,
    }
    if module._diff:
        result["diff"] = {
            "before_header": path,
            "after_header": path,
            "before": old_text or "",
            "after": new_text if content_changed else old_text,
        }
    if content_changed and not module.check_mode:
        if old_text is not None and module.params["backup"]:
            result["backup_file"] = module.backup_local(path)
        atomic_write(module, path, new_text)
    if os.path.exists(path):
        mode = module.params["mode"]
        if mode is None:
            mode = "0600" if tokens_in(entries) else "0644"
        file_args = module.load_file_common_arguments(
            {"path": path, "mode": mode, "owner": module.params["owner"], "group": module.params["group"]})
        result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"])
    module.exit_json(**result)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    path = module.params["path"]
    if module.params["entries"] is None:
        validate_only(module, path)
    else:
        write_entries(module, path)


if __name__ == "__main__":
    main()
