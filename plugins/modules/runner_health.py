#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
# ruff: noqa: E402 - Ansible wants DOCUMENTATION, EXAMPLES and RETURN before the imports

from __future__ import annotations

DOCUMENTATION = r"""
module: runner_health
short_description: Check an AI runner the way go-livepeer does, then with a smoke LLM request
version_added: 0.1.0
description:
  - >-
    Checks a runner that go-livepeer reaches through an C(aiModels.json) C(url), the way go-livepeer checks it at
    start-up, C(GET /health) answering 200 with a JSON content type and C({"status": S}), S not C(ERROR)
    (C(LOADING) counts as ready only with O(allow_loading=true)), then C(GET /hardware/info) and C(GET /version).
  - >-
    Then checks what go-livepeer never checks again after start-up, a smoke C(POST /llm) with C(messages), the
    Hugging Face O(model_id) and C(max_tokens), answered within O(llm_timeout) with a well-formed response
    (C(id), C(choices[0].message.content), C(usage)), and with O(stream=true) a streamed answer
    (C(text/event-stream), C(data:) lines, ending with C(data: [DONE])).
  - Failures that may pass (no connection, a timeout, a 5xx, C(LOADING)) are retried every O(interval) seconds
    until O(deadline). A failure names the check, the URL and what came back (status code, content type, the
    first 200 bytes of the body).
  - As go-livepeer does, a failing C(/hardware/info) or C(/version) only gives a warning.
author:
  - lpfleet developers (@lpfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The checks only read, except the smoke request, which asks the runner for O(max_tokens) tokens; it runs
      in check mode too.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  url:
    description: Base URL of the runner, for example C(http://127.0.0.1:8000).
    type: str
    required: true
  token:
    description: Bearer token the runner wants (the C(token) of the C(aiModels.json) entry).
    type: str
  model_id:
    description:
      - Hugging Face id sent as C(model) in the smoke C(/llm) request, exactly as go-livepeer sends it,
        for example C(meta-llama/Meta-Llama-3.1-8B-Instruct). Required when O(smoke=true).
    type: str
  smoke:
    description: Send the smoke C(POST /llm) request.
    type: bool
    default: true
  stream:
    description: Also send a streaming smoke request (C("stream" true)).
    type: bool
    default: false
  max_tokens:
    description: C(max_tokens) of the smoke requests.
    type: int
    default: 16
  deadline:
    description: Seconds to keep retrying failures that may pass.
    type: float
    default: 120
  interval:
    description: Seconds between tries.
    type: float
    default: 2
  request_timeout:
    description: Seconds each C(/health), C(/hardware/info) and C(/version) request may take (go-livepeer uses 5).
    type: float
    default: 5
  llm_timeout:
    description: Seconds each smoke C(/llm) request may take.
    type: float
    default: 60
  allow_loading:
    description: Count C(LOADING) as ready, as go-livepeer does at start-up.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Check the LLM runner as go-livepeer will, plus a smoke request
  lpfleet.ai.runner_health:
    url: http://127.0.0.1:8000
    model_id: meta-llama/Meta-Llama-3.1-8B-Instruct
    token: "{{ lpfleet_runner_token | default(omit) }}"
    stream: true

- name: Only wait for /health, tolerating a runner that is still loading
  lpfleet.ai.runner_health:
    url: http://127.0.0.1:8001
    smoke: false
    allow_loading: true
    deadline: 300
"""

RETURN = r"""
ok:
  description: Whether every required check passed (the module fails otherwise).
  returned: always
  type: bool
  sample: true
status:
  description: The status the runner's C(/health) reported last; null when it never answered one.
  returned: always
  type: str
  sample: OK
checks:
  description:
    - One entry per check, C(health), C(hardware_info), C(version), C(llm) and C(llm_stream), each with C(ok) (null
      when skipped), C(url), C(status_code), C(content_type), C(detail), C(body_head) (the first 200 bytes of the
      body), C(attempts) and C(seconds), plus what the check read.
    - C(health) adds C(status); C(hardware_info) adds C(gpu_info); C(version) adds C(version); C(llm) adds C(id),
      C(content) and C(usage); C(llm_stream) adds C(content) and C(events).
  returned: always
  type: dict
  sample:
    health: {ok: true, url: http://127.0.0.1:8000/health, status_code: 200, content_type: application/json,
             detail: ok, body_head: '{"status":"OK"}', attempts: 1, seconds: 0.01, status: OK}
    llm_stream: {ok: null, detail: skipped (smoke or stream is false)}
"""

import itertools
import json
from typing import Any, Callable, Optional

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lpfleet.ai.plugins.module_utils.http import (
    CLOCK,
    HttpResponse,
    RequestFailed,
    Stream,
    base_url,
    call_with_retries,
    request,
    sse_data,
)

