"""The fleet report renders every host, placement, runner and unplaced item, as text and Markdown."""

import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.lpfleet.ai.plugins.filter.tables import fleet_report

GPU_4090 = {"index": 0, "name": "NVIDIA GeForce RTX 4090", "memory_total_mib": 24564}
PLAN = {
    "placement": [
        {"gpu_index": 0, "pipeline": "llm", "model_id": "meta-llama/Meta-Llama-3.1-8B-Instruct", "warm": True,
         "vram_mib": 7630, "managed": False, "ollama_tag": "llama3.1:8b", "stack": "default"},
        {"gpu_index": 0, "pipeline": "llm", "model_id": "mistralai/Mistral-7B-Instruct-v0.3", "warm": False,
         "vram_mib": 7630, "managed": False, "ollama_tag": "mistral:7b", "stack": "default"},
    ],
    "unplaced": [{"menu_index": 2, "model_id": "meta-llama/Meta-Llama-3.1-70B-Instruct",
                  "reason": "host a: llm meta-llama/Meta-Llama-3.1-70B-Instruct needs 38147 MiB"}],
}
RECORDS = [
    {"host": "b", "error": "unreachable"},
    {"host": "a", "gpus": [GPU_4090], "plan": PLAN, "models_present": ["llama3.1:8b"],
     "models_loaded": ["llama3.1:8b"],
     "runners": [{"name": "llm_runner", "url": "http://127.0.0.1:8000", "ok": True, "status": "OK"}]},
]


def test_text_report_has_every_section_and_state():
    text = fleet_report(RECORDS)
    assert text.splitlines()[0] == "== Hosts =="
    assert "RTX 4090 24 GiB" in text
    assert "FAILED: unreachable" in text
    assert "pulled, loaded" in text          # llama3.1:8b is present and loaded
    assert "MISSING" in text                  # mistral:7b was planned but is not in the store
    assert "1/1 healthy" in text
    assert "a: host a: llm meta-llama/Meta-Llama-3.1-70B-Instruct needs 38147 MiB" in text
    # hosts sorted by name: a before b
    lines = text.splitlines()
    assert lines[2].startswith("a ") and lines[3].startswith("b ")


def test_markdown_report_is_tables():
    markdown = fleet_report(RECORDS, format="markdown")
    assert markdown.startswith("# lpfleet fleet report\n")
    assert "| HOST | GPUS | PLACED | UNPLACED | MODELS PRESENT | LOADED | RUNNERS |" in markdown
    assert "- a: host a: llm" in markdown


@pytest.mark.parametrize("bad", [None, "text", [{"no_host": 1}], [1]])
def test_bad_records_are_refused(bad):
    with pytest.raises(AnsibleFilterError, match="list of host records"):
        fleet_report(bad)


def test_unknown_format_is_refused():
    with pytest.raises(AnsibleFilterError, match="format must be"):
        fleet_report(RECORDS, format="html")


def test_a_reason_that_names_its_host_is_not_prefixed_twice():
    plan = {"placement": [], "unplaced": [{"menu_index": 0, "model_id": "m", "reason": "a: m needs 9 MiB"}]}
    text = fleet_report([{"host": "a", "plan": plan}])
    assert "\na: m needs 9 MiB" in text and "a: a:" not in text


# --- issue 12: no secret in any format ----------------------------------------------------------

SECRETS = ["tok-en\"quote", "menu-secret-1", "pw-in-url-2", "api-secret-3"]
RECORD_WITH_SECRETS = {
    "host": "c",
    "plan": {"placement": [], "unplaced": [],
             "ai_models": [{"pipeline": "llm", "model_id": "a/b", "url": "http://llm_runner:8000",
                            "token": SECRETS[0]},
                           {"pipeline": "text-to-image", "model_id": "c/d", "url": "http://t2i:9000",
                            "Token": SECRETS[1], "api_key": SECRETS[3]}]},
    "runners": [{"name": "llm_runner", "url": f"http://user:{SECRETS[2]}@127.0.0.1:8000", "ok": False,
                 "detail": f"GET http://user:{SECRETS[2]}@127.0.0.1:8000/health refused"}],
}


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_no_secret_reaches_any_format(fmt):
    report = fleet_report(RECORDS + [RECORD_WITH_SECRETS], format=fmt)
    for secret in SECRETS:
        for form in (secret, json.dumps(secret)[1:-1]):
            assert form not in report, (fmt, form)
    assert "http://user:********@127.0.0.1:8000" in report


def test_json_format_is_the_records_with_secrets_masked():
    document = json.loads(fleet_report([RECORD_WITH_SECRETS], format="json", generated="2026-11-30T06:00:00Z"))
    assert document["generated"] == "2026-11-30T06:00:00Z"
    (record,) = document["hosts"]
    assert [entry.get("token", entry.get("Token")) for entry in record["plan"]["ai_models"]] == ["********"] * 2
    assert record["plan"]["ai_models"][1]["api_key"] == "********"
    assert record["plan"]["ai_models"][0]["model_id"] == "a/b"


@pytest.mark.parametrize("menu_tag, listed", [("mistral", "mistral:latest"), ("Mistral:latest", "mistral:latest"),
                                              ("registry.ollama.ai/library/mistral", "mistral:latest")])
