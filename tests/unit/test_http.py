"""plugins/module_utils/http.py against the fixture servers (real sockets on 127.0.0.1)."""

import socket
import time

import pytest
from http_servers import OllamaServer, RunnerServer

from ansible_collections.lpfleet.ai.plugins.module_utils import http


@pytest.fixture
def runner():
    with RunnerServer() as server:
        yield server


@pytest.fixture
def ollama():
    with OllamaServer() as server:
        yield server


def closed_port_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("url, expected", [
    ("http://127.0.0.1:11434/", "http://127.0.0.1:11434"),
    ("https://ollama.example:8443", "https://ollama.example:8443"),
])
def test_base_url_accepts_http_urls(url, expected):
    assert http.base_url(url) == expected


@pytest.mark.parametrize("url", ["", "127.0.0.1:11434", "ftp://host", "http://", "http://host:99999", "http://h:x"])
def test_base_url_names_the_option_when_bad(url):
    with pytest.raises(ValueError, match="^runner_url="):
        http.base_url(url, option="runner_url")


@pytest.mark.parametrize("content_type, expected", [
    ("application/json", True), ("application/json; charset=utf-8", True), ("Application/JSON", True),
    ("application/problem+json", True), ("text/plain", False), ("", False), ("text/json-ish", False),
])
def test_json_content_types(content_type, expected):
    assert http.is_json_content_type(content_type) is expected


def test_get_json_reads_a_document(runner):
    assert http.get_json(runner.url + "/version")["version"] == "0.14.1"


def test_post_json_sends_the_body(runner):
    answer = http.post_json(runner.url + "/llm", {"messages": [{"role": "user", "content": "hi"}], "model": ""})
    assert answer["choices"][0]["message"]["content"] == "OK"
    assert runner.calls("/llm")[0]["body"]["messages"][0]["content"] == "hi"


def test_request_returns_error_statuses_as_answers(ollama):
    answer = http.request("POST", ollama.url + "/api/show", {"model": "nope"})
    assert (answer.status, answer.json()) == (404, {"error": "model 'nope:latest' not found"})


def test_a_4xx_is_not_retryable_and_says_what_came_back(ollama):
    with pytest.raises(http.RequestFailed) as caught:
        http.post_json(ollama.url + "/api/show", {"model": "nope"})
    failure = caught.value
    assert (failure.status, failure.retryable) == (404, False)
    assert "not found" in failure.body_head and "/api/show" in str(failure)


def test_a_5xx_is_retryable():
    with RunnerServer(health=["500"]) as server, pytest.raises(http.RequestFailed) as caught:
        http.get_json(server.url + "/health")
    assert (caught.value.status, caught.value.retryable) == (500, True)


def test_a_json_body_needs_a_json_content_type():
    with RunnerServer(health=["text/plain"]) as server, pytest.raises(http.RequestFailed) as caught:
        http.get_json(server.url + "/health")
    assert caught.value.content_type.startswith("text/plain")
    assert caught.value.body_head == "OK"


def test_body_head_is_cut_at_200_bytes():
    failure = http.RequestFailed("bad", "http://x", 500, "text/plain", b"x" * 1000)
    assert len(failure.body_head) == 200


def test_connection_refused_is_retryable():
    with pytest.raises(http.RequestFailed, match="cannot connect") as caught:
        http.get_json(closed_port_url() + "/health", timeout=1)
    assert caught.value.retryable and caught.value.status is None


def test_a_slow_answer_times_out():
    with RunnerServer(llm="slow", llm_delay=5) as server:
        started = time.monotonic()
        with pytest.raises(http.RequestFailed, match="no answer within 0.3 s") as caught:
            http.post_json(server.url + "/llm", {"messages": []}, timeout=0.3)
    assert caught.value.retryable
    assert time.monotonic() - started < 3


def test_stream_yields_ndjson_lines(ollama):
    with http.Stream("POST", ollama.url + "/api/pull", {"model": "llama3.1:8b"}, stall_timeout=2) as stream:
        statuses = [line["status"] for line in http.ndjson(stream.lines(), stream.url)]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    assert stream.content_type == "application/x-ndjson"