SMOKE_PROMPT = "Reply with the single word OK."
REQUIRED_CHECKS = ("health", "llm", "llm_stream")


class Runner:
    """Requests to one runner, with its bearer token."""

    def __init__(self, url: str, token: Optional[str], request_timeout: float, llm_timeout: float) -> None:
        self.url = url
        self.headers = {"Authorization": "Bearer %s" % token} if token else {}
        self.request_timeout = request_timeout
        self.llm_timeout = llm_timeout

    def get(self, path: str) -> HttpResponse:
        return request("GET", self.url + path, headers=self.headers, timeout=self.request_timeout)

    def post_llm(self, payload: dict[str, Any]) -> HttpResponse:
        return request("POST", self.url + "/llm", payload, self.headers, timeout=self.llm_timeout)

    def stream_llm(self, payload: dict[str, Any]) -> Stream:
        return Stream("POST", self.url + "/llm", payload, dict(self.headers, Accept="text/event-stream"),
                      stall_timeout=self.llm_timeout)


def require_ok_status(response: HttpResponse) -> None:
    """Fail unless 200; 5xx and 429 may pass, a 4xx will not."""
    if response.status == 200:
        return
    hints = {401: "the runner wants a bearer token: set token to the aiModels.json token",
             400: "the runner refused the request (a model_id it does not serve?)"}
    detail = hints.get(response.status, "expected HTTP 200")
    raise response.fail("%s, got %s" % (detail, response.status),
                        retryable=response.status >= 500 or response.status == 429)


def json_object(response: HttpResponse) -> dict[str, Any]:
    document = response.json()
    if not isinstance(document, dict):
        raise response.fail("expected a JSON object")
    return document


def probe_health(runner: Runner, allow_loading: bool, seen: dict[str, Any]) -> tuple[HttpResponse, dict[str, Any]]:
    """GET /health as go-livepeer reads it; `seen` keeps the last status for the result, even on failure."""
    response = runner.get("/health")
    require_ok_status(response)
    status = json_object(response).get("status")
    if not isinstance(status, str):
        raise response.fail('expected a body {"status": "OK"}')
    seen["status"] = status
    if status == "ERROR":
        raise response.fail("the runner reports ERROR", retryable=True)
    if status == "LOADING" and not allow_loading:
        raise response.fail("the runner is still LOADING (allow_loading: true accepts that)", retryable=True)
    return response, {"status": status}


def probe_json(runner: Runner, path: str, key: str) -> tuple[HttpResponse, dict[str, Any]]:
    response = runner.get(path)
    require_ok_status(response)
    return response, {key: json_object(response).get(key)}


def llm_payload(params: dict[str, Any], stream: bool) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": SMOKE_PROMPT}], "model": params["model_id"],
            "max_tokens": params["max_tokens"], "stream": stream}


def probe_llm(runner: Runner, params: dict[str, Any]) -> tuple[HttpResponse, dict[str, Any]]:
    response = runner.post_llm(llm_payload(params, stream=False))
    require_ok_status(response)
    answer = json_object(response)
    choices = answer.get("choices")
    message = choices[0].get("message") if isinstance(choices, list) and choices and isinstance(choices[0], dict) \
        else None
    if not isinstance(answer.get("id"), str):
        raise response.fail("malformed LLMResponse: no string id")
    if not isinstance(message, dict) or not isinstance(message.get("content"), str):
        raise response.fail("malformed LLMResponse: choices[0].message.content is not a string")
    if not isinstance(answer.get("usage"), dict):
        raise response.fail("malformed LLMResponse: no usage object")
    return response, {"id": answer["id"], "content": message["content"], "usage": answer["usage"]}


def stream_delta(stream: Stream, data: str) -> str:
    """The text of one streamed chunk: choices[0].delta.content (may be empty)."""
    try:
        chunk = json.loads(data)
        delta = chunk["choices"][0].get("delta") or {}
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise stream.fail("malformed stream event: %r" % data[:200]) from None
    return delta.get("content") or ""


def probe_llm_stream(runner: Runner, params: dict[str, Any]) -> tuple[HttpResponse, dict[str, Any]]:
    with runner.stream_llm(llm_payload(params, stream=True)) as stream:
        if stream.content_type.split(";")[0].strip().lower() != "text/event-stream":
            raise stream.fail("expected content type text/event-stream")
        pieces, done = [], False
        for data in sse_data(stream.lines(CLOCK.monotonic() + runner.llm_timeout)):
            if done:
                raise stream.fail("an event followed data: [DONE]")
            if data == "[DONE]":
                done = True
            else:
                pieces.append(stream_delta(stream, data))
        if not done:
            raise stream.fail("the stream ended after %d event(s) without data: [DONE]" % len(pieces))
    response = HttpResponse(stream.url, stream.status, stream.content_type, b"")
    return response, {"content": "".join(pieces), "events": len(pieces)}


