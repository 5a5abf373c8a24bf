"""Issue 17 item 2 on the shared converged host: a no-op site.yml skips the roles' work (in at most 30 tasks), and
drift behind lpfleet's back (a stopped container, an edited daemon.json, a deleted model, a hand-edited
aiModels.json) is found by lpfleet.ai.applied_state and put back by the next run, all four in one run.

Costs two site.yml runs on conftest.py's `converged_host` (the docs' shape, shared layout): the no-op, then the repair.
"""

from __future__ import annotations

import json
import re

import pytest
from roles_helpers import ConvergedHost, PlayResult

pytestmark = pytest.mark.slow

DAEMON_JSON = "/etc/docker/daemon.json"
AI_MODELS = "/root/.lpData/aiModels.json"
OLLAMA = "http://127.0.0.1:11434"
MODEL = "llama3.1:8b"
# On a no-op, preflight's host-wide check holds, and site.yml skips the roles' work as two includes
# (playbooks/tasks/site_host.yml, site_models.yml), and the checks that guard a change.
HOST_WIDE_CHECK = "lpfleet.ai.preflight : Compare the host with what every role last applied"
SKIPPED_ON_A_NOOP = [
    "Restore an unfinished rollout, install Docker and the toolkit, create the network and the volume",
    "Pull the models, deploy the stack, load the warm models, write aiModels.json",
    "Check what the host holds for the roles that read it",
    "lpfleet.ai.preflight : Check the free disk for the planned models",
]
# Issue 17's target for a no-op site.yml.
MAX_NOOP_TASKS = 30
_RECAP = re.compile(r"^(?P<host>\S+)\s+: ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=\d+\s+"
                    r"failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)", re.MULTILINE)


def tasks_run(result: PlayResult, host: str) -> dict[str, int]:
    """The PLAY RECAP's counts for HOST, with `tasks` = ok + changed + skipped + failed (what issue 17 counts)."""
    counts = {}
    for match in _RECAP.finditer(result.output):
        if match["host"] == host:
            counts = {key: int(match[key]) for key in ("ok", "changed", "failed", "skipped")}
    assert counts, result.describe()
    counts["tasks"] = counts["ok"] + counts["changed"] + counts["skipped"] + counts["failed"]
    return counts


_OUTCOME = re.compile(r"^(ok|changed|skipping|included|fatal|failed): ")


def task_outcome(result: PlayResult, task: str) -> str:
    """The first outcome line (ok/changed/skipping/included/fatal) the run printed for the task TASK."""
    lines = result.output.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("TASK [") and line.split("[", 1)[1].rsplit("]", 1)[0].endswith(task):
            return next((following for following in lines[index + 1:] if _OUTCOME.match(following)), "")
    return ""


def ollama_models(host) -> list[str]:
    script = f"import urllib.request; print(urllib.request.urlopen('{OLLAMA}/api/tags').read().decode())"
    return [model["name"] for model in json.loads(host.exec("python3", "-c", script).stdout)["models"] or []]


def test_noop_skips_the_work_and_the_next_run_repairs_four_drifts(converged_host: ConvergedHost) -> None:
    host = converged_host.converge()
    name = converged_host.name

    noop = converged_host.runner.run("site.yml", name)
    counts = tasks_run(noop, name)
    print(f"\nno-op site.yml on {name}: {counts} in {noop.seconds:.1f} s")
    assert noop.returncode == 0 and counts["changed"] == 0 and counts["failed"] == 0, noop.describe()
    assert task_outcome(noop, HOST_WIDE_CHECK).startswith("ok"), noop.describe()
    for task in SKIPPED_ON_A_NOOP:
        assert task_outcome(noop, task).startswith("skipping"), f"{task}: {task_outcome(noop, task)}\n{noop.describe()}"
    assert counts["tasks"] <= MAX_NOOP_TASKS, f"{counts}\n{noop.describe()}"

    # Behind lpfleet's back: a model deleted, the Ollama container stopped, the nvidia runtime taken out of
    # daemon.json, a price changed by hand in aiModels.json.
    ai_models_before = host.exec("cat", AI_MODELS).stdout
    converged_host.spoil()
    host.exec("python3", "-c", "import json,urllib.request; urllib.request.urlopen(urllib.request.Request("
              f"'{OLLAMA}/api/delete', data=json.dumps({{'model': '{MODEL}'}}).encode(), method='DELETE'))")
    assert MODEL not in ollama_models(host)
    host.exec("docker", "stop", "ollama")
    daemon = json.loads(host.exec("cat", DAEMON_JSON).stdout)
    assert "nvidia" in daemon.pop("runtimes", {})
    host.put(DAEMON_JSON, json.dumps(daemon, indent=2).encode())
    entries = json.loads(ai_models_before)
    entries[0]["price_per_unit"] = entries[0].get("price_per_unit", 1) + 1
    host.put(AI_MODELS, json.dumps(entries, indent=2).encode())

    repair = converged_host.runner.run("site.yml", name)
    counts = tasks_run(repair, name)
    print(f"repair site.yml on {name}: {counts} in {repair.seconds:.1f} s")
    assert repair.returncode == 0 and counts["failed"] == 0 and counts["changed"] > 0, repair.describe()
    said = "\n".join(line for line in repair.output.splitlines() if " applies: " in line or " prepull runs: " in line)
    print(said)
    for reason in ["nvidia_container_toolkit applies: /etc/docker/daemon.json changed since lpfleet wrote it "
                   "(key(s) runtimes)",
                   "ollama_stack applies: container ollama is not running",
                   f"ai_models applies: {AI_MODELS} changed since lpfleet wrote it"]:
        assert reason in said, f"{reason!r} not said:\n{said}\n{repair.describe()}"
    # Ollama is stopped until ollama_stack starts it: the rollout's prepull cannot read it, and ollama_models applies
    # (the deleted model missing, or an Ollama still starting: either way it pulls what the plan lacks).
    assert "ollama_models applies: " in said, f"ollama_models did not apply:\n{said}\n{repair.describe()}"
    for task in ["Install and configure Docker", "Create the Docker network and the model volume"]:
        assert task_outcome(repair, task).startswith("skipping"), f"{task}: {task_outcome(repair, task)}"

    assert "nvidia" in json.loads(host.exec("cat", DAEMON_JSON).stdout)["runtimes"]
    assert host.exec("docker", "inspect", "--format", "{{.State.Running}}", "ollama").stdout.strip() == b"true"
    assert MODEL in ollama_models(host)
    assert json.loads(host.exec("cat", AI_MODELS).stdout) == json.loads(ai_models_before)
    converged_host.converged_with = json.dumps({}, sort_keys=True)  # repaired: converged as converge() left it
