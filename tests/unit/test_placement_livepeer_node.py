"""Reading go-livepeer's -nvidia from docker inspect and systemctl show, and checking it against a plan."""

import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.lpfleet.ai.plugins.filter.livepeer_node import livepeer_node, nvidia_flag
from ansible_collections.lpfleet.ai.plugins.filter.livepeer_nvidia_problem import livepeer_nvidia_problem
from ansible_collections.lpfleet.ai.plugins.filter.plan_ai_models import plan_ai_models

WHISPER = {"pipeline": "audio-to-text", "model_id": "openai/whisper-large-v3", "warm": True, "price_per_unit": 1}
T2I = {"pipeline": "text-to-image", "model_id": "SG161222/RealVisXL_V4.0_Lightning", "warm": True,
       "price_per_unit": 1}
LLAMA = {"pipeline": "llm", "model_id": "meta-llama/Meta-Llama-3.1-8B-Instruct", "warm": True,
         "price_per_unit": 0.18, "currency": "USD", "pixels_per_unit": 1000000}
DOCS_HOST = [{"index": 0, "name": "RTX 4090", "memory_total_mib": 24564},
             {"index": 1, "name": "RTX 2060", "memory_total_mib": 8192}]


def inspect_output(path, args):
    return json.dumps([{"Id": "abc", "Path": path, "Args": args, "Config": {"Cmd": args}}])


@pytest.mark.parametrize(("args", "expected"), [
    (["-orchestrator", "-aiWorker", "-nvidia", "1,0", "-aiModels", "/root/.lpData/aiModels.json"], "1,0"),
    (["-nvidia=0,1"], "0,1"),
    (["--nvidia", "all"], "all"),
    (["--nvidia=2"], "2"),
    (["-nvidia", "0", "-nvidia", "1"], "1"),  # the last one wins, as in Go's flag package
    (["-orchestrator", "-aiWorker"], ""),
    (["-nvidia"], ""),
])
def test_nvidia_flag(args, expected):
    assert nvidia_flag(args) == expected


def test_docker_inspect():
    node = livepeer_node(inspect_output("/usr/local/bin/livepeer", ["-aiWorker", "-nvidia", "1,0"]), "docker")
    assert node == {"found": True, "argv": ["/usr/local/bin/livepeer", "-aiWorker", "-nvidia", "1,0"],
                    "nvidia": "1,0"}


@pytest.mark.parametrize("output", ["[]", "", "Error: No such object: livepeer", "{}"])
def test_docker_without_the_container(output):
    assert livepeer_node(output, "docker") == {"found": False, "argv": [], "nvidia": None}


def test_systemd_exec_start():
    output = ("LoadState=loaded\nExecStart={ path=/usr/bin/livepeer ; argv[]=/usr/bin/livepeer -orchestrator "
              "-nvidia 0,1 -aiModels '/var/lib/livepeer/ai models.json' ; ignore_errors=no ; start_time=[n/a] ; "
              "stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }")
    node = livepeer_node(output, "systemd")
    assert node["found"] and node["nvidia"] == "0,1"
    assert node["argv"][-1] == "/var/lib/livepeer/ai models.json"


def test_systemd_without_the_unit():
    assert livepeer_node("LoadState=not-found\nExecStart=", "systemd")["found"] is False


def test_bad_source():
    with pytest.raises(AnsibleFilterError, match="source must be docker or systemd"):
        livepeer_node("", "podman")


# --- does the node carry the plan? ---------------------------------------------------------------


def node(nvidia):
    return {"found": True, "argv": ["livepeer", "-nvidia", nvidia], "nvidia": nvidia}


def test_the_node_the_plan_was_made_for_carries_it():
    plan = plan_ai_models(DOCS_HOST, [WHISPER, T2I], host="gpu-docs", livepeer_nvidia="0,1")
    assert livepeer_nvidia_problem(plan, node("0,1")) == ""
    assert livepeer_nvidia_problem(plan, {"found": False, "argv": [], "nvidia": None}) == ""


def test_a_node_with_the_value_the_plan_asks_for_carries_it():
    plan = plan_ai_models(DOCS_HOST, [WHISPER, T2I], host="gpu-docs")  # preflight could not read the node
    assert livepeer_nvidia_problem(plan, node("1,0")) == ""


def test_a_node_changed_since_the_plan_is_a_problem():
    plan = plan_ai_models(DOCS_HOST, [WHISPER, T2I], host="gpu-docs", livepeer_nvidia="1,0")
    problem = livepeer_nvidia_problem(plan, node("0,1"), "gpu-docs")
    assert problem.startswith("gpu-docs: go-livepeer now runs with -nvidia 0,1, but the plan was made for -nvidia 1,0")
    assert "needs -nvidia 1,0" in problem and "Fix: run the play again" in problem


def test_a_plan_without_managed_models_runs_on_any_node():
    plan = plan_ai_models(DOCS_HOST, [LLAMA], host="gpu-docs")
    assert livepeer_nvidia_problem(plan, node("")) == ""


def test_the_plan_s_own_problem_is_returned():
    plan = plan_ai_models(DOCS_HOST, [WHISPER, T2I], host="gpu-docs", livepeer_nvidia="0")
    assert livepeer_nvidia_problem(plan, node("0")) == plan["nvidia_problem"] != ""
