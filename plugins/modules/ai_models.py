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
    keys in a fixed order, trailing newline). The write is atomic (a temporary file in the same directory, synced,
    then Ansible's C(atomic_move)), the previous file is backed up, and a file that already holds the same entries
    is left alone.
  - "A full disk (or quota) anywhere in the write leaves the previous file as it was and no temporary file or
    backup behind; the task fails naming the directory, the bytes the write needs and the bytes free."
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
    an empty C(url), a key go-livepeer ignores, a pipeline go-livepeer finds only by its lookup (C(Llm)), a value
    go-livepeer reads as C(null), a key given twice with valid values."
  - "Also errors: a number that is not finite (JSON has no C(Infinity) or C(NaN)), a C(capacity) beyond int64, a
    control character or surrounding whitespace in a string (go-livepeer's C(url.Parse) and HTTP client refuse
    them), a live-video-to-video app go-livepeer does not know on a warm managed entry, and a file holding a token
    that group or others can read (O(mode), or the file found when validating)."
  - Every finding is reported at once, with the entry's index, the field, the value and the fix. On any error
    nothing is written and the task fails listing every error, one per line. Warnings are shown and returned.
  - Runner tokens, values of keys that look like secrets (token, auth, key, password, secret) and URL passwords are
    never shown in the output, the diff or the logs, JSON-escaped forms included.
options:
  path:
    description:
      - The aiModels.json file (go-livepeer's C(-aiModels) flag). Its directory must exist.
      - A symbolic link is written through to its target (the link stays, RV(target) says where the file is);
        the backups go beside the target.
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
    description:
      - Keep a timestamped copy of the previous file next to it before replacing it, created C(0600) and owned like
        the file.
      - A token that is no longer in the new file is masked (C(********)) in every copy kept, so a rotated token
        does not linger in backups; restore such a copy with the current token.
    type: bool
    default: true
  backups_kept:
    description: How many copies O(backup) keeps; the oldest go first.
    type: int
    default: 3
  owner:
    description: Owner of the file. Left out, a replaced file keeps its owner.
    type: str
  group:
    description: Group of the file. Left out, a replaced file keeps its group.
    type: str
  mode:
    description:
      - Mode of the file. Left out, C(0600) when any entry has a token, else C(0644).
      - A mode that lets group or others read the file is an error when an entry has a token.
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
  sample: /var/lib/livepeer/aiModels.json.2026-03-16@10:00:00.123456~
backups_removed:
  description: Older copies deleted to keep O(backups_kept).
  returned: success
  type: list
  elements: str
created:
  description: There was no file before this task wrote one (a failed start on it cannot be undone by a backup).
  returned: success
  type: bool
target:
  description: The file written or read, O(path) with symbolic links resolved.
  returned: always
  type: str
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
import errno
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lpfleet.ai.plugins.module_utils.aimodels_rules import (
    FIELD_TYPES,
    MASK,
    Finding,
    Report,
    canonical_entry,
    parse_document,
    render,
    render_document,
    secrets_in,
    tokens_in,
    validate_document,
    validate_entries,
)
from ansible_collections.lpfleet.ai.plugins.module_utils.secrets import shown_forms

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
    "backups_kept": {"type": "int", "default": 3},
    "owner": {"type": "str"},
    "group": {"type": "str"},
    "mode": {"type": "raw"},
}

# Backups: <file>.<date>@<time>.<microseconds>~ (and Ansible's backup_local <file>.<pid>.<date>@<time>~).
_BACKUP_SUFFIX = r"\.(?:\d+\.)?\d{4}-\d{2}-\d{2}@\d{2}:\d{2}:\d{2}(?:\.\d+)?~"


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


def hide_secrets(module: AnsibleModule, data: Any) -> None:
    """Keep every secret out of the result, the diff and the logs, JSON-escaped forms included
    (Ansible masks no_log values everywhere in what the module returns)."""
    module.no_log_values.update(shown_forms(secrets_in(data)))


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


def octal_mode(mode: Any) -> int | None:
    """MODE as a number when it is an octal mode (0600, "0600", "600"); None for a symbolic one."""
    if isinstance(mode, int) and not isinstance(mode, bool):
        return mode
    if isinstance(mode, str) and re.match(r"^0?[0-7]{3,4}$", mode.strip()):
        return int(mode.strip(), 8)
    return None


def token_file_mode_error(path: str, mode: Any, data: Any) -> Finding | None:
    """A file that holds a token must be readable by its owner only."""
    if not tokens_in(data):
        return None
    number = octal_mode(mode)
    if number is not None and not number & 0o077:
        return None
    shown = "%04o" % number if number is not None else str(mode)
    return Finding(None, "mode", shown,
                   "the file holds a runner token, and this mode lets group or others read it (or is not an "
                   "octal mode lpfleet can check).",
                   "use mode 0600 (chmod 600 %s); lpfleet.ai.ai_models writes it 0600 when a token is inside." % path)


def validate_only(module: AnsibleModule, path: str, target: str) -> None:
    text = read_text(module, target)
    if text is None:
        module.fail_json(
            msg="%s does not exist. go-livepeer would then read the path as an inline model list and exit "
                "('invalid AI model config'). Fix: give the right path, or write the file with entries." % path,
            path=path, target=target, errors=[], advice=[])
    data, report = parse_document(text)
    hide_secrets(module, data)
    if data is not None:
        report = validate_document(data, module.params["gpu_count"], module.params["containers_per_gpu"])
        mode_error = token_file_mode_error(path, stat.S_IMODE(os.stat(target).st_mode), data)
        if mode_error:
            report.errors.insert(0, mode_error)
    report_warnings(module, report.warnings)
    fail_on_errors(module, report, path, "go-livepeer would not start with this file")
    module.exit_json(changed=False, path=path, target=target, entries=data, errors=[],
                     advice=[f.as_dict() for f in report.warnings], backup_file=None, backups_removed=[],
                     created=False)


def write_all(fd: int, data: bytes) -> None:
    """Writes every byte of DATA to FD (os.write may write less than asked)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_temporary(directory: str, prefix: str, data: bytes) -> str:
    """A new file in DIRECTORY holding DATA, created 0600 (never readable by others, not even for a
    moment) and on disk (fsync) before it is used; removed again when it cannot be written whole."""
    fd, temporary = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=directory)
    write_synced(fd, temporary, data)
    return temporary


def write_synced(fd: int, path: str, data: bytes) -> None:
    """Writes DATA to FD, the new file PATH, syncs and closes it; removes PATH again when that fails."""
    try:
        write_all(fd, data)
        os.fsync(fd)
    except OSError:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    os.close(fd)


def disk_usage(size: int, block: int) -> int:
    """Bytes SIZE bytes take on a file system of BLOCK-byte blocks."""
    return -(-size // block) * block if block > 0 else size


def no_space_message(directory: str, target: str, sizes: dict[str, int]) -> str:
    """What a full file system stopped, how much it needed and how much is free."""
    stats = os.statvfs(directory)
    free = (stats.f_bfree if os.geteuid() == 0 else stats.f_bavail) * stats.f_frsize
    needed = sum(disk_usage(size, stats.f_frsize) for size in sizes.values())
    parts = " + ".join("%s %d bytes" % (name, size) for name, size in sizes.items())
    return ("no space left on %s: writing %s needs %d bytes on disk (%s), %d bytes are free. %s is unchanged "
            "and nothing was left behind. Fix: free at least %d bytes on the file system that holds %s, then "
            "run again." % (directory, os.path.basename(target), needed, parts, free, target,
                            max(needed - free, 1), directory))


def is_no_space(exc: BaseException | None) -> bool:
    """EXC, or an error it was raised from, is ENOSPC (or EDQUOT: a quota is full)."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def replace_file(module: AnsibleModule, target: str, new_text: str, old_text: str | None,
                 current: set[str]) -> str | None:
    """Replaces TARGET with NEW_TEXT through Ansible's atomic_move, keeping a backup of OLD_TEXT
    (when asked); returns the backup.

    The new file is written whole, synced, and the backup made, before anything is moved: a full disk
    stops here, with the old file in place. Every file this run created is registered with Ansible's
    cleanup until the move succeeded, so no failure (ours, or one inside atomic_move) leaves a temporary
    file or a partial backup behind. A file that will hold a token is never readable by others, not
    even for a moment: a looser old file is tightened first and a new one is created under umask 077.
    """
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        module.fail_json(msg="the directory %s does not exist. Fix: create it first (go-livepeer's data directory)."
                         % directory, path=target, errors=[], advice=[])
    data = new_text.encode("utf-8")
    backup_text = None
    if old_text is not None and module.params["backup"]:
        backup_text = mask_retired(old_text, retired_secrets(old_text, current))
    backup = None
    try:
        temporary = write_temporary(directory, ".aiModels.", data)
        module.add_cleanup_file(temporary)
        if backup_text is not None:
            backup = write_backup(target, backup_text)
            module.add_cleanup_file(backup)
        if current and os.path.exists(target):
            os.chmod(target, stat.S_IMODE(os.stat(target).st_mode) & 0o700)
        with umask(0o077) if current else contextlib.nullcontext():
            module.atomic_move(temporary, target, unsafe_writes=False, keep_dest_attrs=True)
    except Exception as exc:  # atomic_move raises plain Exceptions, from the OSError that stopped it
        module.do_cleanup_files()
        if is_no_space(exc):
            sizes = {"the new file": len(data)}
            if backup_text is not None:
                sizes["the backup"] = len(backup_text.encode("utf-8"))
            module.fail_json(msg=no_space_message(directory, target, sizes), path=target, errors=[], advice=[],
                             backup_file=None)
        module.fail_json(msg="cannot write %s: %s. It is unchanged and nothing was left behind." % (target, exc),
                         path=target, errors=[], advice=[], backup_file=None)
    if backup is not None:
        module.cleanup_files.remove(backup)
    return backup