def run_check(probe: Callable[[], tuple[HttpResponse, dict[str, Any]]], deadline: float,
              interval: float) -> dict[str, Any]:
    """Run a probe, retrying until the deadline; always returns the check's record."""
    started = CLOCK.monotonic()
    tries = [0]

    def attempt(number: int) -> tuple[HttpResponse, dict[str, Any]]:
        tries[0] = number
        return probe()

    try:
        response, extras = call_with_retries(attempt, itertools.repeat(interval), deadline)
    except RequestFailed as failure:
        record = dict(failure.as_dict(), ok=False)
    else:
        record = dict(ok=True, url=response.url, status_code=response.status, content_type=response.content_type,
                      detail="ok", body_head=response.body[:200].decode("utf-8", "replace"), **extras)
    return dict(record, attempts=tries[0], seconds=round(CLOCK.monotonic() - started, 3))


def skipped(reason: str) -> dict[str, Any]:
    return {"ok": None, "detail": "skipped (%s)" % reason}


def run_checks(runner: Runner, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deadline = CLOCK.monotonic() + params["deadline"]
    interval = params["interval"]
    seen: dict[str, Any] = {"status": None}
    checks = {"health": run_check(lambda: probe_health(runner, params["allow_loading"], seen), deadline, interval)}
    checks["health"]["status"] = seen["status"]
    if not checks["health"]["ok"]:
        reason = "health failed"
        checks.update(hardware_info=skipped(reason), version=skipped(reason), llm=skipped(reason),
                      llm_stream=skipped(reason))
        return checks
    checks["hardware_info"] = run_check(lambda: probe_json(runner, "/hardware/info", "gpu_info"), 0, interval)
    checks["version"] = run_check(lambda: probe_json(runner, "/version", "version"), 0, interval)
    checks["llm"] = run_check(lambda: probe_llm(runner, params), deadline, interval) if params["smoke"] \
        else skipped("smoke is false")
    checks["llm_stream"] = run_check(lambda: probe_llm_stream(runner, params), deadline, interval) \
        if params["smoke"] and params["stream"] else skipped("smoke or stream is false")
    return checks


def first_failure(checks: dict[str, dict[str, Any]]) -> Optional[str]:
    for name in REQUIRED_CHECKS:
        check = checks[name]
        if check["ok"] is False:
            return ("runner check %s failed after %d attempt(s) in %s s: %s. URL %s answered status %s, content type "
                    "%r, body %r" % (name, check["attempts"], check["seconds"], check["detail"], check["url"],
                                     check["status_code"], check["content_type"], check["body_head"]))
    return None


def bad_input(params: dict[str, Any]) -> Optional[str]:
    for option in ("interval", "request_timeout", "llm_timeout"):
        if params[option] <= 0:
            return "%s=%s must be a positive number of seconds" % (option, params[option])
    if params["deadline"] < 0:
        return "deadline=%s must be 0 or more seconds" % params["deadline"]
    if params["max_tokens"] < 1:
        return "max_tokens=%s must be 1 or more" % params["max_tokens"]
    if params["smoke"] and not params["model_id"]:
        return ("model_id is required when smoke is true: give the Hugging Face id go-livepeer sends "
                "(e.g. meta-llama/Meta-Llama-3.1-8B-Instruct), or set smoke: false")
    try:
        base_url(params["url"])
    except ValueError as err:
        return str(err)
    return None


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            token=dict(type="str", no_log=True),
            model_id=dict(type="str"),
            smoke=dict(type="bool", default=True),
            stream=dict(type="bool", default=False),
            max_tokens=dict(type="int", default=16, no_log=False),
            deadline=dict(type="float", default=120),
            interval=dict(type="float", default=2),
            request_timeout=dict(type="float", default=5),
            llm_timeout=dict(type="float", default=60),
            allow_loading=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    problem = bad_input(params)
    if problem:
        module.fail_json(msg=problem)
    runner = Runner(base_url(params["url"]), params["token"], params["request_timeout"], params["llm_timeout"])
    checks = run_checks(runner, params)
    for name in ("hardware_info", "version"):
        if checks[name]["ok"] is False:
            module.warn("runner check %s failed (go-livepeer only logs this): %s at %s"
                        % (name, checks[name]["detail"], checks[name]["url"]))
    failure = first_failure(checks)
    result = {"changed": False, "checks": checks, "status": checks["health"]["status"], "ok": failure is None}
    if failure:
        module.fail_json(msg=failure, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
