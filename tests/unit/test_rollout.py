"""The rollout's decisions (plugins/plugin_utils/rollout.py and the lpfleet.ai.rollout_* filters)."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.lpfleet.ai.plugins.filter.rollout import FilterModule
from ansible_collections.lpfleet.ai.plugins.plugin_utils import rollout

FILTERS = FilterModule().filters()
UNPLACED = [{"menu_index": 3, "model_id": "meta-llama/Meta-Llama-3.1-70B-Instruct", "reason": "too big"}]


def test_host_plan_pulls_what_is_missing_and_prunes_what_is_dropped_comparing_names_with_their_tag():
    plan = rollout.host_plan(["llama3.1:8b", "mistral", "library/qwen2.5:7b"], ["llama3.1:8b", "gemma2:9b"],
                             ai_models_changed=True, prune=True, unplaced=UNPLACED)
    assert plan == {"pull": ["mistral:latest", "qwen2.5:7b"], "prune": ["gemma2:9b"],
                    "ai_models_changed": True, "ollama_running": True,
                    "unplaced": ["meta-llama/Meta-Llama-3.1-70B-Instruct"]}
    # A planned name without a tag is the :latest Ollama lists: neither pulled nor pruned.
    same = rollout.host_plan(["mistral"], ["mistral:latest"], False, True)
    assert same["pull"] == [] and same["prune"] == []


def test_host_plan_without_prune_keeps_every_model():
    assert rollout.host_plan([], ["gemma2:9b"], False, prune=False)["prune"] == []


@pytest.mark.parametrize(("pull", "changed", "prune", "skip", "expected"), [
    ([], False, [], True, True),
    (["mistral:7b"], False, [], True, False),
    ([], True, [], True, False),
    ([], False, ["gemma2:9b"], True, False),
    ([], False, [], False, False),
])
def test_a_host_is_left_alone_only_when_nothing_changes_and_skipping_is_on(pull, changed, prune, skip, expected):
    plan = {"pull": pull, "ai_models_changed": changed, "prune": prune}
    assert rollout.is_unchanged(plan, skip) is expected
    assert FILTERS["rollout_is_unchanged"](plan, skip) is expected
    assert rollout.needs_switch(plan) is (pull != [] or changed or prune != [])


def test_each_result_has_its_message():
    plan = {"pull": ["mistral:7b"], "ai_models_changed": True}
    assert rollout.host_status("failed", plan, error="x", stage="pre-pull")["message"] == (
        "the pre-pull failed; the host was not switched and serves its previous menu")
    assert rollout.host_status("prepulled", plan)["pulled"] == ["mistral:7b"]
    switched = rollout.host_status("switched", plan, pruned=["gemma2:9b"])
    assert switched == {"result": "switched", "pulled": ["mistral:7b"], "ai_models_changed": True,
                        "pruned": ["gemma2:9b"], "message": "switched to the new menu and verified"}
    assert rollout.host_status("switched", plan, prune_error="boom")["message"].endswith("pruning failed")
    assert rollout.host_status("recovered", rollout_id="20260101T000000Z")["recovered_from"] == "20260101T000000Z"
    assert "restore" in rollout.host_status("restore_failed", plan, error="a", restore_error="b")["message"]
    with pytest.raises(ValueError, match="unknown rollout result 'done'"):
        rollout.host_status("done")
    with pytest.raises(AnsibleFilterError, match="rollout_status"):
        FILTERS["rollout_status"]("done")


def test_the_record_is_finished_only_when_the_host_is_done():
    status = rollout.host_status("switched", {"pull": ["mistral:7b"], "ai_models_changed": True})
    document = rollout.record("20260101T000000Z", "2026-01-01T00:00:00Z", status, "2026-01-01T00:05:00Z")
    assert document["finished"] == "2026-01-01T00:05:00Z" and document["error"] is None
    assert document["pruned"] == [] and document["result"] == "switched"
    for result in ("prepulled", "switching", "restoring"):
        waiting = rollout.record("r", "s", rollout.host_status(result, {"pull": []}), "2026-01-01T00:05:00Z")
        assert waiting["finished"] is None, result


def test_a_host_lost_while_switching_or_restoring_is_unreachable_mid_switch():
    switching = rollout.host_status("switching", {"pull": ["mistral:7b"], "ai_models_changed": True})
    restoring = rollout.host_status("restoring", {"pull": [], "ai_models_changed": True}, error="verify: 500")
    statuses = {
        "lost": switching, "lost-restoring": restoring, "ok": rollout.host_status("switched", {"pull": []}),
        "waiting": rollout.host_status("prepulled", {"pull": ["mistral:7b"]}),
        "waiting-gone": rollout.host_status("prepulled", {"pull": []}),
    }
    final = rollout.outcomes(["lost", "lost-restoring", "ok", "waiting", "waiting-gone", "never"], statuses,
                             active_hosts=["ok", "waiting"])
    assert final["lost"]["result"] == "unreachable" and final["lost"]["lost_during"] == "switching"
    assert "unreachable mid-switch" in final["lost"]["message"]
    assert "serves its previous menu" not in final["lost"]["message"]
    assert final["lost"]["pulled"] == ["mistral:7b"]
    assert final["lost-restoring"]["lost_during"] == "restoring" and final["lost-restoring"]["error"] == "verify: 500"
    assert final["ok"]["result"] == "switched"
    assert final["waiting"]["result"] == "not_switched"
    assert "stopped before this host's batch" in final["waiting"]["message"]
    assert "unreachable before its switch" in final["waiting-gone"]["message"]
    assert final["never"]["result"] == "not_run"
    # Still reachable yet left in progress: said as such, never hidden.
    assert "still reachable" in rollout.outcome(switching, active=True)["message"]


@pytest.mark.parametrize(("batch", "failed", "percentage", "stops"), [
    (["a", "b", "c", "d"], [], 0, False),
    (["a", "b", "c", "d"], ["a"], 0, True),
    (["a", "b", "c", "d"], ["a"], 25, False),
    (["a", "b", "c", "d"], ["a", "b"], 25, True),
    (["a"], ["a"], 100, True),
    ([], [], 0, False),
])
def test_batch_failure_accounting_is_ansibles(batch, failed, percentage, stops):
    assert rollout.batch_stops(batch, failed, percentage) is stops


def test_failure_text_names_the_task_and_the_first_failed_items_message():
    result = {"msg": "One or more items failed", "results": [{"failed": False, "msg": "fine"},
                                                             {"failed": True, "msg": " pull of x failed \n"}]}
    assert rollout.failure_text({"name": "Pre-pull"}, result) == "Pre-pull: pull of x failed"
    assert rollout.failure_text({"name": "Write"}, {"msg": "disk full"}) == "Write: disk full"
    assert rollout.failure_text(None, None) == "?: no message"


def test_restore_checks_pair_each_llm_entry_with_its_runner():
    runners = [{"container": "llm_runner", "url": "http://127.0.0.1:8000"},
               {"container": "llm_runner_gpu1", "url": "http://127.0.0.1:8001"}]
    entries = [{"pipeline": "llm", "model_id": "a", "url": "http://llm_runner:8000"},
               {"pipeline": "llm", "model_id": "b", "url": "http://127.0.0.1:8001/"},
               {"pipeline": "text-to-image", "model_id": "c"},
               {"pipeline": "llm", "model_id": "d", "url": "http://elsewhere:9000"}]
    pairs = rollout.restore_checks(entries, runners)
    assert [(runner["container"], entry["model_id"]) for runner, entry in pairs] == [
        ("llm_runner", "a"), ("llm_runner_gpu1", "b")]


def test_tables_keep_the_columns_operators_and_tests_read():
    plans = {"h1": rollout.host_plan(["mistral:7b"], [], True, True, UNPLACED)}
    statuses = {"h1": rollout.host_status("prepulled", plans["h1"]),
                "h2": rollout.host_status("failed", error="Pre-pull: cut", stage="pre-pull")}
    table = rollout.plan_table(["h1", "h2", "h3"], plans, statuses).splitlines()
    assert table[0].split() == ["HOST", "PULL", "aiModels.json", "PRUNE", "NOT", "PLACED", "STATE"]
    assert table[1].split()[:5] == ["h1", "mistral:7b", "changes", "-", "1"]
    assert "pre-pulled, waits for its batch" in table[1]
    assert "FAILED: Pre-pull: cut" in table[2] and "not planned (unreachable?)" in table[3]
    assert "dry run" in rollout.plan_table(["h1"], plans, {}, check_mode=True)
    final = rollout.outcomes(["h2", "h1"], statuses, ["h1"])
    summary = FILTERS["rollout_summary_table"](final).splitlines()
    assert summary[0].split() == ["HOST", "RESULT", "PULLED", "PRUNED", "DETAIL"]
    assert summary[1].split()[:5] == ["h2", "failed", "-", "-", "the"]
    assert summary[1].endswith("serves its previous menu: Pre-pull: cut")
    assert summary[2].split()[:3] == ["h1", "not_switched", "mistral:7b"]


def test_the_batch_verdict_counts_restored_and_lost_hosts_and_says_why_the_rollout_stopped():
    statuses = {"a": rollout.host_status("switched", {"pull": []}), "b": rollout.host_status("restored", error="x"),
                "c": rollout.host_status("switching", {"pull": []}), "d": rollout.host_status("unchanged")}
    verdict = rollout.batch_verdict(["a", "b", "c", "d"], statuses, active=["a", "b", "d"], max_fail_percentage=50,
                                    number=2)
    assert verdict["failed"] == ["b", "c"] and verdict["stop"] is False and verdict["message"] is None
    verdict = rollout.batch_verdict(["a", "b", "c", "d"], statuses, active=["a", "b", "d"], max_fail_percentage=0,
                                    number=2)
    assert verdict["stop"] is True
    assert verdict["message"].startswith("the rollout stopped after batch 2, where 2 of 4 host(s) failed (b, c;")
    later = rollout.stopped_status(verdict, {"pull": ["mistral:7b"]})
    assert later == {"result": "not_switched", "message": verdict["message"], "pulled": ["mistral:7b"]}
    # A host lost before writing its switching status is not active: it counts as failed.
    assert rollout.batch_verdict(["e"], {"e": rollout.host_status("prepulled", {"pull": []})}, [], 100)["stop"]
    assert FILTERS["rollout_batch_verdict"](["a"], statuses, ["a"], "0", "1")["stop"] is False


def test_failures_name_each_failed_host_and_say_what_happened():
    final = {"ok": {"result": "switched"}, "same": {"result": "unchanged"},
             "r": rollout.host_status("restored", error="Verify: not served"),
             "lost": rollout.outcome(rollout.host_status("switching", {"pull": []}), active=False),
             "pre": rollout.host_status("failed", error="Pre-pull: cut", stage="pre-pull")}
    lines = rollout.failures(final)
    assert len(lines) == 3
    assert lines[0].startswith("r: the switch failed (Verify: not served). The host was restored")
    assert lines[1].startswith("lost: unreachable: unreachable mid-switch")
    assert lines[2] == ("pre: failed: the pre-pull failed; the host was not switched and serves its previous menu "
                        "(Pre-pull: cut).")


def test_the_last_record_is_the_newer_and_a_switch_in_progress_means_cut_off():
    on_host = rollout.record("20260101T000000Z", "s", rollout.host_status("switched", {"pull": []}), "f")
    switching = rollout.record("20260102T000000Z", "s", rollout.host_status("switching", {"pull": ["m:7b"]}), "f")
    assert rollout.last_record(on_host, None) == on_host
    assert rollout.last_record(None, None) is None
    lost = rollout.last_record(on_host, switching)
    assert lost["rollout_id"] == "20260102T000000Z" and lost["result"] == "unreachable"
    assert "unreachable mid-switch" in lost["message"] and lost["pulled"] == ["m:7b"]
    # Same rollout: the finished outcome wins over the switching record left on the host.
    done = rollout.record("20260102T000000Z", "s", rollout.host_status("switched", {"pull": ["m:7b"]}), "f")
    assert rollout.last_record(switching, done)["result"] == "switched"
    assert FILTERS["rollout_last_record"](switching)["result"] == "unreachable"


def test_by_host_reads_one_variable_of_each_host_and_none_where_there_is_none():
    by_host = FILTERS["rollout_by_host"]
    hostvars = {"a": {"rollout_status": {"result": "switched"}, "rollout_plan": {"pull": []}}, "b": {}}
    assert by_host(["a", "b", "gone"], hostvars) == {"a": {"result": "switched"}, "b": None, "gone": None}
    assert by_host(["a"], hostvars, "rollout_plan") == {"a": {"pull": []}}
    with pytest.raises(AnsibleFilterError, match="rollout_by_host.*list of host names"):
        by_host("a", hostvars)


SITE_OUTCOME = {"site": "ams1", "cache_host": "c1", "copied": ["mistral:7b"], "local": [], "bytes_copied": 10,
                "fallback": [{"model": "qwen2.5:7b", "reason": "the cache host could not be reached (timed out)"}],
                "message": "qwen2.5:7b from upstream: ..."}


def test_the_record_says_which_models_fell_back_to_upstream_and_why():
    status = rollout.host_status("prepulled", {"pull": ["mistral:7b", "qwen2.5:7b"]})
    document = FILTERS["rollout_record"](status, "r1", "t0", "t1", site_outcome=SITE_OUTCOME)
    assert document["site_fallback"] == [{"model": "qwen2.5:7b",
                                          "reason": "the cache host could not be reached (timed out)"}]
    # A host without a site (no outcome) or whose cache gave everything: an empty list, said nowhere.
    assert FILTERS["rollout_record"](status, "r1", "t0", "t1")["site_fallback"] == []
    assert rollout.record("r1", "t0", status, "t1", dict(SITE_OUTCOME, fallback=[]))["site_fallback"] == []
    with pytest.raises(AnsibleFilterError, match="ollama_models_site_outcome"):
        FILTERS["rollout_record"](status, "r1", "t0", "t1", site_outcome={"fallback": "qwen2.5:7b"})


def test_the_summary_says_per_host_which_models_came_from_upstream_instead_of_the_site_cache():
    statuses = {"m1": rollout.host_status("switched", {"pull": ["qwen2.5:7b"]}),
                "m2": rollout.host_status("switched", {"pull": ["qwen2.5:7b"]})}
    final = FILTERS["rollout_outcomes"](["m1", "m2"], statuses, ["m1", "m2"], {"m1": SITE_OUTCOME, "m2": None})
    assert final["m1"]["site_fallback"][0]["model"] == "qwen2.5:7b" and "site_fallback" not in final["m2"]
    summary = FILTERS["rollout_summary_table"](final).splitlines()
    assert summary[1].startswith("m1") and summary[1].endswith(
        "switched to the new menu and verified; from upstream, not the site's cache: "
        "qwen2.5:7b (the cache host could not be reached (timed out))")
    assert summary[2].rstrip().endswith("switched to the new menu and verified")
