"""lpfleet.ai.role_checks: every role's variables checked in one task on the controller (preflight's validation
pass). The rules (plugin_utils/role_checks.py) one by one; the action through ansible-playbook on localhost: the
roles' defaults underneath the play's variables, Ansible's own spec messages, every problem of every role in one
failure naming the host, warnings as Ansible warnings, a token never shown."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from test_playbooks_syntax import run_playbook, write_inventory

from ansible_collections.lpfleet.ai.plugins.plugin_utils import role_checks
from ansible_collections.lpfleet.ai.plugins.plugin_utils.role_checks import check_role, range_problem

REPO = Path(__file__).resolve().parents[2]
ROLES = ["preflight", "docker_engine", "nvidia_container_toolkit", "livepeer_network", "ollama_stack",
         "ollama_models", "ai_models", "verify"]
PLAN = {"stacks": [{"ollama_port": 11434, "runner_port": 8000, "models": []}]}
TOKEN = "tok-secret-7x"


# --- the rules --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "good"), [(1, True), ("86400", True), (0, False), (86401, False), ("nan", False),
                                             ("inf", False), (None, False), ("ten", False), (True, False)])
def test_a_range_holds_finite_numbers_from_low_to_high(value, good):
    problem = range_problem("ollama_stack_wait_timeout", value, 1, 86400, "seconds")
    assert (problem is None) is good
    if problem:
        assert problem.startswith(f"ollama_stack_wait_timeout is {json.dumps(value)}; it must be a whole number "
                                  "from 1 to 86400")
        assert "Fix: set ollama_stack_wait_timeout in that range" in problem


def test_the_shown_value_is_the_one_given_not_the_coerced_one():
    problem = check_role("verify", {"verify_deadline": float("nan"), "verify_llm_timeout": 60, "verify_max_tokens": 8},
                         {"verify_deadline": "nan", "verify_llm_timeout": 60, "verify_max_tokens": 8}).problems
    assert problem == ['verify_deadline is "nan"; it must be a finite number from 0 to 3600 (seconds). Fix: set '
                       'verify_deadline in that range, or remove it for the default.']


def docker(**values):
    return {"docker_engine_source": "docker", "docker_engine_docker_repo_url": "https://download.docker.com/linux",
            "docker_engine_daemon_options": {}, "docker_engine_daemon_json_path": "/etc/docker/daemon.json", **values}


def test_docker_engine_refuses_plain_http_unless_allowed_and_a_relative_daemon_json():
    assert check_role("docker_engine", docker()).problems == []
    found = check_role("docker_engine", docker(
        docker_engine_docker_repo_url="http://docker-repo/linux",
        docker_engine_daemon_options={"insecure-registries": ["registry:5000"],
                                      "registry-mirrors": ["http://mirror:5000", "https://safe"]},
        docker_engine_daemon_json_path="daemon.json")).problems
    assert len(found) == 3
    assert found[0].startswith("docker_engine_docker_repo_url is http://docker-repo/linux, plain http")
    assert "plain http from registry:5000, http://mirror:5000:" in found[1] and "https://safe" not in found[1]
    assert found[2].startswith('docker_engine_daemon_json_path is "daemon.json".')
    allowed = check_role("docker_engine", docker(docker_engine_docker_repo_url="http://docker-repo/linux",
                                                 docker_engine_daemon_options={"insecure-registries": ["r:5000"]},
                                                 lpfleet_allow_plain_http=True)).problems
    assert allowed == []
    # The distribution's packages need no repository URL.
    assert check_role("docker_engine", docker(docker_engine_source="distro",
                                              docker_engine_docker_repo_url="ftp://x")).problems == []


def test_docker_engine_refuses_a_plain_http_site_registry_mirror_unless_allowed():
    found = check_role("docker_engine", docker(docker_engine_registry_mirrors=["http://10.0.0.1:5000"])).problems
    assert len(found) == 1 and found[0].startswith(
        "docker_engine_registry_mirrors (the site's registry mirror: lpfleet_site_registry_mirror) makes Docker pull "
        "over plain http from http://10.0.0.1:5000:")
    assert check_role("docker_engine", docker(docker_engine_registry_mirrors=["http://10.0.0.1:5000"],
                                              lpfleet_allow_plain_http=True)).problems == []
    assert check_role("docker_engine", docker(docker_engine_registry_mirrors=[])).problems == []


def test_toolkit_url_and_version():
    good = {"nvidia_container_toolkit_repo_base_url": "https://nvidia.github.io/libnvidia-container",
            "nvidia_container_toolkit_version": "1.17.8-1"}
    assert check_role("nvidia_container_toolkit", good).problems == []
    assert check_role("nvidia_container_toolkit", dict(good, nvidia_container_toolkit_version="")).problems == []
    found = check_role("nvidia_container_toolkit", {"nvidia_container_toolkit_repo_base_url": "nvidia.github.io/x",
                                                    "nvidia_container_toolkit_version": "latest"}).problems
    assert "not an http(s) URL" in found[0] and '"latest", not a Debian package version' in found[1]


def test_livepeer_network_confirmation_and_names():
    values = {"livepeer_network_name": "livepeer-ai", "livepeer_network_ollama_volume": "ollama",
              "livepeer_network_ollama_volume_state": "absent", "livepeer_network_confirm_volume_removal": "yes"}
    found = check_role("livepeer_network", values).problems
    assert found == ['livepeer_network_ollama_volume_state is absent, which deletes the volume ollama and every model '
                     'in it, but livepeer_network_confirm_volume_removal is "yes". Fix: set it to "yes, delete all '
                     'models" to delete them, or set livepeer_network_ollama_volume_state: present to keep them.']
    confirmed = dict(values, livepeer_network_confirm_volume_removal="yes, delete all models",
                     livepeer_network_name="livepeer ai")
    assert [p.split(",")[0] for p in check_role("livepeer_network", confirmed).problems] == [
        'livepeer_network_name is "livepeer ai"']


def stack(**values):
    return {"ollama_stack_runner_environment": {}, "ollama_stack_labels": {}, "ollama_stack_bind_address": "127.0.0.1",
            "ollama_stack_publish_beyond_loopback": False, "lpfleet_plan": PLAN,
            "ollama_stack_ollama_image": "ollama/ollama:0.12.6", "ollama_stack_runner_image": "r/runner:0.1.1",
            "ollama_stack_wait_timeout": 300, "ollama_stack_warm_budget": 600, "ollama_stack_up_retries": 2,
            "ollama_stack_runner_container_port": 8000, "ollama_stack_ollama_container_port": 11434,
            "ollama_stack_project_name": "lpfleet-ollama", "ollama_stack_network": "livepeer-ai",
            "ollama_stack_volume": "ollama", "ollama_stack_ollama_cap_add": [], "ollama_stack_runner_cap_add": [],
            **values}


def test_ollama_stack_passes_its_defaults_and_finds_every_problem_at_once():
    assert check_role("ollama_stack", stack()) == role_checks.Findings()
    found = check_role("ollama_stack", stack(
        ollama_stack_runner_environment={"AUTH_TOKEN": "x"}, ollama_stack_labels={"creator": "ai-worker"},
        lpfleet_runner_token=TOKEN + "\n", ollama_stack_bind_address="0.0.0.0", ollama_stack_wait_timeout=0,
        ollama_stack_project_name="LPfleet", ollama_stack_runner_cap_add=["ALL"],
        ollama_stack_ollama_image="ollama/ollama")).problems
    starts = [problem.split(" ")[0] for problem in found]
    assert starts == ["ollama_stack_runner_environment", "ollama_stack_labels", "lpfleet_runner_token",
                      "ollama_stack_bind_address", "ollama_stack_wait_timeout", "ollama_stack_project_name",
                      "ollama_stack_runner_cap_add"]
    assert not any(TOKEN in problem for problem in found)


def test_ollama_stack_beyond_the_loopback_needs_the_opt_in_then_warns():
    refused = check_role("ollama_stack", stack(ollama_stack_bind_address="10.0.0.5")).problems
    assert refused[0].startswith("ollama_stack_bind_address is 10.0.0.5, so Ollama (port 11434, no authentication)")
    opted = check_role("ollama_stack", stack(ollama_stack_bind_address="::", ollama_stack_publish_beyond_loopback=True))
    assert opted.problems == [] and "Ollama has no authentication" in opted.warnings[0]
    unpinned = check_role("ollama_stack", stack(ollama_stack_runner_image="r/runner:latest")).warnings
    assert unpinned[0].startswith("r/runner:latest is not pinned")


def test_ollama_models_ranges_keep_alive_and_insecure():
    values = {"ollama_models_retries": 3, "ollama_models_retry_delay": 5, "ollama_models_pull_timeout": 3600,
              "ollama_models_stall_timeout": 300, "ollama_models_progress_interval": 30,
              "ollama_models_keep_alive": "-1", "ollama_models_insecure": False}
    assert check_role("ollama_models", values).problems == []
    for good in ("600", "30m", "1h30m", "-1", 300):
        assert check_role("ollama_models", dict(values, ollama_models_keep_alive=good)).problems == []
    found = check_role("ollama_models", dict(values, ollama_models_keep_alive="forever", ollama_models_insecure=True,
                                             ollama_models_retries=101)).problems
    assert [problem.split(" ")[0] for problem in found] == [
        "ollama_models_retries", "ollama_models_keep_alive", "ollama_models_insecure"]
    assert check_role("ollama_models", dict(values, ollama_models_insecure=True, lpfleet_allow_plain_http=True)
                      ).problems == []


FACTS = {"distribution": "Debian", "distribution_major_version": "13", "distribution_version": "13.1",
         "distribution_release": "trixie", "architecture": "x86_64", "pkg_mgr": "apt", "service_mgr": "systemd"}
PREFLIGHT = {"preflight_supported_os": ["Debian 12", "Debian 13", "Ubuntu 22.04"], "preflight_disk_margin_mb": 5120,
             "preflight_supported_architectures": ["x86_64", "aarch64"], "ansible_facts": FACTS}


def test_the_system_rules():
    assert check_role("preflight", PREFLIGHT).problems == []
    by_version = dict(PREFLIGHT, preflight_supported_os=["Debian 13.1"])
    assert check_role("preflight", by_version).problems == []
    found = check_role("preflight", dict(PREFLIGHT, preflight_supported_os=["Debian 12", "Ubuntu 24.04"],
                                         ansible_facts=dict(FACTS, architecture="ppc64le", service_mgr="sysvinit")))
    assert found.problems == [
        "Debian 13.1 (trixie) is not supported; preflight_supported_os lists Debian 12, Ubuntu 24.04. Fix: run lpfleet "
        "on one of those systems, or add this one to preflight_supported_os at your own risk.",
        "architecture ppc64le is not supported; preflight_supported_architectures lists x86_64, aarch64. Fix: run "
        "lpfleet on an x86_64 or aarch64 host.",
        "lpfleet manages packages with apt and services with systemd; this host has apt and sysvinit. Fix: use a "
        "Debian or Ubuntu host booted with systemd."]


def test_preflight_applied_roles_names_only_roles_that_keep_a_record():
    defaults = yaml.safe_load((REPO / "roles/preflight/defaults/main.yml").read_text())
    assert set(defaults["preflight_applied_roles"]) == set(role_checks.APPLIED_ROLES)
    found = check_role("preflight", dict(PREFLIGHT, preflight_applied_roles=["docker_engine", "site_cache", "dokcer"]))
    assert found.problems == [
        'preflight_applied_roles names "site_cache", "dokcer", which keep no applied-state record to compare (the host '
        "would never count as unchanged). Fix: name only roles among docker_engine, nvidia_container_toolkit, "
        "livepeer_network, ollama_stack, ollama_models, ai_models."]


def test_every_role_preflight_checks_has_rules():
    defaults = yaml.safe_load((REPO / "roles/preflight/defaults/main.yml").read_text())
    assert set(defaults["preflight_checked_roles"]) <= set(role_checks.RULES)


# --- the action, as preflight runs it ----------------------------------------------------------------------------


def run(tmp_path, roles=None, **variables):
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "gpu-a01", "gather_facts": False, "tasks": [
        {"name": "Check every role", "vars": {"lpfleet_plan": PLAN, **variables},
         "lpfleet.ai.role_checks": {"roles": roles or ROLES}}]}]))
    inventory = write_inventory(tmp_path / "hosts.yml", {"gpu-a01": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}})
    done = run_playbook(tmp_path, "-i", str(inventory), str(playbook), timeout=180)
    return done.returncode, done.stdout + done.stderr


def test_every_role_passes_on_its_own_defaults(tmp_path):
    # No role is imported in this play: the action reads each role's defaults itself. (preflight's rules need
    # the facts of a lab or real host: test_the_system_rules.)
    returncode, output = run(tmp_path, ROLES[1:])
    assert returncode == 0, output
    assert "ok=1" in output and "[WARNING]" not in output


def test_bad_values_of_several_roles_fail_once_listing_each_with_the_host(tmp_path):
    returncode, output = run(tmp_path, docker_engine_source="dockr", livepeer_network_name="livepeer ai",
                             ollama_stack_wait_timeout=0, verify_deadline="nan", preflight_disk_margin_mb=-1,
                             lpfleet_runner_token=TOKEN + "'")
    assert returncode != 0
    text = " ".join(output.split())
    for expected in ["gpu-a01: value of docker_engine_source must be one of: distro, docker, got: dockr",
                     'gpu-a01: livepeer_network_name is "livepeer ai", which Docker refuses as a name',
                     "gpu-a01: ollama_stack_wait_timeout is 0; it must be a whole number from 1 to 86400",
                     'gpu-a01: verify_deadline is "nan"; it must be a finite number',
                     "gpu-a01: preflight_disk_margin_mb is -1", "gpu-a01: lpfleet_runner_token must be"]:
        assert expected in text, text
    assert TOKEN not in output
    assert "ok=0" in output and "failed=1" in output


def test_a_play_variable_wins_over_the_role_default_and_templates_resolve(tmp_path):
    # livepeer_network_ollama_volume is templated from another variable, as inventories do.
    returncode, output = run(tmp_path, ["livepeer_network"], volume_base="models",
                             livepeer_network_ollama_volume="{{ volume_base }} x")
    assert returncode != 0 and 'livepeer_network_ollama_volume is "models x"' in output


def test_warnings_are_ansible_warnings_naming_the_host(tmp_path):
    returncode, output = run(tmp_path, ["ollama_stack"], ollama_stack_bind_address="0.0.0.0",
                             ollama_stack_publish_beyond_loopback=True)
    assert returncode == 0, output
    assert "[WARNING]: gpu-a01: ollama_stack_bind_address is 0.0.0.0" in " ".join(output.split())


def test_an_unknown_role_is_refused(tmp_path):
    returncode, output = run(tmp_path, ["dockr_engine"])
    assert returncode != 0 and "knows no role 'dockr_engine'" in output


def test_checks_host_reads_only_variables_the_checks_spec_validates():
    # preflight includes checks_host with rolespec_validate: false, as role_checks validated these already.
    defaults = yaml.safe_load((REPO / "roles/preflight/defaults/main.yml").read_text())
    for role in defaults["preflight_host_checked_roles"]:
        specs = yaml.safe_load((REPO / "roles" / role / "meta/argument_specs.yml").read_text())["argument_specs"]
        assert set(specs["checks_host"]["options"]) <= set(specs["checks"]["options"]), role
        assert role in defaults["preflight_checked_roles"], role
