"""No secret is shown anywhere: a grep of `-vvv --diff` output, the files and the reports (issue 12).

One playbook runs lpfleet's modules, roles and the fleet report for real against this machine as a
GPU host (the lab's stand-ins, as in test_playbooks_syntax.py) with `-vvv --diff`, on success and on
failure paths: preflight's plan with a menu item's token and a password in its url, ai_models
writing a runner token then rotating it (diff and backups), runner_health with the token,
validate-only of a file holding secrets under unknown keys, a token file with a loose mode, a token
with a newline, and the fleet report. The output, aiModels.json's backups and the reports are then
searched for every secret, as given and in every escaped form (JSON, JSON inside JSON, Python repr).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import yaml
from test_playbooks_syntax import (
    LAST_ROLLOUT,
    REPO,
    TOKEN,
    ansible_env,
    local_gpu_host,  # noqa: F401 - a fixture
    run_playbook,
    write_inventory,
)

# Quotes and backslashes: JSON and repr escape them, so the escaped forms differ from the raw one.
ROTATED_TOKEN = 'rot"ated\\token-2b'
MENU_TOKEN = 'me"nu\\token-3c'
URL_PASSWORD = "urlpass-4d"
TYPO_SECRET = "typo-secret-5e"
HEADER_SECRET = "hdr-secret-6f"
BAD_TOKEN = "bad-token-7g"
SECRETS = [TOKEN, ROTATED_TOKEN, MENU_TOKEN, URL_PASSWORD, TYPO_SECRET, HEADER_SECRET, BAD_TOKEN]

LLAMA_8B = {"pipeline": "llm", "model_id": "meta-llama/Meta-Llama-3.1-8B-Instruct", "warm": True,
            "price_per_unit": 0.18, "currency": "USD", "pixels_per_unit": 1000000}
EXTERNAL_T2I = {"pipeline": "text-to-image", "model_id": "SG161222/RealVisXL_V4.0_Lightning", "warm": False,
                "price_per_unit": 4768371, "url": f"http://lpfleet:{URL_PASSWORD}@t2i-runner:9000",
                "token": MENU_TOKEN}
# A hand-written file go-livepeer would run, with secrets under keys it ignores.
WRITTEN_BY_HAND = dict(LLAMA_8B, url="http://llm_runner:8000", token=TOKEN)
HAND_WRITTEN = [dict(WRITTEN_BY_HAND, tokne=TYPO_SECRET, Authorization=f"Bearer {HEADER_SECRET}")]


def shown_forms(secret: str) -> set[str]:
    """SECRET as output may show it: raw, JSON-escaped (ASCII or not), JSON inside JSON, repr."""
    escaped = json.dumps(secret)[1:-1]
    return {secret, escaped, json.dumps(secret, ensure_ascii=False)[1:-1], json.dumps(escaped)[1:-1],
            repr(secret)[1:-1]}


def playbook(work: Path, runner_port: int) -> str:
    for name, mode in (("hand.json", 0o600), ("hand-loose.json", 0o644)):
        (work / name).write_text(json.dumps(HAND_WRITTEN))
        (work / name).chmod(mode)
    path = work / "lpData" / "aiModels.json"
    ai_models = {"ai_models_path": str(path), "ai_models_owner": "root", "ai_models_group": "root"}
    failing = {"ignore_errors": True}

    def failing_role(name: str, tasks_from: str, variables: dict) -> dict:
        return {"ansible.builtin.include_role": {"name": name, "tasks_from": tasks_from,
                                                 "apply": {"ignore_errors": True, "vars": variables}}}
    tasks = [
        {"name": "Read the GPUs", "lpfleet.ai.gpu_facts": {"method": "nvidia_smi"}},
        {"name": "Plan a menu whose external item has a token and a url password",
         "ansible.builtin.include_role": {"name": "lpfleet.ai.preflight", "tasks_from": "plan.yml"}},
        {"name": "Create go-livepeer's data directory",
         "ansible.builtin.file": {"path": str(path.parent), "state": "directory", "mode": "0700"}},
        {"name": "Write aiModels.json with the runner token",
         "ansible.builtin.include_role": {"name": "lpfleet.ai.ai_models"}, "vars": ai_models},
        {"name": "Rotate the runner token",
         "ansible.builtin.include_role": {"name": "lpfleet.ai.ai_models"},
         "vars": dict(ai_models, lpfleet_runner_token=ROTATED_TOKEN)},
        {"name": "Check the runner with its token",
         "lpfleet.ai.runner_health": {"url": f"http://127.0.0.1:{runner_port}", "token": TOKEN,
                                      "model_id": LLAMA_8B["model_id"], "deadline": 30}},
        {"name": "Validate the file written", "lpfleet.ai.ai_models": {"path": str(path)}},
        {"name": "Validate a hand-written file with secrets under unknown keys",
         "lpfleet.ai.ai_models": {"path": str(work / "hand.json")}},
        {"name": "Validate one readable by others (fails)",
         "lpfleet.ai.ai_models": {"path": str(work / "hand-loose.json")}, **failing},
        {"name": "Write a token file world-readable (fails)",
         "lpfleet.ai.ai_models": {"path": str(work / "loose.json"), "entries": [WRITTEN_BY_HAND], "mode": "0644"},
         **failing},
        {"name": "Plan a menu item with secrets under unknown keys (fails)",
         **failing_role("lpfleet.ai.preflight", "plan.yml",
                        {"lpfleet_model_menu": [dict(EXTERNAL_T2I, tokne=TYPO_SECRET)]})},
        {"name": "Check a runner token with a newline (fails)",
         **failing_role("lpfleet.ai.ollama_stack", "checks", {"lpfleet_runner_token": BAD_TOKEN + "\n"})},
    ]
    plays = [{"name": "Secrets under -vvv --diff", "hosts": "node1", "gather_facts": False, "tasks": tasks},
             {"ansible.builtin.import_playbook": str(REPO / "playbooks" / "fleet_report.yml")}]
    (work / "secrets.yml").write_text(yaml.safe_dump(plays, sort_keys=False))
    return str(work / "secrets.yml")


def test_no_secret_in_verbose_output_diffs_backups_or_reports(tmp_path, local_gpu_host):  # noqa: F811
    work = tmp_path / "work"
    work.mkdir()
    inventory = write_inventory(tmp_path / "hosts.yml", {
        "node1": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                  "lpfleet_ollama_port": local_gpu_host["ollama_port"],
                  "lpfleet_runner_port": local_gpu_host["runner_port"],
                  "rollout_status_dir": str(local_gpu_host["status_dir"])},
    }, {"lpfleet_model_menu": [LLAMA_8B, EXTERNAL_T2I], "lpfleet_runner_token": TOKEN})
    reports = tmp_path / "reports"
    env = ansible_env(tmp_path, PATH=f"{local_gpu_host['bin']}:{os.environ['PATH']}",
                      LPFLEET_LAB_GPU_PROFILE=str(REPO / "lab" / "profiles" / "single-8gb.json"))
    done = run_playbook(tmp_path, "-vvv", "--diff", "-i", str(inventory),
                        playbook(work, local_gpu_host["runner_port"]),
                        "-e", f"lpfleet_report_dir={reports}", env=env, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-8000:]

    # Every path ran: the file was written and rotated, the failures failed, the report was made.
    written = work / "lpData" / "aiModels.json"
    assert json.loads(written.read_text())[0]["token"] == ROTATED_TOKEN
    # The refused plan fails twice (checked, then recorded); the three others once each.
    assert output.count("...ignoring") == 5, output[-8000:]
    assert "--- before: " in output and "+++ after: " in output
    backups = sorted(written.parent.glob("aiModels.json.*~"))
    assert backups and all(stat.S_IMODE(backup.stat().st_mode) == 0o600 for backup in backups)
    report_files = [reports / "fleet-report.json", reports / "fleet-report.md"]
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in report_files)
    assert stat.S_IMODE(reports.stat().st_mode) == 0o700
    assert json.loads(report_files[0].read_text())["hosts"][0]["last_rollout"] == LAST_ROLLOUT

    # The output and the reports show no secret; the backups (0600) may hold the tokens the file still
    # holds, never the rotated-away runner token.
    searched = {"the output": (output, SECRETS),
                **{path.name: (path.read_text(), SECRETS) for path in report_files},
                **{path.name: (path.read_text(), [TOKEN]) for path in backups}}
    for where, (text, secrets) in searched.items():
        for secret in secrets:
            shown = [form for form in shown_forms(secret) if form in text]
            assert not shown, f"{where} shows {shown}"
