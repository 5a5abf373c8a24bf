#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
# ruff: noqa: E402 - Ansible wants DOCUMENTATION, EXAMPLES and RETURN before the imports

from __future__ import annotations

DOCUMENTATION = r"""
module: ollama_model
short_description: Manage one model on an Ollama server through its HTTP API
version_added: 0.1.0
description:
  - Pulls, removes, loads (keeps warm) or unloads one model on an Ollama server, using only the
    HTTP API (C(/api/tags), C(/api/pull), C(/api/delete), C(/api/ps), C(/api/generate)), never C(docker exec).
  - Reads every line of the pull stream. An C({"error"}) line inside a 200 answer that says the model,
    the name or the registry is wrong (C(file does not exist), C(not found), C(unauthorized), ...) fails the
    task at once with Ollama's message; any other error line (a download Ollama gave up on, such as
    C(max retries exceeded) or C(part stalled)) is retried like a cut stream.
  - A cut stream, a stall (no byte for O(stall_timeout) seconds), a refused connection or a 5xx answer
    is retried with back-off; Ollama resumes the interrupted download.
  - A full disk (Ollama's C(no space left on device) or C(disk quota exceeded), as an error line or a 500 answer)
    fails at once, not retried, naming the bytes still to download (from the layer sizes Ollama announced) and
    Ollama's model directory as its error names it (RV(disk_full) is true).
  - The action plugin of the same name runs pulls asynchronously on the target and prints a progress
    line (size, percentage, speed, attempt) every O(progress_interval) seconds while the pull runs.
    In check mode, for O(state=absent) and O(state=unloaded), when the task sets C(async) itself or
    when O(progress_interval=0), the module runs directly without progress lines.
author:
  - lpfleet developers (@lpfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  check_mode:
    support: full
    details: Reports what would change without pulling, deleting or loading. With O(update=true) and the
      model present, check mode cannot know whether the registry holds a newer digest and reports no change.
  diff_mode:
    support: none
  platform:
    platforms: posix
  action:
    support: full
  async:
    support: full
  bypass_host_loop:
    support: none
options:
  name:
    description:
      - The Ollama model tag, for example C(llama3.1:8b). A name without a tag means C(:latest).
    type: str
    required: true
  state:
    description:
      - V(present) pulls the model when it is absent (and, with O(update=true), pulls again to pick up a new digest).
      - V(absent) deletes the model.
      - V(loaded) makes the model present, then loads it into memory and keeps it there for O(keep_alive).
      - V(unloaded) unloads the model from memory (C(keep_alive) 0) and leaves it on disk.
    type: str
    choices: [present, absent, loaded, unloaded]
    default: present
  url:
    description: Base URL of the Ollama server.
    type: str
    default: http://127.0.0.1:11434
  update:
    description:
      - Pull even when the model is present; the task reports a change only when the digest changed.
    type: bool
    default: false
  insecure:
    description: Allow a plain-HTTP or self-signed registry (passed to C(/api/pull)).
    type: bool
    default: false
  keep_alive:
    description:
      - How long O(state=loaded) keeps the model in memory, as Ollama reads it, seconds (V(600)) or a
        duration (V(30m), V(24h)); a negative value keeps it loaded until it is unloaded.
      - When omitted, V(-1). A model already loaded is left alone when it stays loaded for the requested
        time; with a finite O(keep_alive), it is loaded again when less than half of it remains.
      - Ignored by the other states.
    type: raw
  retries:
    description: How many times to retry a request that failed in a way that may pass (cut, stall, 5xx).
    type: int
    default: 3
  retry_delay:
    description: Seconds before the first retry; doubled before each next one.
    type: float
    default: 5
  timeout:
    description: Overall seconds the task may take, pulls and retries included.
    type: float
    default: 3600
  stall_timeout:
    description: Seconds without a byte from Ollama after which a pull counts as stalled and is retried.
    type: float
    default: 60
  progress_interval:
    description:
      - Seconds between the progress lines the action plugin prints while a pull runs; V(0) prints none.
      - The module itself ignores it.
    type: float
    default: 10
  _progress_file:
    description:
      - Internal, set by the action plugin; do not set it. Path where the module writes the pull progress as JSON.
    type: str
notes:
  - The Ollama API has no authentication; keep it bound to the host (the default URL is the loopback).
seealso:
  - name: Ollama API
    description: The API this module uses.
    link: https://github.com/ollama/ollama/blob/main/docs/api.md
"""

