"""The ollama_model action plugin: its progress line as a pure function, and the whole path end to end.

The end-to-end tests run `ansible localhost -m lpfleet.ai.ollama_model` (the venv's ansible, from the
repository root so that ansible.cfg and the collection resolve) against the Ollama-like fixture.
"""

import json
import os
import pty
import re
import subprocess
import time
from pathlib import Path

import pytest
from http_servers import OllamaServer

from ansible_collections.lpfleet.ai.plugins.action.ollama_model import format_progress, human_bytes, transfer_rate

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / ".venv" / "bin" / "ansible"
GIB = 1024 ** 3
PROGRESS_LINE = re.compile(r"^localhost: llama3\.1:8b  [\d.]+ \w?i?B / [\d.]+ \w?i?B \(\d+%\)  .*attempt 1$")


def sample(completed, total, at, attempt=1, status="pulling 8eeb52dfb3bb"):
    return {"tag": "llama3.1:8b", "status": status, "attempt": attempt, "updated_at": at,
            "completed": completed, "total": total}


# The pure functions ---------------------------------------------------------------------------

@pytest.mark.parametrize("count, text", [
    (0, "0 B"), (1023, "1023 B"), (1536, "2 KiB"), (38 * 1024 ** 2, "38.0 MiB"), (int(1.2 * GIB), "1.2 GiB"),
    (5 * 1024 ** 4, "5.0 TiB"), (4096 * 1024 ** 4, "4096.0 TiB")])
def test_human_bytes(count, text):
    assert human_bytes(count) == text


def test_the_line_shows_sizes_percentage_speed_and_attempt():
    previous = sample(int(0.2 * GIB), int(4.7 * GIB), at=100.0)
    current = sample(int(1.2 * GIB), int(4.7 * GIB), at=100.0 + 1024 / 38)  # 1 GiB in 26.9 s = 38 MiB/s
    assert format_progress("gpu-8g", current, previous) == \
        "gpu-8g: llama3.1:8b  1.2 GiB / 4.7 GiB (25%)  38 MiB/s  attempt 1"


def test_the_first_line_has_no_speed():
    assert format_progress("gpu-8g", sample(GIB, 4 * GIB, at=1.0)) == \
        "gpu-8g: llama3.1:8b  1.0 GiB / 4.0 GiB (25%)  attempt 1"


def test_before_any_layer_the_status_is_shown():
    line = format_progress("h", sample(0, 0, at=1.0, status="pulling manifest"))
    assert line == "h: llama3.1:8b  pulling manifest  attempt 1"


def test_a_retry_shows_its_reason_and_no_speed_across_attempts():
    previous = sample(GIB, 4 * GIB, at=1.0, attempt=1)
    current = sample(GIB, 4 * GIB, at=9.0, attempt=2, status="retrying in 5 s: the stream stalled: no byte for 60 s")
    assert format_progress("h", current, previous) == \
        "h: llama3.1:8b  1.0 GiB / 4.0 GiB (25%)  retrying in 5 s: the stream stalled: no byte for 60 s  attempt 2"


def test_transfer_rate_needs_time_to_pass_and_bytes_to_grow():
    assert transfer_rate(sample(10, 100, at=2.0), sample(0, 100, at=1.0)) == 10
    assert transfer_rate(sample(10, 100, at=1.0), sample(0, 100, at=1.0)) is None
    assert transfer_rate(sample(0, 100, at=2.0), sample(10, 100, at=1.0)) is None
    assert transfer_rate(sample(10, 100, at=2.0), None) is None


# End to end through the ansible CLI ------------------------------------------------------------

def run_ansible(module_args, *options):
    """Run `ansible localhost -m lpfleet.ai.ollama_model` on a pseudo-terminal, as an operator would.

    Returns [(time.monotonic(), line)] with the time each line arrived. A terminal matters: ansible
    does not flush stdout, so through a pipe its lines arrive in blocks unless PYTHONUNBUFFERED is set.
    """
    if not ANSIBLE.exists():
        pytest.skip(f"no ansible in {ANSIBLE.parent}")
    command = [str(ANSIBLE), "localhost", "-i", "localhost,", "-c", "local",
               "-e", "ansible_python_interpreter=%s" % (REPO / ".venv" / "bin" / "python"),
               "-m", "lpfleet.ai.ollama_model", "-a", module_args, *options]
    terminal, child_side = pty.openpty()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "ANSIBLE_NOCOLOR": "1", "LANG": "C.UTF-8"}
    process = subprocess.Popen(command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=child_side, stderr=child_side,
                               env=env)
    os.close(child_side)
    lines, pending = [], b""
    while True:
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # EIO: the child side closed
            chunk = b""
        if not chunk:
            break
        *complete, pending = (pending + chunk).split(b"\n")
        lines.extend((time.monotonic(), line.decode().rstrip("\r")) for line in complete)
    os.close(terminal)
    assert process.wait(timeout=60) in (0, 2)  # 2: the task failed, which the caller checks
    return lines


def task_result(lines):
    """The JSON after `localhost | STATUS =>` in ansible's ad-hoc output."""
    text = "\n".join(line for _, line in lines)
    status, document = re.search(r"^localhost \| (\w+)!? =>\s*(\{.*\})\s*$", text, re.S | re.M).groups()
    return status, json.loads(document)


def test_progress_lines_appear_while_a_slow_pull_runs():
    with OllamaServer(line_delay=0.25, steps=12) as server:  # about 6 s of pulling
        lines = run_ansible(f"name=llama3.1:8b url={server.url} progress_interval=1")
    progress = [(at, line) for at, line in lines if PROGRESS_LINE.match(line)]
    assert progress, "no progress line in:\n" + "\n".join(line for _, line in lines)
    assert progress[0][0] < server.pull_finished_at, "the first progress line came after the pull ended"
    status, result = task_result(lines)
    assert status == "CHANGED" and result["pulled"] and result["attempts"] == 1
    assert result["bytes_transferred"] == sum(size for _, size in OllamaServer.LAYERS)
    assert "ansible_job_id" not in result and "_progress_file" not in json.dumps(result)


def test_a_failing_pull_fails_the_task_with_the_server_message():
    with OllamaServer() as server:
        server.pull_script = ["error"]
        status, result = task_result(run_ansible(f"name=llama3.1:8b url={server.url} progress_interval=1"))
    assert status == "FAILED" and "Ollama reported: pull model manifest: file does not exist" in result["msg"]


def test_check_mode_runs_the_module_directly():
    with OllamaServer() as server:
        lines = run_ansible(f"name=llama3.1:8b url={server.url} progress_interval=1", "--check")
    status, result = task_result(lines)
    assert status == "CHANGED" and result["msg"] == "would pull llama3.1:8b"
    assert server.pulls == [] and not any(PROGRESS_LINE.match(line) for _, line in lines)
