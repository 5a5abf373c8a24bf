"""The playbooks on the control node: syntax, and the fleet report without the Docker lab.

Every playbook (and every molecule playbook) passes `ansible-playbook --syntax-check`. The fleet
report then runs for real against this machine as a GPU host (local connection; `nvidia-smi` is
the lab's driver stand-in reporting an 8 GB card; Ollama, its model registry and the runner are
the lab's stand-ins on free 127.0.0.1 ports) and against a host that cannot be reached, and its
JSON, Markdown and console output are checked.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
STANDINS = REPO / "lab" / "standins"
TOKEN = "unit-test-runner-token"
MENU = [
    {"pipeline": "llm", "model_id": "meta-llama/Meta-Llama-3.1-8B-Instruct", "warm": True,
     "price_per_unit": 0.18, "currency": "USD", "pixels_per_unit": 1000000},
    {"pipeline": "llm", "model_id": "meta-llama/Meta-Llama-3.1-70B-Instruct", "warm": True,
     "price_per_unit": 0.9, "currency": "USD", "pixels_per_unit": 1000000},
]
LAST_ROLLOUT = {"rollout_id": "20260101T000000Z", "started": "2026-01-01T00:00:00Z", "finished": "2026-01-01T00:05:00Z",
                "result": "restored", "message": "the switch failed; the previous aiModels.json, models and runner "
                "are back and checked", "error": "Require every check to pass: smoke /llm failed",
                "pulled": [], "pruned": [], "ai_models_changed": False}


def playbooks() -> list[Path]:
    found = sorted((REPO / "playbooks").glob("*.yml"))
    for scenario in sorted((REPO / "molecule").iterdir()):
        found += sorted(path for path in scenario.glob("*.yml") if path.name != "molecule.yml")
    return found


def ansible_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_CACHE_PLUGIN_CONNECTION=str(tmp_path / "facts"),
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"))
    env.update(extra)
    return env


def run_playbook(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
                 timeout: float = 300) -> subprocess.CompletedProcess[str]:
    if not ANSIBLE_PLAYBOOK.exists():
        pytest.skip(f"no ansible-playbook beside {sys.executable} (make venv)")
    return subprocess.run([str(ANSIBLE_PLAYBOOK), *args], cwd=REPO, env=env or ansible_env(tmp_path),
                          capture_output=True, text=True, timeout=timeout, check=False)


def write_inventory(path: Path, hosts: dict[str, dict], group_vars: dict | None = None) -> Path:
    path.write_text(yaml.safe_dump({"all": {"children": {"gpu_hosts": {"hosts": hosts, "vars": group_vars or {}}}}}))
    return path


@pytest.mark.parametrize("playbook", playbooks(), ids=lambda path: str(path.relative_to(REPO)))
def test_playbook_syntax(tmp_path, playbook):
    inventory = write_inventory(tmp_path / "hosts.yml", {"ghost": {"ansible_connection": "local"}})
    done = run_playbook(tmp_path, "--syntax-check", "-i", str(inventory), str(playbook))
    assert done.returncode == 0, done.stdout + done.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(tmp_path: Path, name: str, argv: list[str], env: dict[str, str], ready_url: str) -> subprocess.Popen:
    log_path = tmp_path / f"{name}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(argv, env=dict(os.environ, **env), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{name} exited: {log_path.read_text()}")
        try:
            urllib.request.urlopen(ready_url, timeout=1).read()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    pytest.fail(f"{name} did not answer {ready_url} within 15 s")


def post(url: str, body: dict) -> bytes:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(request, timeout=60).read()


@pytest.fixture()
def local_gpu_host(tmp_path):
    """This machine as a GPU host: an 8 GB card, Ollama with llama3.1:8b loaded, a healthy runner."""
    registry_port, ollama_port, runner_port = free_port(), free_port(), free_port()
    processes = []
    try:
        processes.append(start(tmp_path, "registry", [sys.executable, str(STANDINS / "model_registry" / "registry.py"),
                                                      "--host", "127.0.0.1", "--port", str(registry_port),
                                                      "--model-size", "1MiB"],
                               {}, f"http://127.0.0.1:{registry_port}/_lab/health"))
        processes.append(start(tmp_path, "ollama", [sys.executable, str(STANDINS / "ollama" / "ollama.py"), "serve"],
                               {"OLLAMA_HOST": f"127.0.0.1:{ollama_port}", "OLLAMA_MODELS": str(tmp_path / "models"),
                                "OLLAMA_LAB_REGISTRY": f"http://127.0.0.1:{registry_port}"},
                               f"http://127.0.0.1:{ollama_port}/api/version"))
        processes.append(start(tmp_path, "runner", [sys.executable, str(STANDINS / "runner" / "runner.py")],
                               {"PORT": str(runner_port), "HOST": "127.0.0.1", "AUTH_TOKEN": TOKEN,
                                "OLLAMA_BASE_URL": f"http://127.0.0.1:{ollama_port}"},
                               f"http://127.0.0.1:{runner_port}/version"))
        post(f"http://127.0.0.1:{ollama_port}/api/pull", {"model": "llama3.1:8b", "stream": False})
        post(f"http://127.0.0.1:{ollama_port}/api/generate", {"model": "llama3.1:8b", "keep_alive": -1})
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        smi = bin_dir / "nvidia-smi"
        smi.write_text(f"#!/bin/sh\nexec {sys.executable} {REPO / 'lab' / 'driver' / 'nvidia_smi.py'} \"$@\"\n")
        smi.chmod(0o755)
        status_dir = tmp_path / "status"
        status_dir.mkdir()
        (status_dir / "last-rollout.json").write_text(json.dumps(LAST_ROLLOUT))
        yield {"ollama_port": ollama_port, "runner_port": runner_port, "bin": bin_dir, "status_dir": status_dir}
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def test_fleet_report_reads_a_host_and_lists_an_unreachable_one(tmp_path, local_gpu_host):
    unused_port = free_port()
    inventory = write_inventory(tmp_path / "hosts.yml", {
        "node1": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                  "lpfleet_ollama_port": local_gpu_host["ollama_port"],
                  "lpfleet_runner_port": local_gpu_host["runner_port"],
                  "rollout_status_dir": str(local_gpu_host["status_dir"])},
        "ghost": {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": unused_port,
                  "ansible_user": "nobody", "ansible_ssh_common_args": "-o ConnectTimeout=5"},
    }, {"lpfleet_model_menu": MENU, "lpfleet_runner_token": TOKEN})
    reports = tmp_path / "reports"
    # The control node's copies of the rollout records (lpfleet.ai.rollout writes them): ghost was lost in the
    # middle of its switch; node1's copy is older than the record on node1, which wins.
    (reports / "last-rollout").mkdir(parents=True)
    (reports / "last-rollout" / "ghost.json").write_text(json.dumps(
        {**LAST_ROLLOUT, "rollout_id": "20260102T000000Z", "finished": None, "result": "switching", "error": None}))
    (reports / "last-rollout" / "node1.json").write_text(json.dumps(
        {**LAST_ROLLOUT, "rollout_id": "20251231T000000Z", "result": "switched"}))
    env = ansible_env(tmp_path, PATH=f"{local_gpu_host['bin']}:{os.environ['PATH']}",
                      LPFLEET_LAB_GPU_PROFILE=str(REPO / "lab" / "profiles" / "single-8gb.json"))
    done = run_playbook(tmp_path, "-i", str(inventory), "playbooks/fleet_report.yml",
                        "-e", f"lpfleet_report_dir={reports}", env=env)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output

    report = json.loads((reports / "fleet-report.json").read_text())
    records = {record["host"]: record for record in report["hosts"]}
    assert sorted(records) == ["ghost", "node1"]
    assert records["ghost"]["error"].startswith("unreachable")
    assert records["ghost"]["last_rollout"]["result"] == "unreachable"
    assert "unreachable mid-switch" in records["ghost"]["last_rollout"]["message"]
    node = records["node1"]
    assert node["error"] is None
    assert [gpu["name"] for gpu in node["gpus"]] == ["NVIDIA GeForce RTX 3060 Ti"]
    assert [item["model_id"] for item in node["plan"]["placement"]] == ["meta-llama/Meta-Llama-3.1-8B-Instruct"]
    assert [item["model_id"] for item in node["plan"]["unplaced"]] == ["meta-llama/Meta-Llama-3.1-70B-Instruct"]
    assert node["models_present"] == node["models_loaded"] == ["llama3.1:8b"]
    assert [(runner["ok"], runner["status"]) for runner in node["runners"]] == [(True, "OK")]
    assert node["last_rollout"]["result"] == "restored"

    markdown = (reports / "fleet-report.md").read_text()
    assert "| node1 | restored | 20260101T000000Z |" in markdown
    assert "| ghost | - | - | - | - | - | FAILED: unreachable" in markdown
    assert "| ghost | unreachable | 20260102T000000Z | - | unreachable mid-switch" in markdown
    assert "pulled, loaded" in markdown
    assert "== Last rollout ==" in output and re.search(r"node1 +restored +20260101T000000Z", output)
    for text in (output, markdown, json.dumps(report)):
        assert TOKEN not in text


def test_fleet_report_names_a_host_whose_runner_is_down(tmp_path, local_gpu_host):
    inventory = write_inventory(tmp_path / "hosts.yml", {
        "node1": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                  "lpfleet_ollama_port": local_gpu_host["ollama_port"], "lpfleet_runner_port": free_port(),
                  "rollout_status_dir": str(tmp_path / "no-such-dir")},
    }, {"lpfleet_model_menu": MENU, "lpfleet_runner_token": TOKEN})
    reports = tmp_path / "reports"
    env = ansible_env(tmp_path, PATH=f"{local_gpu_host['bin']}:{os.environ['PATH']}",
                      LPFLEET_LAB_GPU_PROFILE=str(REPO / "lab" / "profiles" / "single-8gb.json"))
    done = run_playbook(tmp_path, "-i", str(inventory), "playbooks/fleet_report.yml",
                        "-e", f"lpfleet_report_dir={reports}", "-e", "fleet_report_deadline=1", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    node = json.loads((reports / "fleet-report.json").read_text())["hosts"][0]
    assert node["error"] is None and node["last_rollout"] is None
    assert node["runners"][0]["ok"] is False and node["runners"][0]["detail"]
    assert "no rollout recorded on this host" in (reports / "fleet-report.md").read_text()