EXAMPLES = r"""
- name: Pull a model (progress lines appear while it downloads)
  lpfleet.ai.ollama_model:
    name: llama3.1:8b

- name: Keep a model loaded on the GPU of the second Ollama
  lpfleet.ai.ollama_model:
    name: llama3.1:8b
    state: loaded
    url: http://127.0.0.1:11435

- name: Pick up a new version of the model, retrying a flaky network harder
  lpfleet.ai.ollama_model:
    name: llama3.1:8b
    update: true
    retries: 6
    stall_timeout: 120

- name: Free the GPU memory without deleting the model
  lpfleet.ai.ollama_model:
    name: llama3.1:8b
    state: unloaded

- name: Delete a model
  lpfleet.ai.ollama_model:
    name: mistral:7b
    state: absent
"""

RETURN = r"""
digest:
  description: Digest of the model after the task, as C(/api/tags) lists it; null when it is absent.
  returned: always
  type: str
  sample: 42182419e9508c30c4b1fe55015f06b65f4ca4b9e28a744be55008d21998a093
size:
  description: Size of the model on disk in bytes; null when it is absent.
  returned: always
  type: int
  sample: 4920753328
bytes_transferred:
  description: Bytes Ollama downloaded during this task, over all attempts.
  returned: always
  type: int
  sample: 4920753328
duration:
  description: Seconds the task took.
  returned: always
  type: float
  sample: 93.4
attempts:
  description: Pull attempts made (0 when nothing was pulled).
  returned: always
  type: int
  sample: 1
pulled:
  description: Whether a pull ran.
  returned: always
  type: bool
  sample: true
msg:
  description: What the task did.
  returned: always
  type: str
  sample: pulled llama3.1:8b
disk_full:
  description: The task failed because Ollama's disk is full (retrying cannot help).
  returned: failure
  type: bool
  sample: true
"""

import json
import math
import os
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lpfleet.ai.plugins.module_utils.http import (
    CLOCK,
    RequestFailed,
    Stream,
    backoff_delays,
    base_url,
    call_with_retries,
    expect_json,
    ndjson,
    request,
)
from ansible_collections.lpfleet.ai.plugins.module_utils.ollama_names import name_problem
from ansible_collections.lpfleet.ai.plugins.module_utils.ollama_state import OllamaClient

PROGRESS_WRITE_SECONDS = 1.0
# Ollama turns a negative keep_alive into an expiry centuries away; anything this far counts as "forever".
FOREVER_SECONDS = 10 * 365 * 24 * 3600.0
DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|\u00b5s|ms|s|m|h)")


def keep_alive_seconds(value: Any) -> Optional[float]:
    """Seconds the model should stay loaded; None for forever. ValueError when Ollama could not read it."""
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        sign = -1.0 if text.startswith("-") else 1.0
        body = text.lstrip("+-")
        parts = DURATION_PART.findall(body)
        if not body or "".join(number + unit for number, unit in parts) != body:
            raise ValueError("keep_alive=%r is not seconds (600) or a duration (30m, 24h, -1)" % (value,)) from None
        seconds = sign * sum(float(number) * DURATION_UNITS[unit] for number, unit in parts)
    return None if seconds < 0 else seconds


def keep_alive_payload(value: Any) -> Any:
    """keep_alive as Ollama's API takes it: a number of seconds, or a duration string."""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number == int(number) else number


def parse_expiry(text: str) -> Optional[datetime]:
    """An `expires_at` from /api/ps (Go's RFC 3339, up to nanoseconds); None when unreadable."""
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", text or "")
    if not match:
        return None
    moment, fraction, zone = match.groups()
    parsed = datetime.strptime(moment, "%Y-%m-%dT%H:%M:%S")
    offset = timedelta(0) if zone == "Z" else timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    if zone.startswith("-"):
        offset = -offset
    microseconds = int((fraction or "0")[:6].ljust(6, "0"))
    return parsed.replace(tzinfo=timezone(offset), microsecond=microseconds)


def keep_alive_satisfied(expires_at: str, wanted_seconds: Optional[float], now: datetime) -> bool:
    """Whether a loaded model's expiry already matches the wanted keep_alive (None = forever)."""
    expiry = parse_expiry(expires_at)
    if expiry is None:
        return False
    remaining = (expiry - now).total_seconds()
    if wanted_seconds is None:
        return remaining >= FOREVER_SECONDS
    return wanted_seconds / 2 <= remaining <= wanted_seconds + 60


