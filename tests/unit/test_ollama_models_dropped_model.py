"""A model taken off the menu while its Ollama still has it loaded (by traffic, or by the smoke request of the
rollout that added it), then playbooks/site.yml: the role ollama_models (main) then the role verify, as site.yml
runs them, by ansible-playbook against the Ollama-like and runner-like fixture servers.

ollama_models must unload what the plan no longer puts in an Ollama, as the rollout's switch does before its verify,
so that verify's "served as planned" check passes; the model stays in the volume unless ollama_models_prune says
otherwise (found by make bench: "Ollama ollama had mistral:7b loaded before the smoke requests")."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from http_servers import OllamaServer, RunnerServer
from test_playbooks_syntax import run_playbook, write_inventory

from ansible_collections.lpfleet.ai.plugins.filter.plan_ai_models import plan_ai_models

GPUS = [{"index": 0, "name": "NVIDIA GeForce RTX 4090", "memory_total_mib": 24564}]
LLAMA = {"pipeline": "llm", "model_id": RunnerServer.MODEL_ID, "ollama_tag": "llama3.1:8b", "warm": True,
         "price_per_unit": 0.18, "currency": "USD", "pixels_per_unit": 1000000}
TOKEN = "unit-test-runner-token"
FOREVER = timedelta(days=365 * 300)


def plan_without_mistral(ollama: OllamaServer, runner: RunnerServer) -> dict:
    """The plan of the menu after the edit (llama3.1:8b only), its stack at the fixture servers."""
    plan = plan_ai_models(GPUS, [LLAMA], host="ghost")
    plan["stacks"][0].update(ollama_host_url=ollama.url, runner_host_url=runner.url)
    return plan


def ollama_with_mistral_loaded() -> OllamaServer:
    """llama3.1:8b (warm) and mistral:7b (cold, dropped from the menu) in the volume, both loaded."""
    ollama = OllamaServer()
    for tag in ("llama3.1:8b", "mistral:7b"):
        ollama.registry[tag] = {"digest": tag.encode().hex()[:64].ljust(64, "0"), "layers": list(OllamaServer.LAYERS)}
        ollama.install(tag)
        ollama.loaded[tag] = datetime.now(UTC) + FOREVER
    return ollama


def role(name: str, **more) -> dict:
    return {"name": f"Run {name}", "ansible.builtin.include_role": dict({"name": f"lpfleet.ai.{name}"}, **more)}


# As playbooks/site.yml runs them.
SITE = [role("ollama_models"), role("verify")]
# As the rollout's switch runs them (roles/rollout/tasks/switch.yml and prune.yml): no prune until verify passed.
ROLLOUT_SWITCH = [dict(role("ollama_models"), vars={"ollama_models_prune": False}), role("verify"),
                  role("ollama_models", tasks_from="prune")]


def run_site_roles(tmp_path, plan: dict, *args: str, tasks: list[dict] = SITE, **variables):
    """TASKS (the roles of site.yml by default) on the fixtures; the applied-state records kept in TMP_PATH."""
    play = {"hosts": "ghost", "gather_facts": False,
            "module_defaults": {"lpfleet.ai.applied_state": {"dir": str(tmp_path / "applied")}},
            # No progress lines: ollama_model then runs directly, not as an async job (seconds per task).
            "vars": dict({"lpfleet_plan": plan, "lpfleet_runner_token": TOKEN, "verify_ai_models": False,
                          "ollama_models_progress_interval": 0}, **variables),
            "tasks": tasks}
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([play]))
    inventory = write_inventory(tmp_path / "hosts.yml", {"ghost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}})
    return run_playbook(tmp_path, "-i", str(inventory), str(playbook), *args, timeout=240)


def test_site_unloads_a_dropped_model_and_keeps_it_in_the_volume_and_verify_passes(tmp_path):
    with ollama_with_mistral_loaded() as ollama, RunnerServer(ollama=ollama, token=TOKEN) as runner:
        done = run_site_roles(tmp_path, plan_without_mistral(ollama, runner))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "had mistral:7b loaded before the smoke requests" not in done.stdout
        assert sorted(ollama.loaded) == ["llama3.1:8b"]
        # ollama_models_prune is false by default: the model stays in the volume, only unloaded.
        assert sorted(ollama.models) == ["llama3.1:8b", "mistral:7b"]
        assert ollama.calls("/api/delete") == [] and len(unloads_and_deletes(ollama)) == 1
        # Applied again (not skipped as unchanged): nothing left to unload.
        again = run_site_roles(tmp_path, plan_without_mistral(ollama, runner), tasks=SITE[:1],
                               lpfleet_skip_unchanged=False)
        assert again.returncode == 0, again.stdout + again.stderr
        assert len(unloads_and_deletes(ollama)) == 1 and sorted(ollama.models) == ["llama3.1:8b", "mistral:7b"]


def unloads_and_deletes(ollama: OllamaServer) -> list[tuple[str, str]]:
    """The unload requests (/api/generate with keep_alive 0) and the deletes, in the order Ollama got them."""
    return [(request["path"], request["body"]["model"]) for request in ollama.requests
            if request["path"] == "/api/delete"
            or (request["path"] == "/api/generate" and request["body"].get("keep_alive") == 0)]


# site.yml with ollama_models_prune, and the rollout's order (switch with ollama_models_prune false, verify, then
# prune): the same end, verify passing in both.
@pytest.mark.parametrize("how", [{"ollama_models_prune": True}, {"tasks": ROLLOUT_SWITCH}], ids=["site", "rollout"])
def test_a_pruned_dropped_model_is_unloaded_then_deleted(tmp_path, how):
    with ollama_with_mistral_loaded() as ollama, RunnerServer(ollama=ollama, token=TOKEN) as runner:
        done = run_site_roles(tmp_path, plan_without_mistral(ollama, runner), **how)
        assert done.returncode == 0, done.stdout + done.stderr
        assert sorted(ollama.loaded) == ["llama3.1:8b"] and sorted(ollama.models) == ["llama3.1:8b"]
        # Ollama's own delete leaves a loaded model in memory: it is unloaded first, as `ollama rm` does.
        assert unloads_and_deletes(ollama) == [("/api/generate", "mistral:7b"), ("/api/delete", "mistral:7b")]


def test_check_mode_says_it_would_unload_and_unloads_nothing(tmp_path):
    with ollama_with_mistral_loaded() as ollama, RunnerServer(ollama=ollama, token=TOKEN) as runner:
        done = run_site_roles(tmp_path, plan_without_mistral(ollama, runner), "--check", tasks=SITE[:1])
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"changed: [ghost] => (item={ollama.url}: mistral:7b)" in done.stdout
        assert sorted(ollama.loaded) == ["llama3.1:8b", "mistral:7b"]
        assert ollama.calls("/api/generate") == []


def test_unload_takes_from_each_ollama_only_what_its_stack_does_not_plan(tmp_path):
    """per_gpu: two Ollamas; mistral:7b is planned in the second one only. Loaded in both, it is unloaded from the
    first and stays loaded in the second (the entry point `unload`, as main and prune run it)."""
    with ollama_with_mistral_loaded() as first, ollama_with_mistral_loaded() as second:
        plan = {"stacks": [{"ollama_host_url": first.url, "models": [{"ollama_tag": "llama3.1:8b"}]},
                           {"ollama_host_url": second.url, "models": [{"ollama_tag": "mistral:7b"}]}]}
        unload = role("ollama_models", tasks_from="unload")
        done = run_site_roles(tmp_path, plan, tasks=[unload])
        assert done.returncode == 0, done.stdout + done.stderr
        assert sorted(first.loaded) == ["llama3.1:8b"] and sorted(second.loaded) == ["mistral:7b"]
        assert sorted(first.models) == sorted(second.models) == ["llama3.1:8b", "mistral:7b"]


REPO = Path(__file__).resolve().parents[2]


def traffic_loads(model: str, ollama: OllamaServer) -> dict:
    """A request for MODEL reaching its Ollama, as traffic does while go-livepeer still offers it."""
    return {"name": f"Traffic loads {model}", "ansible.builtin.uri": {
        "url": f"{ollama.url}/api/generate", "method": "POST", "body_format": "json",
        "body": {"model": model, "keep_alive": "5m"}}}


def roles_as_run_by(tasks: list[dict], ollama: OllamaServer) -> list[dict]:
    """TASKS (a real task file's) with ollama_models and verify as they are, ai_models replaced by traffic that loads
    the dropped mistral:7b while go-livepeer is told of the new menu, and the other roles (stack, prepull) left out."""
    kept = []
    for task in tasks:
        role = (task.get("ansible.builtin.import_role") or task.get("ansible.builtin.include_role") or {}).get("name")
        if role == "lpfleet.ai.ai_models":
            kept.append(traffic_loads("mistral:7b", ollama))
        elif role in ("lpfleet.ai.ollama_models", "lpfleet.ai.verify"):
            kept.append(task)
    return kept


def switch_block() -> list[dict]:
    """The rollout's switch and verify (roles/rollout/tasks/switch.yml's block 'Switch to the new menu and verify')."""
    tasks = yaml.safe_load((REPO / "roles/rollout/tasks/switch.yml").read_text())
    outer = next(task for task in tasks if task.get("name") == "Switch, restore on failure, prune on success")
    return next(task for task in outer["block"] if task.get("name") == "Switch to the new menu and verify")["block"]


def test_site_unloads_what_traffic_loaded_again_before_go_livepeer_took_the_new_menu(tmp_path):
    """playbooks/tasks/site_models.yml's order (then verify, as site.yml): mistral:7b, dropped, is loaded again by
    traffic after ollama_models unloaded it; the unload after ai_models takes it out before verify."""
    with ollama_with_mistral_loaded() as ollama, RunnerServer(ollama=ollama, token=TOKEN) as runner:
        site_models = yaml.safe_load((REPO / "playbooks/tasks/site_models.yml").read_text())
        tasks = [*roles_as_run_by(site_models, ollama), role("verify")]
        assert [task["name"] for task in tasks][-3:] == [
            "Traffic loads mistral:7b", "Unload what traffic loaded again that the plan does not put in each Ollama",
            "Run verify"]
        done = run_site_roles(tmp_path, plan_without_mistral(ollama, runner), tasks=tasks)
        assert done.returncode == 0, done.stdout + done.stderr
        assert sorted(ollama.loaded) == ["llama3.1:8b"]
        assert unloads_and_deletes(ollama) == [("/api/generate", "mistral:7b")] * 2
        # Once more: nothing to unload, nothing changed (the traffic stand-in left out: it always loads).
        again = run_site_roles(tmp_path, plan_without_mistral(ollama, runner),
                               tasks=[task for task in tasks if not task["name"].startswith("Traffic")])
        assert again.returncode == 0, again.stdout + again.stderr
        assert "changed=0" in again.stdout, again.stdout
        assert len(unloads_and_deletes(ollama)) == 2


def test_site_models_in_check_mode_says_it_would_unload_and_unloads_nothing(tmp_path):
    with ollama_with_mistral_loaded() as ollama, RunnerServer(ollama=ollama, token=TOKEN) as runner:
        site_models = yaml.safe_load((REPO / "playbooks/tasks/site_models.yml").read_text())
        done = run_site_roles(tmp_path, plan_without_mistral(ollama, runner), "--check",
                              tasks=roles_as_run_by(site_models, ollama))
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.count(f"changed: [ghost] => (item={ollama.url}: mistral:7b)") == 2, done.stdout
        assert sorted(ollama.loaded) == ["llama3.1:8b", "mistral:7b"] and ollama.calls("/api/generate") == []


def test_the_rollout_switch_unloads_what_traffic_loaded_again_before_its_verify(tmp_path):
    with ollama_with_mistral_loaded() as ollama, RunnerServer(ollama=ollama, token=TOKEN) as runner:
        tasks = roles_as_run_by(switch_block(), ollama)
        assert [task["name"] for task in tasks] == [
            "Pull what is still missing and load the warm models", "Traffic loads mistral:7b",
            "Unload what the new plan does not put in each Ollama", "Verify the runners with every model"]
        done = run_site_roles(tmp_path, plan_without_mistral(ollama, runner), tasks=tasks)
        assert done.returncode == 0, done.stdout + done.stderr
        assert sorted(ollama.loaded) == ["llama3.1:8b"] and sorted(ollama.models) == ["llama3.1:8b", "mistral:7b"]


def test_the_check_of_every_role_finds_a_dropped_model_loaded_by_hand_and_the_next_run_unloads_it(tmp_path):
    """preflight's one check (applied_state with roles: the watch built from the role's files) and the role's own
    check agree: in sync after the apply; a model the plan does not put in that Ollama, loaded later with the menu
    unchanged, is drift, so ollama_models applies and unloads it, and verify passes."""
    check_all = {"name": "Check every role", "lpfleet.ai.applied_state": {"roles": ["ollama_models"]},
                 "register": "whole"}
    check_own = role("ollama_models", tasks_from="applied")
    show = {"name": "Show", "ansible.builtin.debug": {
        "msg": "WHOLE={{ whole.in_sync }}|{{ whole.reason }} OWN={{ ollama_models_applied.in_sync }}|"
               "{{ ollama_models_applied.reason }}"}}
    with ollama_with_mistral_loaded() as ollama, RunnerServer(ollama=ollama, token=TOKEN) as runner:
        plan = plan_without_mistral(ollama, runner)
        assert run_site_roles(tmp_path, plan).returncode == 0
        before = run_site_roles(tmp_path, plan, tasks=[check_all, check_own, show])
        assert before.returncode == 0 and "WHOLE=True| OWN=True|" in before.stdout, before.stdout
        ollama.loaded["mistral:7b"] = datetime.now(UTC) + FOREVER  # `ollama run mistral:7b` by hand
        after = run_site_roles(tmp_path, plan, tasks=[check_all, check_own, show])
        reason = f"model mistral:7b is loaded in the Ollama at {ollama.url}, which the plan does not put there"
        assert f"WHOLE=False|ollama_models: {reason} OWN=False|{reason}" in after.stdout, after.stdout
        fixed = run_site_roles(tmp_path, plan)
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr
        assert sorted(ollama.loaded) == ["llama3.1:8b"]
        assert "WHOLE=True| OWN=True|" in run_site_roles(tmp_path, plan, tasks=[check_all, check_own, show]).stdout
