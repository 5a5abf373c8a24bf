"""The verify role's decisions (plugin_utils/verify.py through its filters): targets, findings, the table."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.lpfleet.ai.plugins.filter.plan_ai_models import plan_ai_models
from ansible_collections.lpfleet.ai.plugins.filter.records import verify_findings, verify_targets
from ansible_collections.lpfleet.ai.plugins.filter.tables import verify_table

GPUS = [{"index": index, "name": "NVIDIA GeForce RTX 4090", "memory_total_mib": 24564} for index in (0, 1)]
LLAMA = {"pipeline": "llm", "model_id": "meta-llama/Meta-Llama-3.1-8B-Instruct", "warm": True,
         "price_per_unit": 0.18, "currency": "USD", "pixels_per_unit": 1000000}
# Written without a tag, as menus may: Ollama lists it as mistral:latest.
MISTRAL = dict(LLAMA, model_id="mistralai/Mistral-7B-Instruct-v0.3", warm=True, ollama_tag="mistral")
PER_GPU = plan_ai_models(GPUS, [LLAMA, MISTRAL], host="h", layout="per_gpu")
SHARED = plan_ai_models(GPUS, [LLAMA, dict(MISTRAL, warm=False)], host="h")


def ok_runner(target):
    checks = {"health": {"ok": True, "status": "OK"}, "llm": {"ok": True, "seconds": 0.084},
              "served": {"ok": True}, "token": {"ok": None}}
    return {"item": target, "ok": True, "checks": checks, "status": "OK"}


def ollama_read(stack, present, loaded=()):
    listing = [{"name": name, "canonical": name} for name in present]
    return {"item": stack, "models": listing, "loaded": [{"name": name, "canonical": name} for name in loaded],
            "failed": False, "changed": False}


def findings(plan, runners=None, ollamas=None, **options):
    runners = [ok_runner(target) for target in verify_targets(plan)] if runners is None else runners
    return verify_findings(plan, host="h", runners=runners, ollamas=ollamas or [], **options)


def test_targets_give_each_runner_its_urls_and_the_other_ollamas():
    targets = verify_targets(PER_GPU)
    assert [(t["stack"]["runner_host_url"], t["model"]["model_id"]) for t in targets] == [
        ("http://127.0.0.1:8000", LLAMA["model_id"]), ("http://127.0.0.1:8001", MISTRAL["model_id"])]
    assert targets[0]["planned_tags"] == ["llama3.1:8b"]
    assert targets[0]["other_ollamas"] == [{"name": "ollama_gpu1", "url": "http://127.0.0.1:11435",
                                            "tags": ["mistral"]}]
    shared = verify_targets(SHARED)
    assert [t["other_ollamas"] for t in shared] == [[], []] and shared[0]["planned_tags"] == ["llama3.1:8b", "mistral"]


def test_all_good_is_rows_of_ok_and_no_failure():
    stacks = PER_GPU["stacks"]
    result = findings(PER_GPU, ollamas=[ollama_read(stacks[0], ["llama3.1:8b"], ["llama3.1:8b"]),
                                        ollama_read(stacks[1], ["mistral:latest"], ["mistral:latest"])])
    assert result["failures"] == []
    assert [(row["present"], row["warm"], row["result"]) for row in result["rows"]] == [("yes", "loaded", "ok")] * 2
    assert result["rows"][0]["runner"] == "llm_runner_gpu0 :8000" and result["rows"][0]["smoke"] == "0.08 s"


def test_a_tagless_menu_tag_is_found_under_its_latest_name():
    """The MISSING bug's twin in verify: `mistral` is the `mistral:latest` Ollama lists."""
    stack = SHARED["stacks"][0]
    result = findings(SHARED, ollamas=[ollama_read(stack, ["llama3.1:8b", "Mistral:latest"], ["llama3.1:8b"])])
    assert result["failures"] == [] and [row["present"] for row in result["rows"]] == ["yes", "yes"]
    assert [row["warm"] for row in result["rows"]] == ["loaded", "cold"]


def test_a_missing_model_and_a_warm_one_not_loaded_are_failures_naming_what_ollama_lists():
    stacks = PER_GPU["stacks"]
    result = findings(PER_GPU, ollamas=[ollama_read(stacks[0], ["phi3:mini"]),
                                        ollama_read(stacks[1], ["mistral:latest"], [])])
    assert result["failures"] == [
        "model llama3.1:8b is not in Ollama ollama_gpu0 (its /api/tags lists: phi3:mini)",
        "warm model mistral is not loaded in Ollama ollama_gpu1 (its /api/ps lists: nothing)"]
    assert [(row["present"], row["warm"], row["result"]) for row in result["rows"]] == [
        ("NO", "NOT LOADED", "FAILED"), ("yes", "NOT LOADED", "FAILED")]