def test_a_stalled_stream_fails_retryably(ollama):
    ollama.pull_script = ["stall"]
    started = time.monotonic()
    with pytest.raises(http.RequestFailed, match="stalled: no byte for 0.3 s") as caught:
        with http.Stream("POST", ollama.url + "/api/pull", {"model": "llama3.1:8b"}, stall_timeout=0.3) as stream:
            list(stream.lines())
    assert caught.value.retryable
    assert time.monotonic() - started < 3


def test_a_cut_stream_fails_retryably(ollama):
    ollama.pull_script = ["cut"]
    with pytest.raises(http.RequestFailed, match="cut") as caught:
        with http.Stream("POST", ollama.url + "/api/pull", {"model": "llama3.1:8b"}, stall_timeout=2) as stream:
            list(stream.lines())
    assert caught.value.retryable


def test_a_stream_past_the_deadline_fails_for_good():
    with OllamaServer(line_delay=0.1) as server, pytest.raises(http.RequestFailed, match="overall timeout") as caught:
        with http.Stream("POST", server.url + "/api/pull", {"model": "llama3.1:8b"}, stall_timeout=2) as stream:
            list(stream.lines(deadline=time.monotonic() + 0.3))
    assert not caught.value.retryable


def test_a_stream_with_an_error_status_raises_with_the_body(ollama):
    ollama.pull_script = ["500"]
    with pytest.raises(http.RequestFailed) as caught:
        http.Stream("POST", ollama.url + "/api/pull", {"model": "llama3.1:8b"})
    assert (caught.value.status, caught.value.retryable) == (500, True)
    assert "internal fault" in caught.value.body_head


def test_ndjson_names_a_line_that_is_not_json():
    with pytest.raises(http.RequestFailed, match="not JSON: 'oops'"):
        list(http.ndjson(['{"status": "x"}', "oops"], "http://x"))


def test_sse_data_keeps_only_data_lines():
    lines = [": comment", "event: message", "data: {\"a\": 1}", "data:[DONE]", "id: 3"]
    assert list(http.sse_data(lines)) == ['{"a": 1}', "[DONE]"]


def test_backoff_doubles():
    assert http.backoff_delays(5, 3) == [5, 10, 20]
    assert http.backoff_delays(5, 0) == []


class Flaky:
    """A call that fails `failures` times, then returns its attempt number."""

    def __init__(self, failures, retryable=True):
        self.failures, self.retryable, self.calls = failures, retryable, []

    def __call__(self, attempt):
        self.calls.append(attempt)
        if len(self.calls) <= self.failures:
            raise http.RequestFailed(f"failure {attempt}", "http://x", retryable=self.retryable)
        return attempt


def test_retries_until_success_with_each_delay_in_turn():
    sleeps = []
    call = Flaky(failures=2)
    assert http.call_with_retries(call, [1, 2, 4], time.monotonic() + 60, sleep=sleeps.append) == 3
    assert sleeps == [1, 2]


def test_retries_report_each_retry():
    seen = []
    http.call_with_retries(Flaky(failures=1), [0.5], time.monotonic() + 60,
                           on_retry=lambda failure, delay: seen.append((failure.message, delay)), sleep=lambda _: None)
    assert seen == [("failure 1", 0.5)]


def test_no_retry_when_not_retryable():
    call = Flaky(failures=5, retryable=False)
    with pytest.raises(http.RequestFailed) as caught:
        http.call_with_retries(call, [0, 0], time.monotonic() + 60, sleep=lambda _: None)
    assert call.calls == [1] and caught.value.attempts == 1


def test_retries_stop_when_the_delays_run_out():
    with pytest.raises(http.RequestFailed, match="failure 3") as caught:
        http.call_with_retries(Flaky(failures=9), [0, 0], time.monotonic() + 60, sleep=lambda _: None)
    assert caught.value.attempts == 3


def test_retries_stop_at_the_deadline():
    call = Flaky(failures=9)
    with pytest.raises(http.RequestFailed):
        http.call_with_retries(call, [10, 10], time.monotonic() + 5, sleep=lambda _: None)
    assert call.calls == [1]
