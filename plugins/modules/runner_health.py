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
  - >-
    A failure that trying again cannot change fails at once: a 4xx, a malformed answer, an answer of go-livepeer's
    pre-2025 C(/llm) protocol (a form with C(prompt) and C(model_id), answered C(response) and C(tokens_used)), a
    stream event without C(choices) (go-livepeer fails the request on it), and an error saying the model is not
    found (naming the tag the runner asked Ollama for when the error says it).
  - >-
    The answer's C(model) must be the requested O(model_id). With O(ollama_url) and O(ollama_tag), proves from
    outside the runner that the model is served as planned, whatever the runner image does: after the smoke
    requests the Ollama behind the runner has O(ollama_tag) loaded (C(/api/ps)) and no tag loaded that
    O(planned_tags) lacks, no tag appeared in its C(/api/tags) during the smoke requests that O(planned_tags) lacks,
    and the model is loaded in none of O(other_ollamas) that does not plan it (another GPU's Ollama in C(per_gpu)).
  - >-
    With O(token), a smoke request without it must get 401; otherwise the runner ignores its token (O(token_check)).
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
  token_check:
    description:
      - With O(token), what a runner that serves a request without the token gets.
      - C(fail) fails the module, C(warn) only warns, C(skip) sends no such request.
    type: str
    choices: [fail, warn, skip]
    default: fail
  ollama_url:
    description:
      - Base URL of the Ollama the runner should use, as reachable from the target (its published port), for
        example C(http://127.0.0.1:11434). With O(ollama_tag) and O(smoke=true), the model is checked in it.
    type: str
  ollama_name:
    description: Name of that Ollama in messages (its container name); defaults to O(ollama_url).
    type: str
  ollama_tag:
    description: The Ollama tag the plan serves O(model_id) with, for example C(llama3.1:8b).
    type: str
  planned_tags:
    description: Every tag the plan puts in the Ollama at O(ollama_url) (O(ollama_tag) is always one).
    type: list
    elements: str
    default: []
  other_ollamas:
    description: The host's other Ollamas (another GPU's in C(per_gpu)); the model must not be loaded in one that
      does not plan it.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Its name in messages (container name).
        type: str
        required: true
      url:
        description: Its base URL, as reachable from the target.
        type: str
        required: true
      tags:
        description: The tags the plan puts in it.
        type: list
        elements: str
        default: []
"""

EXAMPLES = r"""
- name: Check the LLM runner as go-livepeer will, plus a smoke request
  lpfleet.ai.runner_health:
    url: http://127.0.0.1:8000
    model_id: meta-llama/Meta-Llama-3.1-8B-Instruct
    token: "{{ lpfleet_runner_token | default(omit) }}"
    stream: true

- name: Prove the model is served by the planned tag in the planned Ollama, and that the token protects the runner
  lpfleet.ai.runner_health:
    url: http://127.0.0.1:8001
    model_id: meta-llama/Meta-Llama-3.1-8B-Instruct
    token: "{{ lpfleet_runner_token }}"
    ollama_url: http://127.0.0.1:11435
    ollama_name: ollama_gpu1
    ollama_tag: llama3.1:8b
    planned_tags: [llama3.1:8b]
    other_ollamas:
      - {name: ollama_gpu0, url: "http://127.0.0.1:11434", tags: [mistral:7b]}

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
    - One entry per check, C(health), C(hardware_info), C(version), C(llm), C(llm_stream), C(token) and C(served),
      each with C(ok) (null when skipped), C(url), C(status_code), C(content_type), C(detail), C(body_head) (the first
      200 bytes of the body), C(attempts) and C(seconds), plus what the check read.
    - C(health) adds C(status); C(hardware_info) adds C(gpu_info); C(version) adds C(version); C(llm) adds C(id),
      C(model), C(content) and C(usage); C(llm_stream) adds C(content) and C(events).
    - C(served) adds C(findings) (one sentence each), C(before) and C(after) (the Ollama's C(tags) and C(loaded)
      names) and C(others) (the other Ollamas' C(loaded) names, by name).
  returned: always
  type: dict
  sample:
    health: {ok: true, url: http://127.0.0.1:8000/health, status_code: 200, content_type: application/json,
             detail: ok, body_head: '{"status":"OK"}', attempts: 1, seconds: 0.01, status: OK}
    llm_stream: {ok: null, detail: skipped (smoke or stream is false)}
"""

import itertools
import json
import math
import re
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
from ansible_collections.lpfleet.ai.plugins.module_utils.ollama_names import canonical_name, name_key, name_problem
from ansible_collections.lpfleet.ai.plugins.module_utils.ollama_state import OllamaState, listed_key, read_state

SMOKE_PROMPT = "Reply with the single word OK."
REQUIRED_CHECKS = ("health", "llm", "llm_stream", "served", "token")
OLD_PROTOCOL = ("the runner speaks go-livepeer's pre-2025 /llm protocol (a form with prompt and model_id, answered "
                "with response and tokens_used), not the JSON body with messages that go-livepeer sends since "
                "2025-01-27. Fix: run a runner image that speaks the current protocol (ollama_stack_runner_image)")
NOT_FOUND = re.compile(r"\bmodel\b.*\bnot found\b", re.IGNORECASE | re.DOTALL)
NOT_FOUND_TAG = re.compile(r"\bmodel\s+[\"']?(?P<tag>[^\"'\s,]+)[\"']?\s+not found", re.IGNORECASE)


class Runner:
    """Requests to one runner, with its bearer token."""

    def __init__(self, url: str, token: Optional[str], request_timeout: float, llm_timeout: float) -> None:
        self.url = url
        self.headers = {"Authorization": "Bearer %s" % token} if token else {}
        self.request_timeout = request_timeout
        self.llm_timeout = llm_timeout

    def get(self, path: str) -> HttpResponse:
        return request("GET", self.url + path, headers=self.headers, timeout=self.request_timeout)

    def post_llm(self, payload: dict[str, Any], with_token: bool = True) -> HttpResponse:
        headers = self.headers if with_token else {}
        return request("POST", self.url + "/llm", payload, headers, timeout=self.llm_timeout)

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


def error_text(body: str) -> str:
    """The message of an error body: {"detail": {"msg"}}, {"detail": "..."}, {"error": "..."} or the text itself."""
    try:
        document = json.loads(body)
    except ValueError:
        return body
    if isinstance(document, dict):
        detail = document.get("detail")
        if isinstance(detail, dict) and isinstance(detail.get("msg"), str):
            return detail["msg"]
        for value in (detail, document.get("error")):
            if isinstance(value, str):
                return value
    return body


def speaks_form_protocol(body: str) -> bool:
    """A 422 whose details miss the pre-2025 form fields (prompt, model_id): FastAPI's answer to a JSON body."""
    try:
        details = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        return False
    form_fields = {"prompt", "model_id"}
    return isinstance(details, list) and any(
        isinstance(item, dict) and isinstance(item.get("loc"), list) and form_fields & set(map(str, item["loc"]))
        for item in details)


def hopeless_llm_error(status: Optional[int], body: str, params: dict[str, Any]) -> Optional[str]:
    """Why an /llm error answer cannot change by trying again, or None when it may."""
    if status == 422 and speaks_form_protocol(body):
        return OLD_PROTOCOL
    if status is None or status < 500 or not NOT_FOUND.search(error_text(body)):
        return None
    found = NOT_FOUND_TAG.search(error_text(body))
    asked = "it asked for the tag %s" % found.group("tag") if found else "it did not say which tag it asked for"
    planned = (", the plan serves %s as %s" % (params["model_id"], params["ollama_tag"])) if params["ollama_tag"] \
        else ""
    return ("the runner says the model is not found (%s%s): retrying cannot fix it. Fix: make the runner map %s to "
            "the pulled tag, or pull the tag it asks for" % (asked, planned, params["model_id"]))


def refuse_hopeless(failure: RequestFailed, params: dict[str, Any]) -> RequestFailed:
    """FAILURE, or a RequestFailed that is not retryable when its answer cannot change."""
    reason = hopeless_llm_error(failure.status, failure.body_head, params)
    if reason is None:
        return failure
    return RequestFailed(reason, failure.url, failure.status, failure.content_type, failure.body_head.encode())


def require_requested_model(response: HttpResponse, model: Any, params: dict[str, Any], where: str) -> None:
    if model != params["model_id"]:
        raise response.fail("%s model is %r, not the requested %r: the runner ignores the request's model or serves "
                            "another one. Fix: a runner that serves %s when asked for it"
                            % (where, model, params["model_id"], params["model_id"]))


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
    if response.status != 200:
        reason = hopeless_llm_error(response.status, response.body.decode("utf-8", "replace"), params)
        if reason:
            raise response.fail(reason)
    require_ok_status(response)
    answer = json_object(response)
    if "choices" not in answer and ("tokens_used" in answer or "response" in answer):
        raise response.fail(OLD_PROTOCOL)
    choices = answer.get("choices")
    message = choices[0].get("message") if isinstance(choices, list) and choices and isinstance(choices[0], dict) \
        else None
    if not isinstance(answer.get("id"), str):
        raise response.fail("malformed LLMResponse: no string id")
    if not isinstance(message, dict) or not isinstance(message.get("content"), str):
        raise response.fail("malformed LLMResponse: choices[0].message.content is not a string")
    if not isinstance(answer.get("usage"), dict):
        raise response.fail("malformed LLMResponse: no usage object")
    require_requested_model(response, answer.get("model"), params, "the answer's")
    return response, {"id": answer["id"], "model": answer["model"], "content": message["content"],
                      "usage": answer["usage"]}


def stream_delta(stream: Stream, data: str, params: dict[str, Any]) -> str:
    """The text of one streamed chunk, read as go-livepeer reads it: choices[0].delta.content (may be empty)."""
    try:
        chunk = json.loads(data)
    except ValueError:
        raise stream.fail("a stream event is not JSON: %r" % data[:200]) from None
    if isinstance(chunk, dict) and "choices" not in chunk and ("chunk" in chunk or "tokens_used" in chunk):
        raise stream.fail(OLD_PROTOCOL)
    if not isinstance(chunk, dict) or not chunk.get("choices"):
        raise stream.fail("a stream event without choices (go-livepeer fails the request on it, as on the runner's "
                          "mid-stream errors): %r" % data[:200])
    try:
        delta = chunk["choices"][0].get("delta") or {}
    except (KeyError, IndexError, TypeError, AttributeError):
        raise stream.fail("malformed stream event: %r" % data[:200]) from None
    if chunk.get("model") != params["model_id"]:
        require_requested_model(HttpResponse(stream.url, stream.status, stream.content_type, data.encode()),
                                chunk.get("model"), params, "a stream event's")
    return delta.get("content") or ""


def open_llm_stream(runner: Runner, params: dict[str, Any]) -> Stream:
    try:
        return runner.stream_llm(llm_payload(params, stream=True))
    except RequestFailed as failure:
        raise refuse_hopeless(failure, params) from None


def probe_llm_stream(runner: Runner, params: dict[str, Any]) -> tuple[HttpResponse, dict[str, Any]]:
    with open_llm_stream(runner, params) as stream:
        if stream.content_type.split(";")[0].strip().lower() != "text/event-stream":
            raise stream.fail("expected content type text/event-stream")
        pieces, done = [], False
        for data in sse_data(stream.lines(CLOCK.monotonic() + runner.llm_timeout)):
            if done:
                raise stream.fail("an event followed data: [DONE]")
            if data == "[DONE]":
                done = True
            else:
                pieces.append(stream_delta(stream, data, params))
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


def probe_token(runner: Runner, params: dict[str, Any]) -> tuple[HttpResponse, dict[str, Any]]:
    """A smoke /llm without the bearer token must get 401."""
    response = runner.post_llm(dict(llm_payload(params, stream=False), max_tokens=1), with_token=False)
    if response.status != 401:
        raise response.fail("a request without the runner's token got HTTP %s, not 401: the runner ignores its "
                            "AUTH_TOKEN, so the token protects nothing. Fix: a runner image that honours AUTH_TOKEN "
                            "(README: What verify proves); until then keep its port on 127.0.0.1" % response.status)
    return response, {}


def skipped(reason: str) -> dict[str, Any]:
    return {"ok": None, "detail": "skipped (%s)" % reason}


def ollama_label(params: dict[str, Any]) -> str:
    return params["ollama_name"] or params["ollama_url"]


def served_findings(params: dict[str, Any], before: OllamaState, after: OllamaState,
                    others: dict[str, list[str]]) -> list[str]:
    """What the Ollamas show that the plan does not say, one sentence (what was seen, the likely fix) each."""
    model, tag, ollama = params["model_id"], canonical_name(params["ollama_tag"]), ollama_label(params)
    planned = sorted({canonical_name(name) for name in params["planned_tags"]} | {tag})
    planned_keys = {name_key(name) for name in planned}
    findings = []
    if name_key(tag) not in {listed_key(name) for name in after.loaded}:
        findings.append("after the smoke requests for %s, Ollama %s does not have the plan's tag %s loaded (its "
                        "/api/ps lists: %s): the runner asked another Ollama or another tag. Fix: make the runner use "
                        "Ollama %s and ask for %s" % (model, ollama, tag, ", ".join(after.loaded) or "nothing", ollama,
                                                      tag))
    stray = [name for name in after.loaded if listed_key(name) not in planned_keys]
    earlier = [name for name in stray if listed_key(name) in {listed_key(known) for known in before.loaded}]
    stray = [name for name in stray if name not in earlier]
    if earlier:
        findings.append("Ollama %s had %s loaded before the smoke requests for %s, which the plan does not put there "
                        "(it plans %s): an earlier request loaded it (this runner or another client). Fix: unload it "
                        "(ollama stop <tag>) and run verify again" % (ollama, ", ".join(earlier), model,
                                                                      ", ".join(planned)))
    if stray:
        findings.append("Ollama %s has %s loaded, which the plan does not put there (it plans %s): the runner maps %s "
                        "to another tag. Fix: make the runner ask for %s, then unload the others (ollama stop <tag>)"
                        % (ollama, ", ".join(stray), ", ".join(planned), model, tag))
    held_before = {listed_key(name) for name in before.tags}
    appeared = [name for name in after.tags if listed_key(name) not in held_before | planned_keys]
    if appeared:
        findings.append("%s appeared in Ollama %s during the smoke requests for %s; the plan pulled %s: the runner "
                        "pulls its own copy of the model (another download into the model volume). Fix: make the "
                        "runner ask for %s, then delete the copy (ollama rm <tag>)"
                        % (", ".join(appeared), ollama, model, ", ".join(planned), tag))
    for name, loaded in sorted(others.items()):
        if name_key(tag) in {listed_key(other) for other in loaded}:
            findings.append("%s (tag %s) is loaded in Ollama %s, which the plan does not give it; the plan serves it "
                            "from Ollama %s: the runner talks to another GPU's Ollama. Fix: point the runner at %s "
                            "(its OLLAMA_BASE_URL), then unload %s from %s"
                            % (model, tag, name, ollama, ollama, tag, name))
    return findings


def other_ollamas_without(params: dict[str, Any]) -> list[dict[str, Any]]:
    """The other Ollamas that do not plan the model's tag (where it must not be loaded)."""
    tag = name_key(params["ollama_tag"])
    return [other for other in params["other_ollamas"] if tag not in {name_key(name) for name in other["tags"] or []}]


def read_ollama(url: str, timeout: float) -> tuple[Optional[OllamaState], Optional[RequestFailed]]:
    try:
        return read_state(url, timeout), None
    except RequestFailed as failure:
        return None, failure


def check_served(params: dict[str, Any], before: Optional[OllamaState], timeout: float) -> dict[str, Any]:
    """The served-as-planned record: the Ollama behind the runner, and the other Ollamas, after the smoke requests."""
    started = CLOCK.monotonic()
    record: dict[str, Any] = {"url": params["ollama_url"], "status_code": None, "content_type": "", "body_head": "",
                              "attempts": 1}
    after, failure = read_ollama(params["ollama_url"], timeout)
    others: dict[str, list[str]] = {}
    for other in other_ollamas_without(params):
        state, failure = (None, failure) if failure else read_ollama(other["url"], timeout)
        others[other["name"]] = state.loaded if state else []
    if before is None or after is None or failure is not None:
        problem = failure or RequestFailed("no answer", params["ollama_url"])
        record.update(ok=False, findings=[], detail="cannot read Ollama %s: %s" % (ollama_label(params), problem))
    else:
        findings = served_findings(params, before, after, others)
        record.update(ok=not findings, findings=findings, detail="; ".join(findings) or "ok",
                      before=before.as_dict(), after=after.as_dict(), others=others)
    return dict(record, seconds=round(CLOCK.monotonic() - started, 3))


def run_smoke(runner: Runner, params: dict[str, Any], deadline: float, checks: dict[str, dict[str, Any]]) -> None:
    """The smoke /llm requests, then what they left in Ollama, then the token: each recorded in CHECKS."""
    interval = params["interval"]
    watch = bool(params["ollama_url"] and params["ollama_tag"])
    before, unreadable = read_ollama(params["ollama_url"], runner.request_timeout) if watch else (None, None)
    checks["llm"] = run_check(lambda: probe_llm(runner, params), deadline, interval)
    if not params["stream"]:
        checks["llm_stream"] = skipped("smoke or stream is false")
    elif not checks["llm"]["ok"]:
        checks["llm_stream"] = skipped("llm failed")
    else:
        checks["llm_stream"] = run_check(lambda: probe_llm_stream(runner, params), deadline, interval)
    answered = checks["llm"]["ok"] and checks["llm_stream"]["ok"] is not False
    if not watch:
        checks["served"] = skipped("no ollama_url and ollama_tag")
    elif not answered:
        checks["served"] = skipped("the smoke requests failed")
    else:
        checks["served"] = check_served(params, before if unreadable is None else None, runner.request_timeout)
    if not runner.headers or params["token_check"] == "skip":
        checks["token"] = skipped("no token, or token_check is skip")
    else:
        checks["token"] = run_check(lambda: probe_token(runner, params), 0, interval)


def run_checks(runner: Runner, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deadline = CLOCK.monotonic() + params["deadline"]
    interval = params["interval"]
    seen: dict[str, Any] = {"status": None}
    checks = {"health": run_check(lambda: probe_health(runner, params["allow_loading"], seen), deadline, interval)}
    checks["health"]["status"] = seen["status"]
    if not checks["health"]["ok"]:
        reason = "health failed"
        later = ("hardware_info", "version", "llm", "llm_stream", "served", "token")
        checks.update({name: skipped(reason) for name in later})
        return checks
    checks["hardware_info"] = run_check(lambda: probe_json(runner, "/hardware/info", "gpu_info"), 0, interval)
    checks["version"] = run_check(lambda: probe_json(runner, "/version", "version"), 0, interval)
    if params["smoke"]:
        run_smoke(runner, params, deadline, checks)
    else:
        checks.update({name: skipped("smoke is false") for name in ("llm", "llm_stream", "served", "token")})
    return checks


def required_checks(params: dict[str, Any]) -> tuple[str, ...]:
    return tuple(name for name in REQUIRED_CHECKS if name != "token" or params["token_check"] == "fail")


def describe_failure(name: str, check: dict[str, Any]) -> str:
    if name == "served":
        return "runner check served failed: %s" % check["detail"]
    return ("runner check %s failed after %d attempt(s) in %s s: %s. URL %s answered status %s, content type "
            "%r, body %r" % (name, check["attempts"], check["seconds"], check["detail"], check["url"],
                             check["status_code"], check["content_type"], check["body_head"]))


def first_failure(checks: dict[str, dict[str, Any]], required: tuple[str, ...] = REQUIRED_CHECKS) -> Optional[str]:
    for name in required:
        if checks[name]["ok"] is False:
            return describe_failure(name, checks[name])
    return None


def bad_ollama_input(params: dict[str, Any]) -> Optional[str]:
    """The served-as-planned options: URLs that are URLs, and a tag with the Ollama."""
    if bool(params["ollama_url"]) != bool(params["ollama_tag"]):
        return ("ollama_url and ollama_tag go together: give both (the Ollama behind the runner and the tag the plan "
                "serves model_id with) or neither")
    urls = [("ollama_url", params["ollama_url"])] if params["ollama_url"] else []
    urls += [("other_ollamas[%d].url" % index, other["url"]) for index, other in enumerate(params["other_ollamas"])]
    for option, url in urls:
        try:
            base_url(url, option)
        except ValueError as err:
            return str(err)
    names = [("ollama_tag", params["ollama_tag"])] if params["ollama_tag"] else []
    names += [("planned_tags[%d]" % index, name) for index, name in enumerate(params["planned_tags"])]
    names += [("other_ollamas[%d].tags[%d]" % (index, number), name)
              for index, other in enumerate(params["other_ollamas"]) for number, name in enumerate(other["tags"] or [])]
    for option, name in names:
        problem = name_problem(name)
        if problem is not None:
            return "%s=%r %s" % (option, name, problem)
    return None


# Each number option: the least and the most it may be (finite, so nan and inf are refused).
NUMBER_RANGES = {
    "deadline": (0, 24 * 3600, "seconds"),
    "interval": (1e-3, 3600, "seconds"),
    "request_timeout": (1e-3, 3600, "seconds"),
    "llm_timeout": (1e-3, 3600, "seconds"),
    "max_tokens": (1, 1_000_000, "tokens"),
}


def bad_input(params: dict[str, Any]) -> Optional[str]:
    for option, (low, high, unit) in NUMBER_RANGES.items():
        value = params[option]
        if not math.isfinite(value) or not low <= value <= high:
            return "%s=%s must be a finite number from %s to %s (%s)" % (option, value, low, high, unit)
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
            token_check=dict(type="str", choices=["fail", "warn", "skip"], default="fail"),
            ollama_url=dict(type="str"),
            ollama_name=dict(type="str"),
            ollama_tag=dict(type="str"),
            planned_tags=dict(type="list", elements="str", default=[]),
            other_ollamas=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True),
                url=dict(type="str", required=True),
                tags=dict(type="list", elements="str", default=[]),
            )),
        ),
        supports_check_mode=True,
    )
    params = module.params
    problem = bad_input(params) or bad_ollama_input(params)
    if problem:
        module.fail_json(msg=problem)
    runner = Runner(base_url(params["url"]), params["token"], params["request_timeout"], params["llm_timeout"])
    if params["ollama_url"]:
        params["ollama_url"] = base_url(params["ollama_url"], "ollama_url")
        for other in params["other_ollamas"]:
            other["url"] = base_url(other["url"])
    checks = run_checks(runner, params)
    for name in ("hardware_info", "version"):
        if checks[name]["ok"] is False:
            module.warn("runner check %s failed (go-livepeer only logs this): %s at %s"
                        % (name, checks[name]["detail"], checks[name]["url"]))
    if params["token_check"] == "warn" and checks["token"]["ok"] is False:
        module.warn("runner check token failed (token_check: warn): %s" % checks["token"]["detail"])
    failure = first_failure(checks, required_checks(params))
    result = {"changed": False, "checks": checks, "status": checks["health"]["status"], "ok": failure is None}
    if failure:
        module.fail_json(msg=failure, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
