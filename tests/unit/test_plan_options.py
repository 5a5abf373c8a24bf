"""The planner's options have one source, planner.PlanOptions: the filter's DOCUMENTATION and roles/plan's
defaults, argument spec and README rows are written from it (scripts/plan-options), and the plan role passes
every option through the lookup lpfleet.ai.plan_options without naming each."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import subprocess
import sys
from dataclasses import fields

import pytest
import yaml
from test_playbooks_syntax import REPO, run_playbook

from ansible_collections.lpfleet.ai.plugins.filter import plan_ai_models
from ansible_collections.lpfleet.ai.plugins.plugin_utils.planner import OPTION_VARIABLES, PlanOptions
from ansible_collections.lpfleet.ai.plugins.plugin_utils.variables import plan_options, report_dir

SCRIPT = REPO / "scripts" / "plan-options"


def load_script():
    loader = importlib.machinery.SourceFileLoader("plan_options_script", str(SCRIPT))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


def role_options():
    return [option for option in fields(PlanOptions) if (option.metadata["variable"] or "").startswith("lpfleet_")]


def test_the_written_lines_are_up_to_date():
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_stale_copy_is_found_and_written_again():
    script = load_script()
    path = REPO / "roles" / "plan" / "meta" / "argument_specs.yml"
    current = path.read_text()
    stale = current.replace("default: 11434", "default: 11435")
    assert stale != current
    assert script.rewrite(stale, lambda text: "# " + text, script.argument_spec_options, str(path)) == current
    with pytest.raises(SystemExit, match="needs one line"):
        script.rewrite(current.replace(script.END, "END"), lambda text: "# " + text, script.argument_spec_options,
                       str(path))


def test_the_argument_spec_and_defaults_say_what_plan_options_says():
    specs = yaml.safe_load((REPO / "roles/plan/meta/argument_specs.yml").read_text())["argument_specs"]
    spec = specs["main"]["options"]
    defaults = yaml.safe_load((REPO / "roles/plan/defaults/main.yml").read_text())
    assert role_options(), "PlanOptions names no lpfleet_* variable"
    for option in role_options():
        variable = option.metadata["variable"]
        assert spec[variable]["type"] == {"int": "int", "str": "str"}[option.type]
        assert spec[variable]["default"] == option.default == defaults[variable]
        assert spec[variable].get("choices", []) == list(option.metadata["choices"])
        assert spec[variable]["description"] == option.metadata["description"]


def test_the_filter_documents_every_option_and_knows_no_other():
    documented = yaml.safe_load(plan_ai_models.DOCUMENTATION)["options"]
    for option in fields(PlanOptions):
        assert documented[option.name]["description"] == option.metadata["description"]
        assert documented[option.name].get("default") == option.default
    assert set(documented) - {option.name for option in fields(PlanOptions)} == {"_input", "menu", "catalog_overrides"}


def test_the_lookup_reads_each_defined_variable_and_makes_whole_numbers_numbers():
    variables = {"lpfleet_runner_port": "8001", "lpfleet_stack_layout": "{{ wanted_layout }}",
                 "lpfleet_ollama_port": "eleven", "inventory_hostname": "gpu-7", "wanted_layout": "per_gpu"}
    rendered = plan_options(variables, lambda value: "per_gpu" if value == "{{ wanted_layout }}" else value)
    # Undefined variables are left out (the planner's default applies); a non-number goes on for the planner
    # to refuse, naming the option.
    assert rendered == {"host": "gpu-7", "runner_port": 8001, "layout": "per_gpu", "ollama_port": "eleven"}
    assert set(OPTION_VARIABLES) == {option.name for option in fields(PlanOptions) if option.metadata["variable"]}


def test_report_dir_is_defaulted_here_and_only_here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert report_dir({}, str) == str(tmp_path / "reports")
    assert report_dir({"lpfleet_report_dir": ""}, str) == str(tmp_path / "reports")
    assert report_dir({"lpfleet_report_dir": "out/x"}, str) == str(tmp_path / "out" / "x")
    with pytest.raises(ValueError, match="lpfleet_report_dir must be a directory path"):
        report_dir({"lpfleet_report_dir": ["a"]}, lambda value: value)
    sources = [path for path in (REPO / "playbooks").glob("*.yml")] + list((REPO / "roles").glob("*/*/*.yml"))
    defaulted = [str(path) for path in sources if "lpfleet_report_dir | default" in path.read_text()]
    assert defaulted == []


def test_the_plan_role_passes_every_inventory_option_to_the_planner(tmp_path):
    playbook = tmp_path / "plan.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False,
        "vars": {"ansible_facts": {"lpfleet_gpus": [{"index": 0, "name": "A", "memory_total_mib": 24000},
                                                    {"index": 1, "name": "B", "memory_total_mib": 24000}]},
                 "plan_show_plan": False,
                 "lpfleet_model_menu": [{"pipeline": "llm", "model_id": "meta-llama/Meta-Llama-3.1-8B-Instruct",
                                         "warm": True, "price_per_unit": 0.18, "currency": "USD",
                                         "pixels_per_unit": 1000000}]},
        "tasks": [{"ansible.builtin.import_role": {"name": "lpfleet.ai.plan"}},
                  {"ansible.builtin.debug": {"msg": "PLAN={{ lpfleet_plan.stacks | to_json }}"}}]}]))
    given = {"lpfleet_stack_layout": "per_gpu", "lpfleet_runner_name": "runner", "lpfleet_runner_port": "9100",
             "lpfleet_ollama_name": "oll", "lpfleet_ollama_port": "12000", "lpfleet_runner_address": "loopback",
             "ollama_stack_bind_address": "::1"}
    extra = [argument for name, value in given.items() for argument in ("-e", f"{name}={value}")]
    done = run_playbook(tmp_path, "-i", "localhost,", "-c", "local", str(playbook), *extra)
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(line for line in done.stdout.splitlines() if "PLAN=" in line)
    stacks = json.loads(json.loads("{" + line.strip().rstrip(",") + "}")["msg"].split("=", 1)[1])
    assert [(stack["ollama_container"], stack["runner_container"], stack["runner_url"], stack["ollama_host_url"])
            for stack in stacks] == [("oll_gpu0", "runner_gpu0", "http://127.0.0.1:9100", "http://[::1]:12000")]


def test_the_plan_role_names_no_planner_option_in_its_filter_call():
    call = (REPO / "roles" / "plan" / "vars" / "main.yml").read_text()
    assert "**lookup('lpfleet.ai.plan_options')" in call
    named = [variable for variable in OPTION_VARIABLES.values() if variable in call]
    assert named == [], f"roles/plan/vars/main.yml names {named}: the lookup passes them"
