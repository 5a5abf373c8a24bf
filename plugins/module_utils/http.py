# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""HTTP helpers shared by lpfleet's modules: urllib through Ansible's open_url (targets may lack `requests`).

Every failure is a `RequestFailed` that carries what the caller needs to explain it:
the URL, the status code, the content type and the first bytes of the body, and
whether trying again may help (`retryable`).
"""
# pylint: disable=unused-import
# (pylint's astroid adds its model of the standard library's `http` package, with imports of
# IntEnum and namedtuple, to any module named `http`; ruff's F401 still checks this file's imports.)

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.parse
from typing import Any, Callable, Iterable, Iterator, Optional, TypeVar

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import open_url

BODY_HEAD_BYTES = 200

T = TypeVar("T")


class Clock:
    """The time that deadlines and retry delays are measured in; tests swap in a fake one."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


CLOCK = Clock()


class RequestFailed(Exception):
    """A request that got no usable answer."""

    def __init__(self, message: str, url: str, status: Optional[int] = None, content_type: str = "",
                 body: bytes = b"", retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.url = url
        self.status = status
        self.content_type = content_type
        self.body_head = body[:BODY_HEAD_BYTES].decode("utf-8", "replace")
        self.retryable = retryable
        self.attempts = 1

    def __str__(self) -> str:
        seen = "no answer" if self.status is None else "HTTP %s, content type %r, body %r" % (
            self.status, self.content_type, self.body_head)
        return "%s (%s; saw %s)" % (self.message, self.url, seen)

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "status_code": self.status, "content_type": self.content_type,
                "detail": self.message, "body_head": self.body_head}


class HttpResponse:
    """A complete answer: status, content type and body."""

    def __init__(self, url: str, status: int, content_type: str, body: bytes) -> None:
        self.url = url
        self.status = status
        self.content_type = content_type
        self.body = body

    def fail(self, message: str, retryable: bool = False) -> RequestFailed:
        """A RequestFailed describing this answer."""
        return RequestFailed(message, self.url, self.status, self.content_type, self.body, retryable)

    def json(self) -> Any:
        """The body as JSON, requiring a JSON content type (what go-livepeer requires too)."""
        if not is_json_content_type(self.content_type):
            raise self.fail("expected a JSON content type")
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError as err:
            raise self.fail("the body is not valid JSON: %s" % err) from err


def is_json_content_type(content_type: str) -> bool:
    """True for application/json (any parameters, such as charset) and application/*+json."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def base_url(url: str, option: str = "url") -> str:
    """The URL without a trailing slash; ValueError naming the option when it is not http(s)://host[:port]."""
    parsed = urllib.parse.urlsplit(url or "")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError("%s=%r is not an http:// or https:// URL with a host, e.g. http://127.0.0.1:11434"
                         % (option, url))
    try:
        parsed.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError:
        raise ValueError("%s=%r has an invalid port" % (option, url)) from None
    return url.rstrip("/")


def _open(method: str, url: str, payload: Any, headers: Optional[dict[str, str]], timeout: float) -> Any:
    """Open a request; HTTP error statuses come back as responses, transport failures raise RequestFailed."""
    all_headers = {"Accept": "application/json"}
    all_headers.update(headers or {})
    data = None
    if payload is not None:
        data = json.dumps(payload).encode("utf-8")
        all_headers["Content-Type"] = "application/json"
    try:
        return open_url(url, data=data, headers=all_headers, method=method, timeout=timeout, use_netrc=False,
                        http_agent="lpfleet")
    except urllib.error.HTTPError as answer:
        return answer
    except urllib.error.URLError as err:
        raise RequestFailed("cannot connect: %s" % err.reason, url, retryable=True) from err
    except UrlsConnectionError as err:  # TLS and proxy failures
        raise RequestFailed("cannot connect: %s" % err, url, retryable=False) from err
    except (socket.timeout, TimeoutError):
        raise RequestFailed("no answer within %s s" % timeout, url, retryable=True) from None
    except (http.client.HTTPException, OSError) as err:
        raise RequestFailed("the connection failed: %r" % err, url, retryable=True) from err


def _content_type(response: Any) -> str:
    return response.headers.get("Content-Type", "") if response.headers else ""


def _status(response: Any) -> int:
    """The status of an answer, whether urllib returned it (HTTPResponse) or raised it (HTTPError)."""
    return getattr(response, "status", None) or response.code


def request(method: str, url: str, payload: Any = None, headers: Optional[dict[str, str]] = None,
            timeout: float = 10.0) -> HttpResponse:
    """Send one request and read the whole answer, whatever its status."""
    response = _open(method, url, payload, headers, timeout)
    try:
        with response:
            body = response.read()
    except (socket.timeout, TimeoutError):
        raise RequestFailed("the body did not arrive within %s s" % timeout, url, _status(response),
                            _content_type(response), retryable=True) from None
    except (http.client.HTTPException, OSError) as err:
        raise RequestFailed("the connection broke while reading the body: %r" % err, url, _status(response),
                            _content_type(response), retryable=True) from err
    return HttpResponse(url, _status(response), _content_type(response), body)