def mask_retired(text: str, retired: set[str]) -> str:
    """TEXT with every retired secret, in any form a JSON file holds it, replaced by the mask."""
    for form in sorted(shown_forms(retired), key=len, reverse=True):
        text = text.replace(form, MASK)
    return text


def retired_secrets(text: str, current: set[str]) -> set[str]:
    data = parse_document(text)[0]
    return set(secrets_in(data)) - current


def write_backup(target: str, text: str) -> str:
    """A copy of the previous file beside it (TEXT: its text with retired secrets masked), created 0600
    (never readable by others, not even for a moment), synced, and owned like the file."""
    now = time.time()  # one reading: the seconds and their fraction from the same instant
    stamp = time.strftime("%Y-%m-%d@%H:%M:%S", time.localtime(now)) + ".%06d" % (now % 1 * 1e6)
    backup = "%s.%s~" % (target, stamp)
    previous = os.stat(target)
    write_synced(os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), backup, text.encode("utf-8"))
    with contextlib.suppress(PermissionError):
        os.chown(backup, previous.st_uid, previous.st_gid)
    return backup


def existing_backups(target: str) -> list[str]:
    """The backups of TARGET, oldest first."""
    directory, name = os.path.split(target)
    pattern = re.compile("^" + re.escape(name) + _BACKUP_SUFFIX + "$")
    found = [os.path.join(directory, entry) for entry in os.listdir(directory) if pattern.match(entry)]
    return sorted(found, key=lambda backup: (os.stat(backup).st_mtime, backup))


