"""What `molecule verify` checks on each fleet host, at the stage the scenario has reached.

Stages (written by converge.yml and the side effects to <ephemeral dir>/fleet-stage):
  converged  site.yml with the lab's shared menu
  added      rollout of mistral:7b, cold, on every host (side_effect_add.yml)
  cut        rollout of a re-priced 8B model + gemma2:9b whose download the registry cuts; only the
             H100 places gemma2:9b, so only it fails, before switching (side_effect_cut.yml)
  restored   rollout on the H100 of a model its runner does not serve; restored (side_effect_restore.yml)
expected/README.md works out each host's aiModels.json from the catalog and the planner's rules.
"""

import json
import os
from pathlib import Path

import pytest

SCENARIO = Path(__file__).resolve().parent.parent
EXPECTED = SCENARIO / "expected"
EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
STAGE_FILE = EPHEMERAL / "fleet-stage"

# Which expected aiModels.json each host has at each stage.
AI_MODELS = {
    "converged": {"fleet-docs": "menu", "fleet-8g": "menu", "fleet-h100": "menu"},
    "added": {"fleet-docs": "mistral", "fleet-8g": "mistral", "fleet-h100": "mistral"},
    "cut": {"fleet-docs": "repriced", "fleet-8g": "repriced", "fleet-h100": "mistral"},
    "restored": {"fleet-docs": "repriced", "fleet-8g": "repriced", "fleet-h100": "mistral"},
}
BASE_MODELS = {
    "fleet-docs": {"llama3.1:8b"},
    "fleet-8g": {"llama3.1:8b"},
    "fleet-h100": {"llama3.1:8b", "llama3.1:70b"},
}
WARM_MODELS = BASE_MODELS
# The outcome each host's last-rollout.json records at each stage (None: no rollout yet).
LAST_ROLLOUT = {
    "converged": {"fleet-docs": None, "fleet-8g": None, "fleet-h100": None},
    "added": {"fleet-docs": "switched", "fleet-8g": "switched", "fleet-h100": "switched"},
    "cut": {"fleet-docs": "switched", "fleet-8g": "switched", "fleet-h100": "failed"},
    "restored": {"fleet-docs": "switched", "fleet-8g": "switched", "fleet-h100": "restored"},
}
REPORTS = {"cut": EPHEMERAL / "reports-cut", "restored": EPHEMERAL / "reports-restore"}


@pytest.fixture(scope="module")
def stage():
    if not STAGE_FILE.exists():
        pytest.skip("no %s: run `molecule converge -s fleet` first" % STAGE_FILE)
    value = STAGE_FILE.read_text().strip()
    assert value in AI_MODELS, "unknown stage %r in %s" % (value, STAGE_FILE)
    return value


@pytest.fixture(scope="module")
def name(host):
    return host.backend.get_hostname()


def api(host, path, port=11434):
    """GET http://127.0.0.1:<port><path> from inside the host (lab hosts have no curl)."""
    script = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=30).read().decode())"
    result = host.run("python3 -c %s %s", script, "http://127.0.0.1:%d%s" % (port, path))
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def expected_models(name, stage):
    models = set(BASE_MODELS[name])
    if stage != "converged":
        models.add("mistral:7b")
    return models


def test_ai_models_json_is_the_expected_file(host, name, stage):
    written = host.file("/root/.lpData/aiModels.json")
    assert written.exists and written.user == "root"
    assert written.mode == 0o600, "aiModels.json carries the runner token: root only"
    expected = EXPECTED / ("%s.%s.json" % (name, AI_MODELS[stage][name]))
    assert json.loads(written.content_string) == json.loads(expected.read_text()), expected.name


def test_the_three_gpu_classes_give_three_files(stage):
    """One shared menu, three different aiModels.json: each host is compared with its own file above."""
    contents = {(EXPECTED / ("%s.%s.json" % (name, kind))).read_text() for name, kind in AI_MODELS[stage].items()}
    assert len(contents) == 3


def test_the_models_in_ollama_are_the_planned_ones(host, name, stage):
    present = {model["name"] for model in api(host, "/api/tags")["models"]}
    assert present == expected_models(name, stage)


def test_the_warm_models_are_loaded(host, name, stage):
    loaded = {model["name"] for model in api(host, "/api/ps")["models"]}
    assert WARM_MODELS[name] <= loaded


def test_the_runner_is_healthy(host, stage):
    assert api(host, "/health", port=8000)["status"] == "OK"


def test_the_last_rollout_is_recorded(host, name, stage):
    record = host.file("/var/lib/lpfleet/last-rollout.json")
    expected = LAST_ROLLOUT[stage][name]
    if expected is None:
        assert not record.exists
        return
    assert json.loads(record.content_string)["result"] == expected


def test_no_snapshot_or_record_holds_a_readable_token(host, stage):
    if stage == "converged":
        pytest.skip("no rollout yet")
    for path in ("/var/lib/lpfleet/rollout/ai-models", "/var/lib/lpfleet/rollout/ollama-stack"):
        assert host.file(path).mode == 0o700, path
    assert "lab-runner-token" not in host.file("/var/lib/lpfleet/last-rollout.json").content_string


def test_the_fleet_report_says_so(host, name, stage):
    if stage not in REPORTS:
        pytest.skip("the side effects write a report at the stages cut and restored")
    report = json.loads((REPORTS[stage] / "fleet-report.json").read_text())
    records = {record["host"]: record for record in report["hosts"]}
    record = records[name]
    assert record["error"] is None
    assert record["last_rollout"]["result"] == LAST_ROLLOUT[stage][name]
    assert set(record["models_present"]) == expected_models(name, stage)
    assert all(runner["ok"] for runner in record["runners"]), record["runners"]
    # The report places the menu being rolled out: gemma2:9b only on the H100, where it is missing.
    placed = {item["model_id"] for item in record["plan"]["placement"]}
    assert ("google/gemma-2-9b-it" in placed) == (name == "fleet-h100")
    markdown = (REPORTS[stage] / "fleet-report.md").read_text()
    assert "| %s | %s |" % (name, LAST_ROLLOUT[stage][name]) in markdown
    assert "lab-runner-token" not in markdown + json.dumps(report)
    if stage == "restored":
        assert records["fleet-gone"]["error"].startswith("unreachable")