class PullProgress:
    """Totals over the per-layer lines of a pull, written as JSON for the action plugin to show."""

    def __init__(self, tag: str, path: Optional[str]) -> None:
        self.tag = tag
        self.path = path
        self.attempt = 0
        self.status = "starting"
        self._total: dict[str, int] = {}
        self._first: dict[str, int] = {}
        self._completed: dict[str, int] = {}
        self._written_at = 0.0

    def layer_bytes(self) -> tuple[int, int]:
        """The bytes of the layers Ollama announced so far, and how many of them it has."""
        return sum(self._total.values()), sum(self._completed.values())

    @property
    def bytes_transferred(self) -> int:
        return sum(self._completed[digest] - self._first[digest] for digest in self._completed)

    def begin_attempt(self, number: int) -> None:
        self.attempt = number
        self.status = "connecting"
        self.write(force=True)

    def update(self, line: dict[str, Any]) -> None:
        self.status = str(line.get("status", self.status))
        digest = line.get("digest")
        if digest and "total" in line:
            completed = int(line.get("completed") or 0)
            self._total[digest] = int(line["total"])
            self._first.setdefault(digest, completed)
            self._completed[digest] = max(completed, self._completed.get(digest, 0))
        self.write(force=self.status == "success")

    def retrying(self, failure: RequestFailed, delay: float) -> None:
        self.status = "retrying in %g s: %s" % (delay, failure.message)
        self.write(force=True)

    def snapshot(self) -> dict[str, Any]:
        return {"tag": self.tag, "status": self.status, "attempt": self.attempt, "updated_at": time.time(),
                "completed": sum(self._completed.values()), "total": sum(self._total.values())}

    def write(self, force: bool = False) -> None:
        """Replace the progress file atomically, at most once a second unless forced; best effort."""
        now = time.monotonic()
        if not self.path or (not force and now - self._written_at < PROGRESS_WRITE_SECONDS):
            return
        self._written_at = now
        temporary = self.path + ".tmp"
        try:
            with open(temporary, "w") as handle:
                json.dump(self.snapshot(), handle)
            os.replace(temporary, self.path)
        except OSError:
            pass  # progress display must never fail the pull


class Ollama(OllamaClient):
    """The shared client (module_utils/ollama_state.py) and the writes this module makes: pull, delete, load.

    Transient failures are retried until the deadline.
    """

    def delete(self, name: str) -> None:
        def call() -> None:
            response = request("DELETE", self.url + "/api/delete", {"model": name}, timeout=self._timeout())
            if response.status not in (200, 404):  # 404: already gone, which is what was asked
                raise response.fail("Ollama did not delete the model", retryable=response.status >= 500)
        self._retrying(call)

    def generate(self, name: str, keep_alive: Any) -> None:
        """Load (keep_alive other than 0) or unload (0) the model: /api/generate without a prompt."""
        payload = {"model": name, "keep_alive": keep_alive, "stream": False}
        # Loading tens of GB into VRAM can take minutes: allow all the time that is left.
        self._retrying(lambda: expect_json(request(
            "POST", self.url + "/api/generate", payload, timeout=self._timeout(longest=self.deadline))))

    def pull(self, name: str, insecure: bool, stall_timeout: float, progress: PullProgress) -> int:
        """Pull until Ollama says `success`; returns the attempts it took."""
        payload = {"model": name, "insecure": insecure, "stream": True}

        def attempt(number: int) -> int:
            progress.begin_attempt(number)
            try:
                with Stream("POST", self.url + "/api/pull", payload,
                            stall_timeout=self._timeout(stall_timeout)) as stream:
                    succeeded = False
                    for line in ndjson(stream.lines(self.deadline), stream.url):
                        if "error" in line:
                            raise stream.fail("Ollama reported: %s" % line["error"],
                                              retryable=not is_permanent_pull_error(str(line["error"])))
                        progress.update(line)
                        succeeded = succeeded or line.get("status") == "success"
            except RequestFailed as failure:
                raise disk_full(failure, name, progress) or failure from None
            if not succeeded:
                raise stream.fail("the pull stream ended before Ollama said 'success'", retryable=True)
            return number

        return call_with_retries(attempt, self.delays, self.deadline, on_retry=progress.retrying)


