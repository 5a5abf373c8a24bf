"""lpfleet.ai.livepeer_restart: restart go-livepeer, watch that it stays up, say how it ended and what it logged.

Docker's and systemd's command-line tools are replaced by a small program on PATH that answers from a script
(the node's successive states) and records every call; time is a FakeClock, so the settle period costs nothing.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from http_servers import FakeClock, run_module

from ansible_collections.lpfleet.ai.plugins.modules import livepeer_restart

FAKE_TOOL = """#!{python}
import json, os, sys
script_path = os.environ["FAKE_NODE_SCRIPT"]
with open(script_path) as handle:
    script = json.load(handle)
tool, args = os.path.basename(sys.argv[0]), sys.argv[1:]
script["calls"].append([tool] + args)
answer = {{"out": "", "err": "", "rc": 0}}
if tool == "docker" and args[0] == "inspect" or tool == "systemctl" and args[0] == "show":
    states = script["states"]
    answer = states.pop(0) if len(states) > 1 else states[0]
elif tool == "docker" and args[0] == "logs" or tool == "journalctl":
    answer = script["logs"]
elif args[0] == "restart":
    answer = script.get("restart", answer)
with open(script_path, "w") as handle:
    json.dump(script, handle)
sys.stdout.write(answer.get("out", ""))
sys.stderr.write(answer.get("err", ""))
sys.exit(answer.get("rc", 0))
"""


def container(running=True, started="2026-11-30T10:00:00.000000001Z", restarts=0, exit_code=0, restarting=False):
    state = {"Running": running, "Restarting": restarting, "ExitCode": exit_code, "StartedAt": started}
    return {"out": json.dumps([{"State": state, "RestartCount": restarts}])}


def service(active="active", pid="4242", restarts=0, status=0, invocation="inv1", started="100"):
    lines = {"LoadState": "loaded", "ActiveState": active, "SubState": "running" if active == "active" else "dead",
             "MainPID": pid, "NRestarts": restarts, "ExecMainStatus": status, "InvocationID": invocation,
             "ExecMainStartTimestampMonotonic": started}
    return {"out": "".join(f"{key}={value}\n" for key, value in lines.items())}


@pytest.fixture
def node(tmp_path, monkeypatch):
    """Installs the fake tools; returns a function that sets the script and runs the module."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("docker", "systemctl", "journalctl"):
        path = bin_dir / tool
        path.write_text(FAKE_TOOL.format(python=sys.executable))
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    script_path = tmp_path / "script.json"
    monkeypatch.setenv("FAKE_NODE_SCRIPT", str(script_path))
    clock = FakeClock()
    monkeypatch.setattr(livepeer_restart, "CLOCK", clock)

    def run(states, logs=None, restart=None, **args):
        script = {"states": states, "logs": logs or {"out": ""}, "calls": []}
        if restart:
            script["restart"] = restart
        script_path.write_text(json.dumps(script))
        result = run_module(livepeer_restart.main, {"settle_seconds": 30, "poll_interval": 5, **args})
        result["_calls"] = json.loads(script_path.read_text())["calls"]
        result["_slept"] = list(clock.slept)
        return result

    return run


def test_a_container_that_keeps_running_stayed_up_after_the_whole_settle_period(node):
    result = node([container()], manager="container", name="livepeer")
    assert result["stayed_up"] is True and result["changed"] is True, result
    assert result["state"] == "running for 30 s" and result["log"] == [] and result["stopped_after"] is None
    assert result["_calls"][0] == ["docker", "restart", "livepeer"]
    assert sum(result["_slept"]) == 30 and max(result["_slept"]) == 5


def test_a_container_that_exits_0_on_its_file_is_found_with_its_log_in_time_order(node):
    logs = {"out": "2026-11-30T10:00:01.2Z read 2 AI model configs from /root/.lpData/aiModels.json\n",
            "err": ("2026-11-30T10:00:01.1Z I1130 starting\n"
                    "2026-11-30T10:00:01.3Z Error AI worker warming llm container: runner is in error state\n")}
    result = node([container(), container(), container(running=False, exit_code=0)], logs=logs,
                  manager="container", name="livepeer", log_lines=5)
    assert result["stayed_up"] is False and result["exit_code"] == 0, result
    assert result["state"] == "exited with status 0 after 10 s" and result["stopped_after"] == 10
    assert result["log"] == ["I1130 starting", "read 2 AI model configs from /root/.lpData/aiModels.json",
                             "Error AI worker warming llm container: runner is in error state"]
    assert ["docker", "logs", "--timestamps", "--tail", "5", "--since", "2026-11-30T10:00:00.000000001Z",
            "livepeer"] in result["_calls"]