def test_a_menu_tag_written_otherwise_than_ollama_lists_it_is_pulled_not_missing(menu_tag, listed):
    """The menu may write `ollama_tag: mistral`; Ollama lists `mistral:latest`: one model, not MISSING."""
    plan = {"placement": [{"gpu_index": 0, "pipeline": "llm", "model_id": "mistralai/Mistral-7B-Instruct-v0.3",
                           "warm": True, "vram_mib": 7630, "managed": False, "ollama_tag": menu_tag}],
            "unplaced": []}
    record = {"host": "a", "gpus": [GPU_4090], "plan": plan, "models_present": [listed], "models_loaded": [],
              "runners": []}
    text = fleet_report([record])
    assert "MISSING" not in text and "pulled" in text
    loaded = fleet_report([dict(record, models_loaded=[listed])])
    assert "pulled, loaded" in loaded


# --- the host record and the last rollout, built in Python (plugins/plugin_utils/fleet_report.py) ------

import base64  # noqa: E402

from ansible_collections.lpfleet.ai.plugins.filter.records import fleet_report_record, fleet_report_records  # noqa: E402

STACK = {"name": "default", "ollama_container": "ollama", "runner_container": "llm_runner",
         "ollama_host_url": "http://127.0.0.1:11434", "runner_host_url": "http://127.0.0.1:8000"}


def slurped(text):
    return {"content": base64.b64encode(text.encode()).decode(), "source": "/var/lib/lpfleet/last-rollout.json"}


def test_a_record_from_what_the_host_answered():
    read = {"item": STACK, "models": [{"name": "Mistral:latest", "canonical": "Mistral:latest"}],
            "loaded": [{"name": "Mistral:latest", "canonical": "Mistral:latest"}], "failed": False}
    unread = {"item": dict(STACK, ollama_container="ollama_gpu1", ollama_host_url="http://127.0.0.1:11435"),
              "failed": False, "msg": "cannot read Ollama at http://127.0.0.1:11435: cannot connect"}
    health = {"item": STACK, "ok": True, "status": "OK"}
    smoke = {"item": {"stack": STACK, "model": {"model_id": "m/x"}}, "ok": False, "msg": " check llm failed \n"}
    record = fleet_report_record(PLAN, host="a", gpus=[GPU_4090], ollamas=[read, unread], runners=[health, smoke],
                                 last_rollout=slurped('{"result": "ok", "rollout_id": "r1"}'))
    assert record["models_present"] == record["models_loaded"] == ["Mistral:latest"]
    assert record["problems"] == ["Ollama ollama_gpu1 (http://127.0.0.1:11435): cannot read Ollama at "
                                  "http://127.0.0.1:11435: cannot connect"]
    assert record["runners"] == [
        {"name": "llm_runner", "url": "http://127.0.0.1:8000", "ok": True, "status": "OK", "detail": None},
        {"name": "llm_runner m/x", "url": "http://127.0.0.1:8000", "ok": False, "status": None,
         "detail": "check llm failed"}]
    assert record["last_rollout"] == {"result": "ok", "rollout_id": "r1"} and record["error"] is None
    text = fleet_report([record])
    assert "== Problems ==\na: Ollama ollama_gpu1" in text
    assert text.splitlines()[-1].split() == ["a", "ok", "r1", "-", "-"]


def test_a_last_rollout_that_is_not_json_is_a_problem_not_a_crash():
    record = fleet_report_record(PLAN, host="a", last_rollout=slurped("{not json"))
    assert record["last_rollout"] is None
    assert record["problems"][0].startswith("the last rollout's record /var/lib/lpfleet/last-rollout.json is not JSON")


def test_records_are_gathered_by_host_and_a_host_without_one_is_named():
    hostvars = {"b": {"fleet_report_record": {"host": "b", "error": None}}, "a": {}}
    assert fleet_report_records(["b", "a", "c"], hostvars) == [
        {"host": "a", "error": "the host could not be read"}, {"host": "b", "error": None},
        {"host": "c", "error": "the host could not be read"}]


def test_the_last_rollout_section_in_text_and_markdown():
    records = [dict(RECORDS[1], last_rollout={"result": "failed", "rollout_id": "r2", "finished": "t",
                                              "message": "rolled back", "error": "pull failed"}),
               dict(RECORDS[1], host="c"), RECORDS[0]]
    text = fleet_report(records)
    section = text.split("== Last rollout ==\n")[1].splitlines()
    assert section[0].split() == ["HOST", "RESULT", "ROLLOUT", "FINISHED", "DETAIL"]
    assert section[1].split(None, 4) == ["a", "failed", "r2", "t", "rolled back: pull failed"]
    assert section[2].split(None, 4) == ["c", "none", "-", "-", "no rollout recorded on this host"]
    assert len(section) == 3  # b could not be read: no line
    markdown = fleet_report(records, format="markdown")
    assert "| a | failed | r2 | t | rolled back: pull failed |" in markdown
    assert fleet_report([RECORDS[0]]).endswith("== Last rollout ==\n(none)")


def test_the_last_rollout_says_which_models_came_from_upstream_instead_of_the_site_cache():
    fallback = [{"model": "qwen2.5:7b", "reason": "the cache host's pull failed (boom)"}]
    records = [dict(RECORDS[1], last_rollout={"result": "switched", "rollout_id": "r3", "finished": "t",
                                              "message": "switched", "site_fallback": fallback})]
    section = fleet_report(records).split("== Last rollout ==\n")[1].splitlines()
    assert section[1].split(None, 4)[4] == (
        "switched; from upstream, not the site's cache: qwen2.5:7b (the cache host's pull failed (boom))")
    assert "from upstream, not the site's cache: qwen2.5:7b" in fleet_report(records, format="markdown")