# Errors inside the pull stream that another try cannot mend: the model or registry does not exist,
# or the name is wrong. Everything else (Ollama's "max retries exceeded: unexpected EOF", "part stalled",
# a registry's 5xx, a digest mismatch) is a failed download that the next try resumes.
PERMANENT_PULL_ERRORS = re.compile(
    r"file does not exist|manifest unknown|not found|invalid model name|unauthorized|denied|no such host",
    re.IGNORECASE)


def is_permanent_pull_error(message: str) -> bool:
    return bool(PERMANENT_PULL_ERRORS.search(message))


# Ollama's disk is full: its download returns at once on ENOSPC (server/download.go) and the pull ends
# with the Go error's text, "write <models>/blobs/sha256-<hex>-partial: no space left on device" (an
# error line, or the whole answer with HTTP 500 when nothing was sent yet). Ollama checks no free space
# before a pull. Another try cannot mend it.
DISK_FULL = re.compile(r"no space left on device|disk quota exceeded", re.IGNORECASE)
_FULL_PATH = re.compile(r"(/[^\s:\"]+)")


def models_directory(message: str) -> str:
    """Ollama's model directory as its error names it (the part before /blobs/ or /manifests/)."""
    match = _FULL_PATH.search(message)
    if not match:
        return "Ollama's model directory (OLLAMA_MODELS)"
    path = match.group(1)
    for part in ("/blobs/", "/manifests/"):
        if part in path:
            return path.split(part, 1)[0]
    return os.path.dirname(path)


def disk_full(failure: RequestFailed, name: str, progress: PullProgress) -> Optional[RequestFailed]:
    """FAILURE as a permanent error naming the space the pull needs and where, when Ollama's disk is full."""
    text = "%s %s" % (failure.message, failure.body_head)
    if not DISK_FULL.search(text):
        return None
    ollama_said = failure.message if "Ollama reported" in failure.message else "Ollama reported: %s" % (
        failure.body_head.strip() or failure.message)
    total, completed = progress.layer_bytes()
    directory = models_directory(text)
    needed = "the model's size (Ollama announced no layer before the error)"
    if total:
        needed = ("at least %d bytes (%.1f MB) more: the layers Ollama announced total %d bytes, %d of them are "
                  "downloaded" % (total - completed, (total - completed) / 1e6, total, completed))
    message = ("%s. Ollama's disk is full: pulling %s needs %s, in %s (Ollama's model store; in lpfleet's stack the "
               "Docker volume mounted there). Retrying cannot help. Fix: free that much on the file system that "
               "holds %s (or give Ollama a bigger volume), then run again; the download resumes where it stopped"
               % (ollama_said, name, needed, directory, directory))
    full = RequestFailed(message, failure.url, failure.status, failure.content_type, retryable=False)
    full.body_head = failure.body_head
    return full


def outcome(changed: bool, model: Optional[dict[str, Any]], msg: str, attempts: int = 0,
            bytes_transferred: int = 0) -> dict[str, Any]:
    return {"changed": changed, "msg": msg, "digest": (model or {}).get("digest"), "size": (model or {}).get("size"),
            "attempts": attempts, "pulled": attempts > 0, "bytes_transferred": bytes_transferred}