def test_a_container_restarted_by_its_restart_policy_did_not_stay_up(node):
    # restart: always brings go-livepeer back after its exit 0: it runs again, with a new start time.
    result = node([container(), container(started="2026-11-30T10:00:06Z", restarts=1)],
                  manager="container", name="livepeer")
    assert result["stayed_up"] is False, result
    assert result["state"].startswith("restarted by Docker's restart policy after 5 s"), result["state"]


def test_a_restart_by_the_policy_before_the_first_look_is_seen_too(node):
    # docker restart sets RestartCount to 0: a count above 0 is a restart by the policy.
    result = node([container(restarts=1)], manager="container", name="livepeer")
    assert result["stayed_up"] is False and result["stopped_after"] == 0, result


def test_a_missing_container_fails_clearly(node):
    result = node([{"rc": 1, "err": "Error: No such container: livepeer"}], manager="container", name="livepeer")
    assert result["failed"] is True and result["msg"].startswith("no container livepeer: Error: No such container")


def test_a_failed_restart_fails_with_dockers_message(node):
    result = node([container()], restart={"rc": 1, "err": "Error response from daemon: boom"},
                  manager="container", name="livepeer")
    assert result["failed"] is True
    assert result["msg"] == "docker restart livepeer failed (exit 1): Error response from daemon: boom"


def test_a_service_that_exits_is_found_with_its_invocations_journal(node):
    logs = {"out": "Error parsing -aiModels: invalid character '}' looking for beginning of object key string\n"}
    result = node([service(), service(active="inactive", pid="0", status=0)], logs=logs,
                  manager="systemd", name="livepeer")
    assert result["stayed_up"] is False and result["exit_code"] == 0, result
    assert result["state"] == "inactive (dead), its last exit status 0 after 5 s"
    assert result["log"] == ["Error parsing -aiModels: invalid character '}' looking for beginning of object key "
                             "string"]
    assert ["systemctl", "restart", "livepeer.service"] in result["_calls"]
    journal = [call for call in result["_calls"] if call[0] == "journalctl"]
    assert journal == [["journalctl", "_SYSTEMD_INVOCATION_ID=inv1", "--lines", "20", "--output", "cat",
                        "--no-pager"]]


def test_a_service_restarted_by_systemd_did_not_stay_up(node):
    result = node([service(restarts=2), service(pid="5000", restarts=3, invocation="inv2", started="200")],
                  manager="systemd", name="livepeer.service")
    assert result["stayed_up"] is False, result
    assert result["state"].startswith("restarted by systemd's Restart= after 5 s"), result["state"]


def test_a_service_that_keeps_running_stayed_up(node):
    result = node([service()], manager="systemd", name="livepeer", settle_seconds=12)
    assert result["stayed_up"] is True and result["state"] == "running for 12 s", result
    assert result["_slept"] == [5, 5, 2]


def test_check_mode_restarts_nothing(node):
    result = node([container()], manager="container", name="livepeer", _ansible_check_mode=True)
    assert result["changed"] is True and result["stayed_up"] is None
    assert [call[:2] for call in result["_calls"]] == [["docker", "inspect"]]


@pytest.mark.parametrize(("args", "says"), [
    ({"settle_seconds": -1}, "settle_seconds=-1.0 must be from 0 to 86400"),
    ({"poll_interval": 0.2}, "poll_interval=0.2 must be from 1 to 3600 seconds"),
    ({"log_lines": 0}, "log_lines=0 must be from 1 to 1000"),
])
def test_bad_numbers_are_refused_before_any_restart(node, args, says):
    result = node([container()], manager="container", name="livepeer", **args)
    assert result["failed"] is True and result["msg"] == says
    assert result["_calls"] == []


def test_the_documentation_matches_the_argument_spec():
    import yaml
    documented = yaml.safe_load(livepeer_restart.DOCUMENTATION)["options"]
    assert set(documented) == {"manager", "name", "settle_seconds", "poll_interval", "log_lines"}
    assert Path(livepeer_restart.__file__).name == "livepeer_restart.py"