def tidy_backups(module: AnsibleModule, target: str, keep: int, current: set[str]) -> list[str]:
    """Keeps the newest KEEP backups, 0600, with no secret the file no longer holds; returns those removed."""
    backups = existing_backups(target)
    removed = backups[:-keep] if keep > 0 else backups
    for backup in removed:
        os.unlink(backup)
    for backup in backups[len(removed):]:
        os.chmod(backup, 0o600)
        text = read_text(module, backup)
        if text is None:
            continue
        retired = retired_secrets(text, current)
        hide_secrets(module, parse_document(text)[0])
        if retired:
            with open(backup, "w", encoding="utf-8") as handle:
                handle.write(mask_retired(text, retired))
    return removed


def write_entries(module: AnsibleModule, path: str, target: str) -> None:
    entries = [{key: value for key, value in entry.items() if value is not None} for entry in module.params["entries"]]
    hide_secrets(module, entries)
    report = validate_entries(entries, module.params["gpu_count"], module.params["containers_per_gpu"])
    mode = module.params["mode"]
    if mode is None:
        mode = "0600" if tokens_in(entries) else "0644"
    mode_error = token_file_mode_error(path, mode, entries)
    if mode_error:
        report.errors.insert(0, mode_error)
    report_warnings(module, report.warnings)
    fail_on_errors(module, report, path, "nothing was written and the file is unchanged")

    old_text = read_text(module, target)
    old_data = parse_document(old_text)[0] if old_text is not None else None
    hide_secrets(module, old_data)
    new_text = render(entries)
    content_changed = old_text is None or (old_text != new_text and render_document(old_data) != new_text)

    result: dict[str, Any] = {
        "changed": content_changed,
        "path": path,
        "target": target,
        "entries": [canonical_entry(entry) for entry in entries],
        "errors": [],
        "advice": [f.as_dict() for f in report.warnings],
        "backup_file": None,
        "backups_removed": [],
        "created": old_text is None,
    }
    if module._diff:
        result["diff"] = {
            "before_header": target,
            "after_header": target,
            "before": old_text or "",
            "after": new_text if content_changed else old_text,
        }
    if content_changed and not module.check_mode:
        current = set(secrets_in(entries))
        result["backup_file"] = replace_file(module, target, new_text, old_text, current)
        if module.params["backup"]:
            result["backups_removed"] = tidy_backups(module, target, module.params["backups_kept"], current)
        if target != path:
            module.warn("%s is a symbolic link: wrote its target %s (the link is kept)." % (path, target))
    if os.path.exists(target):
        file_args = module.load_file_common_arguments(
            {"path": target, "mode": mode, "owner": module.params["owner"], "group": module.params["group"]})
        result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"])
    module.exit_json(**result)


def bad_input(params: dict[str, Any]) -> str | None:
    """The first invalid option, said with its fix; None when all are valid."""
    if params["containers_per_gpu"] < 1:
        return ("containers_per_gpu=%d must be 1 or more (go-livepeer's -aiRunnerContainersPerGPU)"
                % params["containers_per_gpu"])
    if params["gpu_count"] is not None and params["gpu_count"] < 0:
        return "gpu_count=%d must be 0 or more" % params["gpu_count"]
    if params["backups_kept"] < 1:
        return "backups_kept=%d must be 1 or more; set backup: false to keep no copy" % params["backups_kept"]
    return None


def main() -> None:
    # no_log: no "Invoked with" line in the target's journal. Ansible masks a token there only as
    # given, not in the escaped form its repr of the entries shows ('back\\slash').
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True, no_log=True)
    path = module.params["path"]
    problem = bad_input(module.params)
    if problem:
        module.fail_json(msg=problem, path=path, errors=[], advice=[])
    target = os.path.realpath(path)
    if module.params["entries"] is None:
        validate_only(module, path, target)
    else:
        write_entries(module, path, target)


if __name__ == "__main__":
    main()