def expect_json(response: HttpResponse) -> Any:
    """The JSON body of a 2xx answer; otherwise RequestFailed (retryable for 5xx and 429)."""
    if not 200 <= response.status < 300:
        retryable = response.status >= 500 or response.status == 429
        raise response.fail("unexpected HTTP status %s" % response.status, retryable)
    return response.json()


def get_json(url: str, headers: Optional[dict[str, str]] = None, timeout: float = 10.0) -> Any:
    """GET a JSON document."""
    return expect_json(request("GET", url, headers=headers, timeout=timeout))


def post_json(url: str, payload: Any, headers: Optional[dict[str, str]] = None, timeout: float = 10.0) -> Any:
    """POST a JSON body and return the JSON answer."""
    return expect_json(request("POST", url, payload, headers, timeout))


class Stream:
    """An answer read line by line while it arrives (NDJSON or server-sent events)."""

    def __init__(self, method: str, url: str, payload: Any = None, headers: Optional[dict[str, str]] = None,
                 stall_timeout: float = 60.0) -> None:
        self.url = url
        self.stall_timeout = stall_timeout
        # The socket timeout applies to every read: it is the stall timeout.
        self._response = _open(method, url, payload, headers, stall_timeout)
        self.status = _status(self._response)
        self.content_type = _content_type(self._response)
        if not 200 <= self.status < 300:
            body = self._read_rest()
            self.close()
            raise RequestFailed("unexpected HTTP status %s" % self.status, url, self.status, self.content_type, body,
                                retryable=self.status >= 500 or self.status == 429)

    def _read_rest(self) -> bytes:
        try:
            return self._response.read(BODY_HEAD_BYTES)
        except (http.client.HTTPException, OSError):
            return b""

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        self._response.close()

    def fail(self, message: str, retryable: bool = False) -> RequestFailed:
        return RequestFailed(message, self.url, self.status, self.content_type, retryable=retryable)

    def lines(self, deadline: Optional[float] = None) -> Iterator[str]:
        """Non-empty lines until the end of the stream.

        Raises RequestFailed: retryable when the stream stalls (no byte for stall_timeout)
        or is cut; not retryable when the overall deadline (CLOCK.monotonic()) passes.
        A read can overrun the deadline by at most stall_timeout.
        """
        while True:
            if deadline is not None and CLOCK.monotonic() > deadline:
                raise self.fail("the overall timeout passed while the answer was still arriving")
            try:
                raw = self._response.readline()
            except (socket.timeout, TimeoutError):
                raise self.fail("the stream stalled: no byte for %s s" % self.stall_timeout, retryable=True) from None
            except (http.client.HTTPException, OSError) as err:
                raise self.fail("the stream was cut: %r" % err, retryable=True) from err
            if not raw:
                return
            line = raw.decode("utf-8", "replace").strip()
            if line:
                yield line


def ndjson(lines: Iterable[str], url: str = "") -> Iterator[Any]:
    """Parse newline-delimited JSON, one document per line."""
    for line in lines:
        try:
            yield json.loads(line)
        except ValueError:
            raise RequestFailed("a line of the stream is not JSON: %r" % line[:BODY_HEAD_BYTES], url) from None


def sse_data(lines: Iterable[str]) -> Iterator[str]:
    """The payloads of the `data:` lines of a server-sent event stream (other fields are skipped)."""
    for line in lines:
        if line.startswith("data:"):
            yield line[len("data:"):].lstrip(" ")


def backoff_delays(first: float, retries: int) -> list[float]:
    """Delays for `retries` retries, doubling from `first`."""
    return [first * 2 ** index for index in range(retries)]


def call_with_retries(call: Callable[[int], T], delays: Iterable[float], deadline: float,
                      on_retry: Optional[Callable[[RequestFailed, float], None]] = None,
                      sleep: Optional[Callable[[float], None]] = None) -> T:
    """Call `call(attempt)` until it returns; retry retryable RequestFailed after each delay in turn.

    Stops (re-raising the last failure, with `attempts` set) when the failure is not
    retryable, the delays run out, or the next try would start after `deadline` (CLOCK.monotonic()).
    """
    remaining_delays = iter(delays)
    attempt = 1
    while True:
        try:
            return call(attempt)
        except RequestFailed as failure:
            failure.attempts = attempt
            delay = next(remaining_delays, None) if failure.retryable else None
            if delay is None or CLOCK.monotonic() + delay > deadline:
                raise
            if on_retry is not None:
                on_retry(failure, delay)
            (sleep or CLOCK.sleep)(delay)
            attempt += 1