def ensure_present(api: Ollama, params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    name = params["name"]
    before = api.installed(name)
    if before and not params["update"]:
        return outcome(False, before, "%s is present" % name)
    if check_mode:
        if before:
            return outcome(False, before, "%s is present; check mode does not ask the registry for updates" % name)
        return outcome(True, None, "would pull %s" % name)
    progress = PullProgress(name, params["_progress_file"])
    attempts = api.pull(name, params["insecure"], params["stall_timeout"], progress)
    after = api.installed(name)
    if after is None:
        raise RequestFailed("Ollama said 'success' but /api/tags does not list %s" % name, api.url + "/api/tags")
    changed = before is None or before.get("digest") != after.get("digest")
    msg = ("pulled %s" % name) if changed else ("%s is up to date" % name)
    return outcome(changed, after, msg, attempts, progress.bytes_transferred)


def ensure_absent(api: Ollama, params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    name = params["name"]
    if api.installed(name) is None:
        return outcome(False, None, "%s is absent" % name)
    if not check_mode:
        api.delete(name)
    return outcome(True, None, "deleted %s" % name)


def ensure_loaded(api: Ollama, params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    name = params["name"]
    result = ensure_present(api, params, check_mode)
    if check_mode and result["digest"] is None:
        return dict(result, msg="would pull and load %s" % name)
    keep_alive = "-1" if params["keep_alive"] is None else params["keep_alive"]
    loaded = api.running(name)
    now = datetime.now(timezone.utc)
    if loaded and keep_alive_satisfied(loaded.get("expires_at", ""), keep_alive_seconds(keep_alive), now):
        return dict(result, msg="%s is loaded" % name)
    if not check_mode:
        api.generate(name, keep_alive_payload(keep_alive))
        if api.running(name) is None:
            raise RequestFailed("Ollama answered the load request but /api/ps does not list %s" % name,
                                api.url + "/api/ps")
    return dict(result, changed=True, msg="loaded %s (keep_alive %s)" % (name, keep_alive))


def ensure_unloaded(api: Ollama, params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    name = params["name"]
    model = api.installed(name)
    if api.running(name) is None:
        return outcome(False, model, "%s is not loaded" % name)
    if not check_mode:
        api.generate(name, 0)
    return outcome(True, model, "unloaded %s" % name)


STATES = {"present": ensure_present, "absent": ensure_absent, "loaded": ensure_loaded, "unloaded": ensure_unloaded}


# Each number option: the least and the most it may be (finite, so nan and inf are refused).
NUMBER_RANGES = {
    "retries": (0, 100, "retries"),
    "retry_delay": (0, 3600, "seconds"),
    "timeout": (1e-3, 7 * 24 * 3600, "seconds"),
    "stall_timeout": (1e-3, 24 * 3600, "seconds"),
    "progress_interval": (0, 24 * 3600, "seconds, 0 for none"),
}


def number_problem(option: str, value: float) -> Optional[str]:
    low, high, unit = NUMBER_RANGES[option]
    if not math.isfinite(value) or not low <= value <= high:
        return "%s=%s must be a finite number from %s to %s (%s)" % (option, value, low if low else 0, high, unit)
    return None


def bad_input(params: dict[str, Any]) -> Optional[str]:
    """The first invalid option, said with its fix; None when all are valid."""
    problem = name_problem(params["name"])
    if problem:
        return "name=%r %s; give one such as llama3.1:8b" % (params["name"], problem)
    for option in NUMBER_RANGES:
        problem = number_problem(option, params[option])
        if problem:
            return problem
    try:
        base_url(params["url"])
        if params["keep_alive"] is not None:
            seconds = keep_alive_seconds(params["keep_alive"])
            if seconds is not None and not math.isfinite(seconds):
                raise ValueError("keep_alive=%r is not a finite number of seconds; write 600, 30m, 24h or -1"
                                 % (params["keep_alive"],))
    except ValueError as err:
        return str(err)
    return None


def failure_message(params: dict[str, Any], failure: RequestFailed) -> str:
    fix = ("Check that Ollama runs at %s and reaches its registry (its container log says why); retries, "
           "retry_delay, stall_timeout and timeout set how patient this task is." % params["url"]
           if failure.retryable else "" if DISK_FULL.search(failure.message)
           else "Check the model name and the server's message above.")
    return "state=%s of %s failed after %d attempt(s): %s. %s" % (
        params["state"], params["name"], failure.attempts, failure, fix)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=list(STATES)),
            url=dict(type="str", default="http://127.0.0.1:11434"),
            update=dict(type="bool", default=False),
            insecure=dict(type="bool", default=False),
            keep_alive=dict(type="raw"),
            retries=dict(type="int", default=3),
            retry_delay=dict(type="float", default=5),
            timeout=dict(type="float", default=3600),
            stall_timeout=dict(type="float", default=60),
            progress_interval=dict(type="float", default=10),
            _progress_file=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    problem = bad_input(params)
    if problem:
        module.fail_json(msg=problem)
    started = CLOCK.monotonic()
    api = Ollama(base_url(params["url"]), started + params["timeout"],
                 backoff_delays(params["retry_delay"], params["retries"]))
    try:
        result = STATES[params["state"]](api, params, module.check_mode)
    except RequestFailed as failure:
        module.fail_json(msg=failure_message(params, failure), attempts=failure.attempts,
                         disk_full=bool(DISK_FULL.search(failure.message)),
                         duration=round(CLOCK.monotonic() - started, 2), **failure.as_dict())
    module.exit_json(duration=round(CLOCK.monotonic() - started, 2), **result)


if __name__ == "__main__":
    main()