def test_an_ollama_that_cannot_be_read_is_a_failure_and_its_models_unknown():
    stack = PER_GPU["stacks"][0]
    unread = {"item": stack, "failed": False, "msg": "cannot read Ollama at http://127.0.0.1:11434: cannot connect",
              "status_code": None}
    result = findings(PER_GPU, ollamas=[unread, ollama_read(PER_GPU["stacks"][1], ["mistral:latest"],
                                                           ["mistral:latest"])])
    assert result["failures"] == ["Ollama ollama_gpu0 (http://127.0.0.1:11434): cannot read Ollama at "
                                  "http://127.0.0.1:11434: cannot connect"]
    assert (result["rows"][0]["present"], result["rows"][0]["warm"]) == ("-", "-")


def test_a_failed_runner_is_named_with_its_url_model_and_message():
    targets = verify_targets(PER_GPU)
    bad = {"item": targets[1], "ok": False, "msg": "runner check health failed: ERROR",
           "checks": {"health": {"ok": False, "status": "ERROR"}, "llm": {"ok": None}}}
    result = findings(PER_GPU, runners=[ok_runner(targets[0]), bad])
    assert result["failures"] == [f"runner llm_runner_gpu1 (http://127.0.0.1:8001) with model {MISTRAL['model_id']}: "
                                  "runner check health failed: ERROR"]
    assert (result["rows"][1]["health"], result["rows"][1]["smoke"], result["rows"][1]["result"]) == (
        "ERROR", "-", "FAILED")


def test_skipped_model_checks_are_neither_rows_nor_failures():
    skipped = [{"item": stack, "skipped": True} for stack in PER_GPU["stacks"]]
    result = findings(PER_GPU, ollamas=skipped)
    assert result["failures"] == [] and {row["present"] for row in result["rows"]} == {"-"}


def test_ai_models_findings_and_an_unreadable_file():
    errors = {"errors": [{"index": 0, "field": "url", "message": "is not a URL.", "fix": "write http://..."}],
              "failed": False}
    result = findings(PER_GPU, ai_models=errors, ai_models_path="/p/aiModels.json")
    assert result["failures"] == ["/p/aiModels.json entry 0 field url: is not a URL. Fix: write http://..."]
    missing = {"errors": [], "failed": False, "msg": "/p/aiModels.json does not exist."}
    assert findings(PER_GPU, ai_models=missing, ai_models_path="/p/aiModels.json")["failures"] == [
        "/p/aiModels.json could not be validated (/p/aiModels.json does not exist.)"]
    assert findings(PER_GPU, ai_models=missing, ai_models_path="/p/aiModels.json", holds_tokens=True)["failures"] == [
        "/p/aiModels.json could not be validated (details hidden: the file holds tokens)"]
    valid = {"errors": [], "entries": [], "failed": False}
    assert findings(PER_GPU, ai_models=valid)["failures"] == []
    assert findings(PER_GPU, ai_models={"skipped": True})["failures"] == []


def test_a_plan_without_stacks_has_one_row_saying_so():
    plan = plan_ai_models(GPUS, [], host="h")
    result = findings(plan)
    assert result == {"rows": [{"host": "h", "runner": "(no llm model planned)", "model": "-", "health": "-",
                                "smoke": "-", "served": "-", "present": "-", "warm": "-", "result": "ok"}],
                      "failures": []}


def test_the_table_draws_every_host_with_the_shared_renderer():
    stack = SHARED["stacks"][0]
    rows = findings(SHARED, ollamas=[ollama_read(stack, ["llama3.1:8b"], [])])["rows"]
    lines = verify_table(rows + [dict(rows[0], host="other-host")]).splitlines()
    assert lines[0].split() == ["HOST", "RUNNER", "MODEL", "HEALTH", "SMOKE", "/llm", "AS", "PLANNED", "IN", "OLLAMA",
                                "WARM", "RESULT"]
    assert len(lines) == 4 and lines[3].startswith("other-host ")
    assert lines[2].split()[-3:] == ["NO", "cold", "FAILED"]


@pytest.mark.parametrize("call, message", [
    (lambda: verify_targets({"placement": []}), "verify_targets"),
    (lambda: verify_findings(PER_GPU, host="h", runners=[{"no": "item"}]), "verify_findings: cannot read"),
    (lambda: verify_table("rows"), "verify_table: expected a list of rows"),
])
def test_bad_input_is_refused(call, message):
    with pytest.raises(AnsibleFilterError, match=message):
        call()
