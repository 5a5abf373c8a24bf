"""playbooks/fleet_report.yml against one reachable host: a fake nvidia-smi for its GPUs, the Ollama-like and
runner-like fixture servers for its stack. The record is built in Python (fleet_report_record), Ollama is read
with lpfleet.ai.ollama_info, and a menu item written `ollama_tag: mistral` shows as pulled, not MISSING."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime, timedelta

from http_servers import OllamaServer, RunnerServer
from test_playbooks_syntax import REPO, ansible_env, run_playbook, write_inventory

LLAMA = {"pipeline": "llm", "model_id": "meta-llama/Meta-Llama-3.1-8B-Instruct", "warm": True,
         "price_per_unit": 0.18, "currency": "USD", "pixels_per_unit": 1000000}
MISTRAL = dict(LLAMA, model_id="mistralai/Mistral-7B-Instruct-v0.3", ollama_tag="mistral")
LAST_ROLLOUT = {"result": "ok", "rollout_id": "r-42", "finished": "2026-11-30T09:00:00Z", "message": "switched"}


def fake_nvidia_smi(directory) -> None:
    directory.mkdir()
    script = directory / "nvidia-smi"
    csv = (REPO / "tests" / "unit" / "fixtures" / "gpu_nvidia_smi_query.csv").read_text()
    script.write_text(f"#!/bin/sh\ncat <<'END'\n{csv}END\n")
    script.chmod(0o755)


def test_the_report_of_a_reachable_host(tmp_path):
    fake_nvidia_smi(tmp_path / "bin")
    status_dir = tmp_path / "status"
    status_dir.mkdir()
    (status_dir / "last-rollout.json").write_text(json.dumps(LAST_ROLLOUT))
    with OllamaServer() as ollama, RunnerServer() as runner:
        ollama.registry["mistral:latest"] = {"digest": "e5" * 32, "layers": [("sha256:" + "c3" * 32, 100)]}
        ollama.install("mistral:latest")
        ollama.loaded["mistral:latest"] = datetime.now(UTC) + timedelta(minutes=5)
        inventory = write_inventory(tmp_path / "hosts.yml", {"gpu-a": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "lpfleet_model_menu": [LLAMA, MISTRAL], "rollout_status_dir": str(status_dir),
            "lpfleet_ollama_port": int(ollama.url.rsplit(":", 1)[1]),
            "lpfleet_runner_port": int(runner.url.rsplit(":", 1)[1])}})
        env = ansible_env(tmp_path, PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}")
        done = run_playbook(tmp_path, "-i", str(inventory), "playbooks/fleet_report.yml",
                            "-e", f"lpfleet_report_dir={tmp_path / 'out'}", env=env, timeout=180)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    [record] = json.loads((tmp_path / "out" / "fleet-report.json").read_text())["hosts"]
    assert (record["host"], record["error"], record["problems"]) == ("gpu-a", None, [])
    assert record["models_present"] == record["models_loaded"] == ["mistral:latest"]
    assert [(runner["url"], runner["ok"]) for runner in record["runners"]] == [(runner.url, True)]
    assert record["last_rollout"] == LAST_ROLLOUT
    markdown = (tmp_path / "out" / "fleet-report.md").read_text()
    placement = [[cell.strip() for cell in line.strip("|").split("|")] for line in markdown.splitlines()
                 if line.startswith("| gpu-a |") and "| llm |" in line]
    assert {row[3]: row[6] for row in placement} == {LLAMA["model_id"]: "MISSING",
                                                     MISTRAL["model_id"]: "pulled, loaded"}, markdown
    assert "MISSING" in done.stdout and "Last rollout" in done.stdout
    assert "## Last rollout" in markdown and "| gpu-a | ok | r-42 | 2026-11-30T09:00:00Z | switched |" in markdown
