"""What bad input and faults get from lpfleet's roles, on lab hosts (issue 5).

Every case runs `.venv/bin/ansible-playbook` against hosts of its own (fault-*, fresh: created here and
removed at the end) or against the session's shared converged host (`converged_host`, conftest.py), and
checks that the play stops where it should, with a message that names the host, the variable and the
fix, and that nothing on the host changed:

- bad input and unfit hosts (Debian 12 without compose v2 included) stop site.yml in preflight or
  in the first check of the role concerned, on fresh hosts that stay fresh;
- one bad value of each of the eight roles' variables, and bad menu items (an infinite price, a
  control character in a model id, url or token, a tag Ollama refuses), stop site.yml in preflight
  (which runs every role's `checks` entry point) with changed=0 and no secret in the output (these
  cases, 1-6 and 6b, share one site.yml run: each case is an inventory alias of its host);
- on a converged host, a pull cut once resumes (Range) and the play passes; a pull that keeps
  failing stops the play in ollama_models with the previous aiModels.json and stack untouched;
- verify.yml names the host, the check and what it saw for a runner answering ERROR or not at all;
- the `ollama` volume and its models survive `docker compose down`, and a re-run pulls nothing;
- the volume is deleted only when confirmed and no container uses it (check mode deletes nothing);
- a full disk at write time (aiModels.json on a filled 64 KiB tmpfs) stops ai_models with the old file and no
  temporary file or backup left; go-livepeer (its stand-in) stopping with status 0 on the new file gets the
  previous file back, runs again, and the run fails naming its log: in mode container on the converged host (an
  external runner answering ERROR) and in mode systemd on the fresh host (a runner that never answers).

Slow: about five minutes; the full converge is the shared host's (paid once per session, not here).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from lab_fixtures import LABCTL, REPO_ROOT, LabHost, group_vars, lab_hosts, labctl_up, require_docker, run
from roles_helpers import (
    CONVERGED_HOST,
    ConvergedHost,
    ModelRegistry,
    PlaybookRunner,
    PlayResult,
    host_changes_since_mark,
    lab_address,
    mark_host,
    ollama_api,
    ollama_models,
)

pytestmark = pytest.mark.slow

NO_GPU = LabHost("fault-nogpu", "no-gpu", "13")
FRESH = LabHost("fault-pre", "single-8gb", "13")
FRESH_DEBIAN_12 = LabHost("fault-deb12", "single-8gb", "12")
# The session's shared converged host (conftest.py's `converged_host`), not created here.
CONVERGED = CONVERGED_HOST
HOSTS = (NO_GPU, FRESH, FRESH_DEBIAN_12)

PREFLIGHT = "lpfleet.ai.preflight : "
# Every role's variables: one lpfleet.ai.role_checks task in preflight (spec and rules), every problem at once.
ROLE_CHECKS = PREFLIGHT + "Check every role's variables, before any role changes the host"
# Planning runs in lpfleet.ai.plan, which preflight imports.
PLAN = "lpfleet.ai.plan : "
PLAN_STEP = PLAN + "Plan this host's models on its GPUs"
AI_MODELS_JSON = "/root/.lpData/aiModels.json"
STACK_CONTAINERS = ("ollama", "llm_runner")
# More MB than any disk here has: with it as preflight_disk_margin_mb, the planned download can never
# fit. (Not as a download size: the planner now counts the download as the weights, VRAM included.)
HUGE_MARGIN_MB = 10**9

LLAMA_8B = {"pipeline": "llm", "model_id": "meta-llama/Meta-Llama-3.1-8B-Instruct", "warm": True,
            "price_per_unit": 0.18, "currency": "USD", "pixels_per_unit": 1000000}


def extra_llm(model_id: str, ollama_tag: str, vram_mib: int, download_mb: int, warm: bool = False) -> dict[str, Any]:
    """A menu item for an llm the catalog lacks (ollama_tag, vram_mib and download_mb given)."""
    return {"pipeline": "llm", "model_id": model_id, "ollama_tag": ollama_tag, "vram_mib": vram_mib,
            "download_mb": download_mb, "warm": warm, "price_per_unit": 0.1, "currency": "USD",
            "pixels_per_unit": 1000000}


# Models the registry serves that no other lab user pulls (the fleet scenario uses mistral,
# gemma2 and qwen2.5): a fault on them hits only this file's pulls.
PHI3 = extra_llm("microsoft/Phi-3-mini-4k-instruct", "phi3:mini", vram_mib=4000, download_mb=2200)
LLAMA_3B = extra_llm("meta-llama/Llama-3.2-3B-Instruct", "llama3.2:3b", vram_mib=3000, download_mb=2000)


@dataclass
class FaultLab:
    runner: PlaybookRunner
    registry: ModelRegistry


@pytest.fixture(scope="module")
def fault_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultLab]:
    """This file's hosts, fresh (any left over from an earlier run are recreated), removed at the end."""
    require_docker()
    names = [host.name for host in HOSTS]
    leftovers = sorted(set(names) & lab_hosts())
    if leftovers:
        run([str(LABCTL), "rm-host", *leftovers], timeout=300)
    try:
        labctl_up({host.name: (host.profile_name, host.debian) for host in HOSTS})
        # The inventory names the shared converged host too; --limit runs each play on one host only.
        runner = PlaybookRunner(tmp_path_factory.mktemp("roles-faults"), [*HOSTS, CONVERGED])
        yield FaultLab(runner, ModelRegistry())
    finally:
        run([str(LABCTL), "rm-host", *names], timeout=300, check=False)


@pytest.fixture(scope="module")
def converged(fault_lab: FaultLab, converged_host: ConvergedHost) -> Iterator[LabHost]:
    """The shared host converged by site.yml with the lab menu (the 8B model warm). This file's tests add
    models, re-price the menu and delete the model volume: the next user's converge() runs site.yml again."""
    yield converged_host.converge()
    converged_host.spoil()


# --- helpers ------------------------------------------------------------------------------------


def assert_names(text: str, *fragments: str, result: PlayResult) -> None:
    missing = [fragment for fragment in fragments if fragment not in text]
    assert not missing, f"the message lacks {missing}:\n{text}\n\n{result.describe()}"


def assert_pristine(host: LabHost) -> None:
    """Nothing any role installs or writes is on HOST, and nothing else changed since the marker."""
    assert host.exec("dpkg", "-s", "docker.io", check=False).returncode != 0, f"{host.name}: docker.io got installed"
    present = host.shell(
        "for path in /etc/apt/sources.list.d/nvidia-container-toolkit.sources /etc/docker /opt/lpfleet "
        f"{AI_MODELS_JSON}; do if [ -e $path ]; then echo $path; fi; done")
    assert not present.strip(), f"{host.name}: a stopped play left {present.split()}"
    assert not host.shell("ls -A /var/lib/docker").strip(), f"{host.name}: /var/lib/docker is no longer empty"
    changed = host_changes_since_mark(host)
    assert not changed, f"{host.name}: the failed play changed {changed}"


def sha256_on(host: LabHost, path: str) -> str:
    return host.shell(f"sha256sum {path}").split()[0]


def stack_state(host: LabHost) -> dict[str, str]:
    """Container id, start time and state of the stack's containers, by name."""
    lines = host.shell("docker inspect -f '{{.Name}} {{.Id}} {{.State.StartedAt}} {{.State.Status}}' "
                       + " ".join(STACK_CONTAINERS)).splitlines()
    return {line.split()[0].lstrip("/"): " ".join(line.split()[1:]) for line in lines}


def wait_until(description: str, check: Any, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {description}")
        time.sleep(1)


def restart_container(host: LabHost, name: str) -> None:
    """Starts NAME again and waits until it answers (the runner's /health says OK)."""
    host.exec("docker", "start", name)
    health = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/health').read().decode())"
    wait_until(f"{name} on {host.name} to answer again",
               lambda: '"OK"' in host.exec("python3", "-c", health, check=False).stdout.decode())


def ai_models_entries(host: LabHost) -> list[dict[str, Any]]:
    return json.loads(host.shell(f"cat {AI_MODELS_JSON}"))


def model_layer_gets(registry: ModelRegistry, client: str, since: float, digest: str) -> list[dict[str, Any]]:
    return [entry for entry in registry.requests_from(client, since)
            if entry["method"] == "GET" and entry["digest"] == digest]


# --- 1-6: bad input and unfit hosts stop in preflight, changing nothing -------------------------

MENU_WITH_OLLAMA_TAG = [LLAMA_8B, dict(LLAMA_8B, model_id="llama3.1:8b", warm=False)]
MENU_WITH_STRING_PRICE = [LLAMA_8B, {"pipeline": "llm", "model_id": "mistralai/Mistral-7B-Instruct-v0.3",
                                     "warm": False, "price_per_unit": "0.5e-3USD", "pixels_per_unit": 1000000}]
MENU_WITH_WARM_70B = [dict(LLAMA_8B, model_id="meta-llama/Meta-Llama-3.1-70B-Instruct", required=True)]
MENU_WITH_A_DOWNLOAD = [LLAMA_8B, extra_llm("Qwen/Qwen2.5-7B-Instruct", "qwen2.5:7b", vram_mib=6000,
                                            download_mb=4000)]
BIGGER_8B_IN_CATALOG = [{"model_id": LLAMA_8B["model_id"], "download_mb": 5500}]

# id: (host, extra vars, the failing task (preflight's unless a role is named), what the message must
# name besides the host)
PREFLIGHT_CASES = {
    "no-nvidia-driver": (
        NO_GPU, None, "Require the NVIDIA driver and at least one GPU",
        ["no NVIDIA GPU found", "preflight_require_gpu", "Fix: install the NVIDIA driver"]),
    # Debian's own docker-compose on 12 is the Python 1.x one; with docker_engine_source: docker the same host
    # converges (molecule/default's mol-deb12, against the lab's stand-in of Docker's repository).
    "debian-12-without-compose-v2": (
        FRESH_DEBIAN_12, None, "lpfleet.ai.docker_engine : Stop where the distribution has no compose v2 package",
        ["Debian 12 (bookworm)", "compose v2", "Fix:", "docker_engine_source: docker"]),
    "unsupported-os": (
        FRESH, {"preflight_supported_os": ["Debian 12", "Ubuntu 24.04"]}, ROLE_CHECKS,
        ["Debian 13", "is not supported", "preflight_supported_os", "Fix:"]),
    "disk-too-small-catalog-override": (
        FRESH, {"lpfleet_model_catalog_overrides": BIGGER_8B_IN_CATALOG, "preflight_disk_margin_mb": HUGE_MARGIN_MB},
        "Require free disk for the models still to download",
        ["llama3.1:8b, 5500 MB", f"{HUGE_MARGIN_MB + 5500} MB", "preflight_disk_margin_mb", "lpfleet_model_menu",
         "Fix:"]),
    "disk-too-small-menu-download-mb": (
        FRESH, {"lpfleet_model_menu": MENU_WITH_A_DOWNLOAD, "preflight_disk_margin_mb": HUGE_MARGIN_MB},
        "Require free disk for the models still to download",
        ["llama3.1:8b, qwen2.5:7b", "preflight_disk_margin_mb", "lpfleet_model_menu", "Fix:"]),
    "ollama-tag-as-model-id": (
        FRESH, {"lpfleet_model_menu": MENU_WITH_OLLAMA_TAG}, PLAN_STEP,
        ["lpfleet_model_menu[1].model_id", '"llama3.1:8b"', "Fix:", "meta-llama/Meta-Llama-3.1-8B-Instruct"]),
    "price-as-string": (
        FRESH, {"lpfleet_model_menu": MENU_WITH_STRING_PRICE}, PLAN_STEP,
        ["lpfleet_model_menu[1].price_per_unit", "0.5e-3USD", "Fix:", '"price_per_unit": 0.0005']),
    "unconfirmed-volume-deletion": (
        FRESH, {"livepeer_network_ollama_volume_state": "absent"}, ROLE_CHECKS,
        ["livepeer_network_ollama_volume_state is absent", "livepeer_network_confirm_volume_removal",
         '"yes, delete all models"', "Fix:"]),
    "warm-model-fits-no-gpu": (
        FRESH, {"lpfleet_model_menu": MENU_WITH_WARM_70B}, PLAN + "Stop when a required menu item fits no GPU",
        ["lpfleet_model_menu[0]", "meta-llama/Meta-Llama-3.1-70B-Instruct", "required: true", "8192 MiB", "Fix:"]),
}


@pytest.mark.parametrize("case", list(PREFLIGHT_CASES))
def test_preflight_stops_and_changes_nothing(bad_input_run: PlayResult, case: str) -> None:
    host, _extra_vars, task, fragments = PREFLIGHT_CASES[case]
    alias, result = case_alias(case), bad_input_run

    failure = result.the_failure_of(alias)
    expected_task = task if " : " in task else PREFLIGHT + task
    assert failure.task == expected_task, f"{alias} stopped in {failure.task!r}:\n{result.describe()}"
    assert_names(failure.msg, alias, *fragments, result=result)
    assert result.recap[alias]["changed"] == 0, result.describe()
    assert_pristine(host)


# --- 6b: one bad value per role, and bad menu items, stop site.yml in preflight (issue 12) ------
# preflight checks every role's variables in one task (lpfleet.ai.role_checks: each role's `checks`
# argument spec, with Ansible's own messages ("must be one of", "is of type"), then the role's rules),
# then what the host holds (checks_host), before any role changes the host. The plan role's own spec
# failure is in a task Ansible adds; the host is the one Ansible names on the failure line.

SPEC_TASK = "Validating arguments against arg spec "
MENU_SECRET = "menu-secret-5q"
RUNNER_SECRET = "runner-secret-6r"
EXTERNAL_T2I = {"pipeline": "text-to-image", "model_id": "SG161222/RealVisXL_V4.0_Lightning", "warm": False,
                "price_per_unit": 4768371, "url": "http://t2i-runner:9000"}

# id: (extra vars, the failing task (a prefix for spec validation), what the message must name, secrets
# that must appear nowhere in the output)
ONE_BAD_VALUE_CASES: dict[str, tuple[dict[str, Any], str, list[str], list[str]]] = {
    "preflight-layout-not-a-choice": (
        {"lpfleet_stack_layout": "per-gpu"}, PLAN + SPEC_TASK + "'main'",
        ["lpfleet_stack_layout", "must be one of", "shared, per_gpu", "per-gpu"], []),
    "docker-engine-source-not-a-choice": (
        {"docker_engine_source": "dockr"}, ROLE_CHECKS,
        ["docker_engine_source", "must be one of", "distro, docker", "dockr"], []),
    "toolkit-repo-url-without-scheme": (
        {"nvidia_container_toolkit_repo_base_url": "nvidia.github.io/libnvidia-container"},
        ROLE_CHECKS,
        ["nvidia_container_toolkit_repo_base_url", '"nvidia.github.io/libnvidia-container"', "Fix:", "https://"], []),
    # The lab's repository signs with the lab key; NVIDIA's real fingerprint pinned instead is a changed key.
    "toolkit-repo-key-not-the-pinned-one": (
        {"nvidia_container_toolkit_repo_key_fingerprint": "C95B 321B 61E8 8C18 09C4 F759 DDCA E044 F796 ECB0"},
        "lpfleet.ai.nvidia_container_toolkit : Stop when the repository key is not the pinned one",
        ["http://nvidia-repo/libnvidia-container/gpgkey", "9DD2D656C930AE2E8AD7D9E5F538EFB59789438D",
         "C95B321B61E88C1809C4F759DDCAE044F796ECB0", "nvidia_container_toolkit_repo_key_fingerprint", "Fix:"], []),
    # The lab inventory opts in for its plain http stand-ins; without the opt-in its registry is refused.
    "plain-http-registry-not-allowed": (
        {"lpfleet_allow_plain_http": False}, ROLE_CHECKS,
        ["docker_engine_daemon_options", "registry:5000", "lpfleet_allow_plain_http: true", "Fix:"], []),
    "network-name-with-a-space": (
        {"livepeer_network_name": "livepeer ai"}, ROLE_CHECKS,
        ["livepeer_network_name", '"livepeer ai"', "Fix:", "livepeer-ai"], []),
    "stack-wait-timeout-zero": (
        {"ollama_stack_wait_timeout": 0}, ROLE_CHECKS,
        ["ollama_stack_wait_timeout", "from 1 to 86400", "Fix:"], []),
    "keep-alive-forever": (
        {"ollama_models_keep_alive": "forever"}, ROLE_CHECKS,
        ["ollama_models_keep_alive", '"forever"', "Fix:", "24h"], []),
    "token-file-world-readable": (
        {"ai_models_mode": "0644"}, "lpfleet.ai.ai_models : Stop on entries or a mode the module refuses",
        ["mode", "0644", "runner token", "Fix:", "0600"], []),
    "verify-deadline-nan": (
        {"verify_deadline": "nan"}, ROLE_CHECKS,
        ["verify_deadline", '"nan"', "finite", "Fix:"], []),
    "menu-price-infinite": (
        {"lpfleet_model_menu": [dict(LLAMA_8B, price_per_unit=float("inf"))]}, PLAN_STEP,
        ["lpfleet_model_menu[0].price_per_unit", "not a finite number", "Fix:"], []),
    "menu-model-id-ends-in-a-newline": (
        {"lpfleet_model_menu": [LLAMA_8B, dict(EXTERNAL_T2I, model_id=EXTERNAL_T2I["model_id"] + "\n")]},
        PLAN_STEP, ["lpfleet_model_menu[1].model_id", "control character", "Fix:"], []),
    "menu-url-ends-in-a-tab": (
        {"lpfleet_model_menu": [LLAMA_8B, dict(EXTERNAL_T2I, url=EXTERNAL_T2I["url"] + "\t")]},
        PLAN_STEP, ["lpfleet_model_menu[1].url", "url.Parse", "Fix:"], []),
    "menu-token-with-a-newline": (
        {"lpfleet_model_menu": [LLAMA_8B, dict(EXTERNAL_T2I, token=MENU_SECRET + "\nx")]},
        PLAN_STEP, ["lpfleet_model_menu[1].token", "header value", "Fix:"],
        [MENU_SECRET]),
    "menu-ollama-tag-ollama-refuses": (
        {"lpfleet_model_menu": [LLAMA_8B, extra_llm("Qwen/Qwen2.5-7B-Instruct", "qwen2.5 7b", vram_mib=3000,
                                                     download_mb=10)]},
        PLAN_STEP, ["lpfleet_model_menu[1].ollama_tag", "qwen2.5 7b", "Fix:"], []),
    "runner-token-with-a-newline": (
        {"lpfleet_runner_token": RUNNER_SECRET + "\nx"},
        ROLE_CHECKS,
        ["lpfleet_runner_token", "line breaks", "Fix:"], [RUNNER_SECRET]),
}


@pytest.mark.parametrize("case", list(ONE_BAD_VALUE_CASES))
def test_one_bad_value_stops_site_yml_before_any_change(bad_input_run: PlayResult, case: str) -> None:
    _extra_vars, task, fragments, secrets = ONE_BAD_VALUE_CASES[case]
    alias, result = case_alias(case), bad_input_run

    failure = result.the_failure_of(alias)
    expected_task = task if " : " in task else PREFLIGHT + task
    assert failure.task.startswith(expected_task), f"{alias} stopped in {failure.task!r}:\n{result.describe()}"
    assert_names(failure.msg, *fragments, result=result)
    if SPEC_TASK not in task:
        assert_names(failure.msg, alias, result=result)
    # The whole run's output: no case's secret anywhere in it.
    leaked = [secret for secret in secrets if secret in result.output]
    assert not leaked, f"{leaked} shown in the output:\n{result.describe()}"
    assert result.recap[alias]["changed"] == 0, result.describe()
    assert_pristine(FRESH)


# --- 1-6 and 6b in one run ------------------------------------------------------------------------
# An ansible-playbook run costs seconds of start-up, fact gathering and preflight; the cases above share
# one: each case is an inventory alias of its host (lab/state's connection, the case's settings as host
# vars in place of -e), and site.yml runs on all of them at once. Each alias stops on its own failure
# (site.yml: any_errors_fatal false); the others go on, as on a fleet.


def case_alias(case: str) -> str:
    """The inventory name of CASE's alias of its host: the name the failure message must give."""
    return f"case-{case}"


@pytest.fixture(scope="module")
def bad_input_run(fault_lab: FaultLab, tmp_path_factory: pytest.TempPathFactory) -> PlayResult:
    """site.yml once for every case of PREFLIGHT_CASES and ONE_BAD_VALUE_CASES, after marking their hosts."""
    aliases = {case_alias(case): (host, extra_vars or {})
               for case, (host, extra_vars, _task, _fragments) in PREFLIGHT_CASES.items()}
    aliases.update({case_alias(case): (FRESH, extra_vars)
                    for case, (extra_vars, _task, _fragments, _secrets) in ONE_BAD_VALUE_CASES.items()})
    runner = PlaybookRunner(tmp_path_factory.mktemp("bad-input"), [], aliases)
    for host in {host for host, _vars in aliases.values()}:
        mark_host(host)
    result = runner.run("site.yml", ",".join(aliases), timeout=900)
    print(f"\nbad input: {len(aliases)} cases in one site.yml run, {result.seconds:.1f} s")
    assert result.returncode != 0, f"site.yml passed:\n{result.describe()}"
    assert set(result.recap) == set(aliases), f"not every case ran:\n{result.describe()}"
    return result


# The same one validation pass guards a rollout: a host whose preflight checks fail is neither
# snapshotted nor recorded, and nothing on it changes.
ROLLOUT_CASES = ("docker-engine-source-not-a-choice", "menu-token-with-a-newline")


@pytest.mark.parametrize("case", ROLLOUT_CASES)
def test_one_bad_value_stops_rollout_models_before_any_change(fault_lab: FaultLab, case: str) -> None:
    extra_vars, _task, fragments, secrets = ONE_BAD_VALUE_CASES[case]
    mark_host(FRESH)

    result = fault_lab.runner.run("rollout_models.yml", FRESH.name, extra_vars, timeout=300)

    assert_names(result.output, *fragments, result=result)
    leaked = [secret for secret in secrets if secret in result.output]
    assert not leaked, f"{leaked} shown in the output:\n{result.describe()}"
    assert result.recap[FRESH.name]["changed"] == 0, result.describe()
    assert_pristine(FRESH)


# --- 7: a pull cut half way resumes; a pull that keeps failing leaves the host as it was --------


def test_pull_cut_half_way_resumes_where_it_stopped(fault_lab: FaultLab, converged: LabHost) -> None:
    registry = fault_lab.registry
    layer = registry.model(PHI3["ollama_tag"])
    half = layer["model_size"] // 2
    client = lab_address(converged)
    assert PHI3["ollama_tag"] not in ollama_models(converged), "the model to add is already on the host"
    started = time.time()
    fault = registry.add_fault(model=PHI3["ollama_tag"], mode="cut", times=1, after_bytes=half)
    try:
        # The smoke /llm is off: the runner stand-in knows only the catalog's Hugging Face ids.
        result = fault_lab.runner.run("site.yml", converged.name, {
            "lpfleet_model_menu": [LLAMA_8B, PHI3], "verify_smoke": False,
            "ollama_models_retry_delay": 1, "ollama_models_progress_interval": 0})
    finally:
        registry.clear_fault_if_active(fault["id"])

    assert result.returncode == 0, f"the play did not get over one cut pull:\n{result.describe()}"
    gets = model_layer_gets(registry, client, started, layer["model_digest"])
    assert [entry["fault"] for entry in gets] == ["cut", None], f"model layer GETs: {gets}"
    cut, resumed = gets
    assert cut["bytes"] == half, f"the cut GET sent {cut['bytes']} bytes, not {half}: {cut}"
    assert resumed["range"] == f"bytes={half}-{layer['model_size'] - 1}", f"the retry did not resume: {resumed}"
    assert sum(entry["bytes"] for entry in gets) == layer["model_size"], f"bytes fetched twice: {gets}"
    assert PHI3["ollama_tag"] in ollama_models(converged)
    assert PHI3["model_id"] in [entry["model_id"] for entry in ai_models_entries(converged)]


def test_pull_that_keeps_failing_leaves_aimodels_and_stack_untouched(fault_lab: FaultLab, converged: LabHost) -> None:
    registry = fault_lab.registry
    retries = 1
    tag = LLAMA_3B["ollama_tag"]
    assert tag not in ollama_models(converged), "the model to add is already on the host"
    ai_models_before = sha256_on(converged, AI_MODELS_JSON)
    stack_before = stack_state(converged)
    client = lab_address(converged)
    started = time.time()
    # Every attempt the role makes (retries + 1) is cut before its first byte. A count rather than
    # times=-1: the fault ends with the test, and the registry's DELETE (all faults of every lab
    # user) is needed only when the play did not use it up.
    fault = registry.add_fault(model=tag, mode="cut", times=retries + 1, after_bytes=0)
    try:
        result = fault_lab.runner.run("site.yml", converged.name, {
            "lpfleet_model_menu": [LLAMA_8B, PHI3, LLAMA_3B], "verify_smoke": False,
            "ollama_models_retries": retries, "ollama_models_retry_delay": 1, "ollama_models_progress_interval": 0})
        fault_left = [active for active in registry.faults() if active["id"] == fault["id"]]
    finally:
        registry.clear_fault_if_active(fault["id"])

    assert result.returncode != 0, f"the play passed although every pull of {tag} was cut:\n{result.describe()}"
    failure = result.the_failure_of(converged.name)
    # site.yml pulls through the running Ollama before the stack changes (lpfleet.ai.rollout's prepull).
    assert failure.task == "lpfleet.ai.ollama_models : Pull the models before anything switches", result.describe()
    assert tag in failure.item, result.describe()
    assert not fault_left, f"the role gave up before using its {retries + 1} attempts: {fault_left}"
    gets = model_layer_gets(registry, client, started, registry.model(tag)["model_digest"])
    assert [entry["fault"] for entry in gets] == ["cut"] * (retries + 1), f"model layer GETs: {gets}"
    assert sha256_on(converged, AI_MODELS_JSON) == ai_models_before, "aiModels.json changed"
    assert stack_state(converged) == stack_before, "the stack was restarted or recreated"
    assert tag not in ollama_models(converged)
    # The role's last word names the host, the model, and the fix as role variables (the module's
    # own option names mean nothing in an inventory).
    stop = result.failures_of(converged.name)[-1]
    assert_names(stop.msg, converged.name, tag, "ollama_models_retries", "Fix:", result=result)


# --- 8: verify names the host, the check and what it saw ------------------------------------------

# Seconds verify keeps retrying a failing runner: enough for a few attempts, short for the test.
SHORT_VERIFY = {"verify_deadline": 5, "verify_llm_timeout": 10}


def test_verify_names_a_runner_that_answers_error(fault_lab: FaultLab, converged: LabHost) -> None:
    converged.exec("docker", "stop", "ollama")
    try:
        result = fault_lab.runner.run("verify.yml", converged.name, SHORT_VERIFY, timeout=300)
    finally:
        restart_container(converged, "ollama")

    assert result.returncode != 0, f"verify passed with Ollama stopped:\n{result.describe()}"
    failure = result.the_failure_of(converged.name)
    assert failure.task == "lpfleet.ai.verify : Require every check to pass", result.describe()
    assert_names(failure.msg, f"{converged.name}:", "runner llm_runner", "http://127.0.0.1:8000", "check health",
                 "ERROR", "Ollama ollama", result=result)
    assert result.recap[converged.name]["changed"] == 0, result.describe()


def test_verify_names_a_runner_that_does_not_answer(fault_lab: FaultLab, converged: LabHost) -> None:
    converged.exec("docker", "stop", "llm_runner")
    try:
        started = time.monotonic()
        result = fault_lab.runner.run("verify.yml", converged.name, SHORT_VERIFY, timeout=300)
        seconds = time.monotonic() - started
    finally:
        restart_container(converged, "llm_runner")

    assert result.returncode != 0, f"verify passed with the runner stopped:\n{result.describe()}"
    failure = result.the_failure_of(converged.name)
    assert failure.task == "lpfleet.ai.verify : Require every check to pass", result.describe()
    assert_names(failure.msg, f"{converged.name}:", "runner llm_runner", "http://127.0.0.1:8000", "check health",
                 "Connection refused", result=result)
    assert result.recap[converged.name]["changed"] == 0, result.describe()
    assert seconds < 60, f"verify_deadline={SHORT_VERIFY['verify_deadline']} was not honoured: {seconds:.0f} s"


# --- 8a: nothing reachable that should not be: direct routing to the containers (issue 13) -------

GUARD = "lpfleet-docker-direct-routing-guard.service"
GUARD_PROGRAM = "/usr/local/libexec/lpfleet/docker-direct-routing-guard"
PROBE = """
import json, socket, sys
for name, (address, port) in json.loads(sys.argv[1]).items():
    probe = socket.socket()
    probe.settimeout(2)
    try:
        probe.connect((address, port))
        print(name, "reached")
    except OSError as error:
        print(name, "not reached:", error)
    finally:
        probe.close()
"""


def stack_addresses(host: LabHost) -> tuple[str, dict[str, tuple[str, int]]]:
    """The stack network's subnet, and Ollama's and the runner's container addresses with their ports."""
    subnet = host.shell("docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}' livepeer-ai").strip()
    ports = {"ollama": 11434, "llm_runner": 8000}
    addresses = {name: host.shell(f"docker inspect -f '{{{{range .NetworkSettings.Networks}}}}{{{{.IPAddress}}}}"
                                  f"{{{{end}}}}' {name}").strip() for name in ports}
    return subnet, {name: (addresses[name], port) for name, port in ports.items()}


def reached_from(neighbour: LabHost, targets: dict[str, tuple[str, int]]) -> dict[str, bool]:
    output = neighbour.exec("python3", "-c", PROBE, json.dumps(targets)).stdout.decode()
    return {line.split()[0]: line.split()[1] == "reached" for line in output.splitlines()}


def wait_for_guard(host: LabHost, subnet: str) -> None:
    """Until the guard is active and its chain drops SUBNET (it writes the chain when it starts)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        active = host.exec("systemctl", "is-active", GUARD, check=False).stdout.decode().strip() == "active"
        if active and f"-d {subnet} " in host.shell("iptables -t raw -S LPFLEET-DIRECT-ROUTING 2>&1 || true"):
            return
        time.sleep(1)
    pytest.fail(f"{GUARD} did not guard {subnet} within 30 s:\n"
                f"{host.shell(f'systemctl status {GUARD} --no-pager 2>&1 || true; iptables -t raw -S 2>&1 || true')}")


def wait_for_containers(host: LabHost, names: list[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        running = host.shell("docker ps --format '{{.Names}}' 2>/dev/null || true").split()
        if all(name in running for name in names):
            return
        time.sleep(1)
    pytest.fail(f"{names} did not run again within 60 s of Docker's restart")


def test_a_neighbour_routing_the_stack_subnet_reaches_neither_ollama_nor_the_runner(
        fault_lab: FaultLab, converged: LabHost) -> None:
    """Docker before 28 (Debian 13's 26.1 here) accepts packets for a container's address from any interface
    (moby/moby#45610): another lab host that routes the stack's subnet through the GPU host reaches Ollama and the
    runner directly, whatever their publish address. With docker_engine's guard it reaches neither, also after
    Docker restarts. Shown both ways on the converged host, the guard stopped first (its chain removed)."""
    host, neighbour = converged, NO_GPU
    version = host.exec("docker", "version", "--format", "{{.Server.Version}}").stdout.decode().strip()
    assert int(version.split(".")[0]) < 28, f"{host.name} runs Docker {version}, which has its own protection"
    subnet, targets = stack_addresses(host)
    neighbour.exec("ip", "route", "replace", subnet, "via", lab_address(host))
    try:
        host.exec("systemctl", "stop", GUARD)
        host.exec("python3", GUARD_PROGRAM, "remove")
        assert reached_from(neighbour, targets) == {"ollama": True, "llm_runner": True}, \
            "without the guard the neighbour should reach both containers (the lab no longer shows the exposure)"

        host.exec("systemctl", "start", GUARD)
        wait_for_guard(host, subnet)
        assert reached_from(neighbour, targets) == {"ollama": False, "llm_runner": False}, targets

        # The guard is part of docker.service: Docker's restart restarts it, and the rules hold.
        host.exec("systemctl", "restart", "docker", timeout=180)
        wait_for_containers(host, list(targets))
        wait_for_guard(host, subnet)
        subnet, targets = stack_addresses(host)
        assert reached_from(neighbour, targets) == {"ollama": False, "llm_runner": False}, targets
    finally:
        neighbour.exec("ip", "route", "del", subnet, check=False)
        host.exec("systemctl", "start", GUARD, check=False)


# --- 8b: a full disk at write time, and go-livepeer stopping on the new file (issue 13) -----------

FULL_DISK = "/mnt/lpfleet-full-disk"


def test_a_full_disk_at_write_leaves_the_old_aimodels_json_and_no_junk(fault_lab: FaultLab) -> None:
    """aiModels.json on a 64 KiB tmpfs filled to the last byte (on the fresh host, removed after): the write
    stops, the old file stays, nothing else is left."""
    host = FRESH
    path = f"{FULL_DISK}/lpData/aiModels.json"
    host.shell(f"mkdir -p {FULL_DISK} && mount -t tmpfs -o size=64k tmpfs {FULL_DISK} && mkdir {FULL_DISK}/lpData && "
               f"echo '[]' > {path} && (dd if=/dev/zero of={FULL_DISK}/filler bs=1k 2>/dev/null || true)")
    try:
        before = host.shell(f"sha256sum {path}; ls -A {FULL_DISK}/lpData; df -B1 --output=avail {FULL_DISK}")
        assert before.split()[-1] == "0", f"the tmpfs is not full:\n{before}"
        result = fault_lab.runner.run("site.yml", host.name, {
            "lpfleet_model_menu": [LLAMA_8B], "ai_models_path": path}, options=("--tags", "ai_models"))
        after = host.shell(f"sha256sum {path}; ls -A {FULL_DISK}/lpData; df -B1 --output=avail {FULL_DISK}")
    finally:
        host.shell(f"umount {FULL_DISK} && rmdir {FULL_DISK}", check=False)

    assert result.returncode != 0, f"the write passed on a full disk:\n{result.describe()}"
    failure = result.the_failure_of(host.name)
    assert failure.task == "lpfleet.ai.ai_models : Write aiModels.json", result.describe()
    assert_names(failure.msg, f"no space left on {FULL_DISK}/lpData: writing aiModels.json needs",
                 "bytes on disk (the new file", "the backup", "0 bytes are free", "is unchanged and nothing was left",
                 "Fix: free at least", result=result)
    # The same file, the same directory listing (no temporary file, no backup), the disk still full.
    assert after == before, f"before:\n{before}\nafter:\n{after}"


NODE = "livepeer"
BROKEN_RUNNER = "broken_runner"
# An external runner whose backend is down: its /health answers {"status": "ERROR"}, and go-livepeer stops at
# once on it (contract: "S == ERROR stops the node at once"), with exit status 0. lpfleet's rules pass it.
EXTERNAL_BROKEN = {"pipeline": "text-to-image", "model_id": "SG161222/RealVisXL_V4.0_Lightning", "warm": False,
                   "price_per_unit": 4768371, "url": f"http://{BROKEN_RUNNER}:8000"}
NODE_SETTLE = 5
NODE_STATUS = ("import urllib.request; "
               "print(urllib.request.urlopen('http://127.0.0.1:8935/status', timeout=5).read().decode())")


def test_go_livepeer_stopping_on_the_new_file_gets_the_old_one_back_and_runs_again(fault_lab: FaultLab,
                                                                                   converged: LabHost) -> None:
    gv = group_vars()
    network = gv.get("livepeer_network_name", "livepeer-ai")
    converged.exec("docker", "pull", "-q", gv["ai_models_livepeer_image"], timeout=180)
    converged.exec("docker", "run", "-d", "--name", BROKEN_RUNNER, "--network", network,
                   "-e", "OLLAMA_BASE_URL=http://127.0.0.1:9", gv["ollama_stack_runner_image"], timeout=120)
    # go-livepeer's stand-in as the node, on the file lpfleet wrote; it exits as go-livepeer does (no -stayUp).
    converged.exec("docker", "run", "-d", "--name", NODE, "--network", network, "-v", "/root/.lpData:/root/.lpData",
                   gv["ai_models_livepeer_image"], "serve", "-aiModels", AI_MODELS_JSON, "-network", "offchain",
                   "-httpAddr", "127.0.0.1:8935", timeout=120)
    try:
        wait_until("the node to start on the current file", lambda: converged.exec(
            "docker", "exec", NODE, "python3", "-c", NODE_STATUS, check=False).returncode == 0, timeout=60)
        before = sha256_on(converged, AI_MODELS_JSON)
        served_before = [entry["model_id"] for entry in ai_models_entries(converged)]
        result = fault_lab.runner.run("site.yml", converged.name, {
            "lpfleet_model_menu": [LLAMA_8B, EXTERNAL_BROKEN], "ai_models_livepeer_mode": "container",
            "ai_models_livepeer_container": NODE, "ai_models_node_settle_seconds": NODE_SETTLE},
            options=("--tags", "ai_models"))
        state = converged.shell(f"docker inspect -f '{{{{.State.Status}}}} {{{{.RestartCount}}}}' {NODE}").split()
        status = json.loads(converged.exec("docker", "exec", NODE, "python3", "-c", NODE_STATUS).stdout)
        after = sha256_on(converged, AI_MODELS_JSON)
        listing = converged.shell("ls -A /root/.lpData")
    finally:
        converged.exec("docker", "rm", "-f", NODE, BROKEN_RUNNER, check=False)

    assert result.returncode != 0, f"the run passed although go-livepeer stopped:\n{result.describe()}"
    failure = result.the_failure_of(converged.name)
    assert failure.task == "lpfleet.ai.ai_models : Stop, naming what go-livepeer logged on the new file", \
        result.describe()
    assert_names(failure.msg, f"{converged.name}: go-livepeer (container {NODE}) did not stay up on the new",
                 "exited with status 0 after",
                 "Error AI worker warming text-to-image container: runner is in error state",
                 "lpfleet put the previous file back (/root/.lpData/aiModels.json.",
                 f"and started go-livepeer again: it is running for {NODE_SETTLE} s.", "Fix:", result=result)
    # The host after: the previous file byte for byte, the node running on it (again restarted by lpfleet).
    assert after == before, "aiModels.json is not the previous file"
    assert state == ["running", "0"], state
    assert status["ok"] is True and [entry["model_id"] for entry in status["registered"]] == served_before
    assert not [name for name in listing.split() if name.endswith(".tmp")], listing


ORCHESTRATOR = REPO_ROOT / "lab" / "standins" / "orchestrator" / "orchestrator.py"
WHISPER = {"pipeline": "audio-to-text", "model_id": "openai/whisper-large-v3", "warm": True,
           "price_per_unit": 12882811, "pixels_per_unit": 1}
# An external runner nothing answers for: go-livepeer polls its /health, gives up after its wait (2 minutes;
# -maxWait 2 for the stand-in here) and exits with status 0. lpfleet's rules pass it.
UNREACHABLE_T2I = {"pipeline": "text-to-image", "model_id": "SG161222/RealVisXL_V4.0_Lightning", "warm": False,
                   "price_per_unit": 4768371, "url": "http://127.0.0.1:9"}
LIVEPEER_UNIT = """[Unit]
Description=go-livepeer (lpfleet lab stand-in)
[Service]
ExecStart=/usr/bin/python3 /opt/lpfleet-lab/orchestrator.py serve -aiWorker -aiModels /root/.lpData/aiModels.json \\
  -nvidia 0 -network offchain -httpAddr 127.0.0.1:8935 -maxWait 2
Restart=on-failure
"""


def test_under_systemd_a_node_stopping_on_the_new_file_gets_the_old_one_back(fault_lab: FaultLab) -> None:
    """Mode systemd on the fresh host (no Docker needed; everything removed after): go-livepeer's stand-in as
    the unit livepeer.service with Restart=on-failure, which does not restart a node that exits with status 0."""
    host = FRESH
    host.exec("mkdir", "-p", "/opt/lpfleet-lab", "/root/.lpData")
    host.put("/opt/lpfleet-lab/orchestrator.py", ORCHESTRATOR.read_bytes())
    host.put("/etc/systemd/system/livepeer.service", LIVEPEER_UNIT.encode())
    # The file the plan gives for WHISPER alone, as lpfleet writes it.
    host.put(AI_MODELS_JSON, (json.dumps([WHISPER], indent=2) + "\n").encode())
    try:
        host.shell("systemctl daemon-reload && systemctl start livepeer.service")
        wait_until("the node to start on the first file", lambda: host.exec(
            "python3", "-c", NODE_STATUS, check=False).returncode == 0, timeout=30)
        before = sha256_on(host, AI_MODELS_JSON)
        result = fault_lab.runner.run("site.yml", host.name, {
            "lpfleet_model_menu": [WHISPER, UNREACHABLE_T2I], "ai_models_livepeer_mode": "systemd",
            "ai_models_node_settle_seconds": NODE_SETTLE}, options=("--tags", "ai_models"))
        active = host.exec("systemctl", "is-active", "livepeer.service", check=False).stdout.decode().strip()
        status = json.loads(host.exec("python3", "-c", NODE_STATUS).stdout)
        after = sha256_on(host, AI_MODELS_JSON)
    finally:
        host.shell("systemctl stop livepeer.service; rm -rf /etc/systemd/system/livepeer.service /opt/lpfleet-lab "
                   "/root/.lpData; systemctl daemon-reload; systemctl reset-failed", check=False)

    assert result.returncode != 0, f"the run passed although go-livepeer stopped:\n{result.describe()}"
    failure = result.the_failure_of(host.name)
    assert failure.task == "lpfleet.ai.ai_models : Stop, naming what go-livepeer logged on the new file", \
        result.describe()
    assert_names(failure.msg, f"{host.name}: go-livepeer (systemd livepeer) did not stay up on the new",
                 "inactive (dead), its last exit status 0 after",
                 "Error AI worker warming text-to-image container: timed out waiting for runner",
                 "lpfleet put the previous file back (/root/.lpData/aiModels.json.",
                 f"it is running for {NODE_SETTLE} s.", result=result)
    assert after == before, "aiModels.json is not the previous file"
    assert active == "active"
    assert status["ok"] is True and [entry["model_id"] for entry in status["registered"]] == [WHISPER["model_id"]]


# --- 8c: Docker restarts: warm models come back by themselves; a pull or a stack start cut by a -----
# Docker restart loses nothing (issue 13 items 3, 4 and 6)

WARM_UNIT = "lpfleet-ollama-warm.service"
PS_SCRIPT = ("import urllib.request; "
             "print(urllib.request.urlopen('http://127.0.0.1:11434/api/ps', timeout=5).read().decode())")


def loaded_models(host: LabHost) -> list[str] | None:
    """The models Ollama has loaded (/api/ps), or None while it does not answer."""
    answer = host.exec("python3", "-c", PS_SCRIPT, check=False)
    return sorted(model["name"] for model in json.loads(answer.stdout)["models"]) if answer.returncode == 0 else None


def process_status(host: LabHost, container: str) -> dict[str, str]:
    """/proc/1/status of CONTAINER's main process, as a dict."""
    text = host.exec("docker", "exec", container, "cat", "/proc/1/status").stdout.decode()
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def warm_unit_log_since(host: LabHost, since: str) -> str:
    return host.shell(f"journalctl -u {WARM_UNIT} --since '{since}' --no-pager -o cat")


def restart_docker_when(host: LabHost, ready: Any, description: str, run_play: Any) -> PlayResult:
    """Runs RUN_PLAY() in a thread; once READY() is true, restarts Docker on HOST (systemctl, as an operator
    or an upgrade does) while the play goes on. The play's result."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        play = pool.submit(run_play)
        wait_until(description, lambda: ready() or play.done(), timeout=180)
        assert not play.done(), f"the play ended before {description}:\n{play.result().describe()}"
        host.exec("systemctl", "restart", "docker", timeout=180)
        return play.result()


def test_warm_models_load_again_after_docker_and_host_restarts(fault_lab: FaultLab, converged: LabHost) -> None:
    """The stack runs hardened, and the warm unit (not an lpfleet run) loads the warm model again after
    `systemctl restart docker` and after the host itself restarts."""
    for container in STACK_CONTAINERS:
        status = process_status(converged, container)
        assert (status["CapEff"], status["CapBnd"], status["NoNewPrivs"]) == ("0" * 16, "0" * 16, "1"), \
            f"{container} runs with capabilities or may gain privileges: {status}"
    assert converged.shell(f"systemctl is-enabled {WARM_UNIT}").strip() == "enabled"
    assert "llama3.1:8b" in (loaded_models(converged) or []), "the converged host has no warm model loaded"

    for how in ("systemctl restart docker", "a restart of the host"):
        since = converged.shell("date '+%Y-%m-%d %H:%M:%S'").strip()
        ollama_before = stack_state(converged)["ollama"]
        if how == "a restart of the host":
            run(["docker", "restart", converged.container], timeout=180)
        else:
            converged.exec("systemctl", "restart", "docker", timeout=180)

        wait_until(f"the warm model to be loaded again after {how}",
                   lambda: "llama3.1:8b" in (loaded_models(converged) or []), timeout=120)
        assert stack_state(converged)["ollama"] != ollama_before, f"Ollama did not restart with {how}"
        log = warm_unit_log_since(converged, since)
        assert "http://127.0.0.1:11434: loaded llama3.1:8b (keep_alive -1)" in log, f"after {how}:\n{log}"
        assert "every warm model is loaded" in log, log


def test_docker_restarted_mid_pull_and_mid_stack_start_loses_nothing(fault_lab: FaultLab,
                                                                       converged: LabHost) -> None:
    """Docker restarts while ollama_models pulls a model (throttled by the registry) and while ollama_stack's
    compose up waits for Ollama: the pull resumes through ollama_models' retries, compose finishes the stack
    with the Ollama container Docker brought back, the next run changes nothing, and the model volume keeps
    its models, whole."""
    registry = fault_lab.registry
    tag = LLAMA_3B["ollama_tag"]
    if tag in ollama_models(converged):
        ollama_api(converged, "/api/delete", {"model": tag})
    volume = model_volume()
    store = f"$(docker volume inspect -f '{{{{.Mountpoint}}}}' {volume})/models"
    manifests = f"{store}/manifests/registry.ollama.ai/library"
    llama_manifest = sha256_on(converged, f"{manifests}/llama3.1/8b")
    layer = registry.model(tag)
    client = lab_address(converged)
    extra_vars = {"lpfleet_model_menu": [LLAMA_8B, LLAMA_3B], "verify_smoke": False, "ollama_models_retries": 5,
                  "ollama_models_retry_delay": 2, "ollama_models_progress_interval": 0}
    pull_only = ("--tags", "ollama_models")

    # 1. mid-pull: the first GET of the model layer trickles at 128 KiB/s (about 24 s for its 3 MiB); Docker
    # restarts once Ollama has written an eighth of it (the registry logs a GET only when it ends; Docker gives
    # Ollama 10 s to stop, and the transfer goes on meanwhile).
    partial = f"{store}/blobs/{layer['model_digest'].replace(':', '-')}-partial"

    def pull_under_way() -> bool:
        size = converged.shell(f"stat -c %s {partial} 2>/dev/null || echo 0", check=False).strip() or "0"
        return int(size) >= layer["model_size"] // 8

    started = time.time()
    fault = registry.add_fault(model=tag, mode="slow", times=1, rate_kibps=128)
    try:
        pulled = restart_docker_when(
            converged, pull_under_way, f"the pull of {tag} to be under way",
            lambda: fault_lab.runner.run("site.yml", converged.name, extra_vars, options=pull_only))
    finally:
        registry.clear_fault_if_active(fault["id"])

    assert pulled.returncode == 0, f"the pull did not get over the Docker restart:\n{pulled.describe()}"
    gets = model_layer_gets(registry, client, started, layer["model_digest"])
    assert len(gets) >= 2 and gets[0]["bytes"] < layer["model_size"], f"the restart did not cut the pull: {gets}"
    assert tag in ollama_models(converged)
    blob = converged.shell(f"stat -c %s {store}/blobs/{layer['model_digest'].replace(':', '-')}").strip()
    assert int(blob) == layer["model_size"], f"the pulled layer has {blob} of {layer['model_size']} bytes"

    # 2. mid-stack-start: compose up creates and starts Ollama, then waits for its healthcheck (15 s) before
    # the runner; Docker restarts then. (compose's wait rode out the restarts measured here; a failed `up` is
    # tried again, ollama_stack_up_retries.)
    converged.exec("docker", "rm", "-f", *STACK_CONTAINERS)
    before_restart: list[str] = []

    def ollama_started() -> bool:
        answer = converged.exec("docker", "inspect", "-f", "{{.Id}} {{.State.StartedAt}} {{.State.Status}}", "ollama",
                                check=False)
        before_restart[:] = answer.stdout.decode().split()
        return answer.returncode == 0 and before_restart[-1] == "running"

    started_stack = restart_docker_when(
        converged, ollama_started, "compose up to start Ollama",
        lambda: fault_lab.runner.run("site.yml", converged.name, extra_vars, options=("--tags", "ollama_stack")))

    assert started_stack.returncode == 0, f"the stack did not get over the Docker restart:\n{started_stack.describe()}"
    states = stack_state(converged)
    assert all(state.endswith(" running") for state in states.values()), states
    ollama_id, ollama_start = states["ollama"].split()[:2]
    assert ollama_id == before_restart[0] and ollama_start != before_restart[1], \
        f"the Ollama compose started ({before_restart}) did not live through the restart: {states['ollama']}"

    # 3. the next run changes nothing; the volume holds both models, whole, and the warm one is loaded.
    again = fault_lab.runner.run("site.yml", converged.name, extra_vars,
                                 options=("--tags", "ollama_stack,ollama_models"))
    assert again.returncode == 0 and again.recap[converged.name]["changed"] == 0, again.describe()
    assert sha256_on(converged, f"{manifests}/llama3.1/8b") == llama_manifest, "the 8B model's manifest changed"
    assert {"llama3.1:8b", tag} <= set(ollama_models(converged))
    assert "llama3.1:8b" in (loaded_models(converged) or [])


# --- 9: the models outlive the stack -----------------------------------------------------------


def stack_compose_file() -> str:
    defaults = yaml.safe_load((REPO_ROOT / "roles" / "ollama_stack" / "defaults" / "main.yml").read_text())
    return f"{defaults['ollama_stack_project_dir']}/compose.yaml"


def model_volume() -> str:
    return group_vars().get("livepeer_network_ollama_volume", "ollama")


def test_models_survive_compose_down_and_a_rerun_pulls_nothing(fault_lab: FaultLab, converged: LabHost) -> None:
    volume = model_volume()
    manifest = (f"$(docker volume inspect -f '{{{{.Mountpoint}}}}' {volume})"
                "/models/manifests/registry.ollama.ai/library/llama3.1/8b")
    volume_created = converged.shell(f"docker volume inspect -f '{{{{.CreatedAt}}}}' {volume}").strip()
    manifest_sha = sha256_on(converged, manifest)

    converged.exec("docker", "compose", "-f", stack_compose_file(), "down", timeout=180)

    assert not converged.shell("docker ps -aq --filter name=ollama --filter name=llm_runner").strip()
    assert converged.shell(f"docker volume inspect -f '{{{{.CreatedAt}}}}' {volume}").strip() == volume_created
    assert sha256_on(converged, manifest) == manifest_sha, "compose down touched the model's manifest"

    registry = fault_lab.registry
    client = lab_address(converged)
    bytes_before = registry.bytes_sent_to(client)
    started = time.time()
    result = fault_lab.runner.run("site.yml", converged.name)

    assert result.returncode == 0, f"site.yml did not bring the stack back:\n{result.describe()}"
    states = stack_state(converged)
    assert all(state.endswith(" running") for state in states.values()), states
    assert converged.shell(f"docker volume inspect -f '{{{{.CreatedAt}}}}' {volume}").strip() == volume_created
    assert sha256_on(converged, manifest) == manifest_sha
    assert "llama3.1:8b" in ollama_models(converged)
    assert [entry["model"] for entry in registry.requests_from(client, started)] == [], "the re-run pulled"
    assert registry.bytes_sent_to(client) == bytes_before, "the re-run downloaded from the model registry"
    loaded = [model["name"] for model in ollama_api(converged, "/api/ps")["models"]]
    assert "llama3.1:8b" in loaded, f"the warm model is not loaded again: {loaded}"


# --- 9b: a host cut off mid-rollout loses nothing ------------------------------------------------

LAB_NETWORK = "lpfleet-lab"
STATUS_DIR = "/var/lib/lpfleet"
# The lab menu re-priced: aiModels.json changes, nothing is pulled (the switch needs no registry).
REPRICED = {**LLAMA_8B, "price_per_unit": 0.27}


def run_cutting(runner: PlaybookRunner, playbook: str, host: LabHost, extra_vars: dict[str, Any],
                trigger: str, cut: Any, after: str = "", timeout: float = 600) -> PlayResult:
    """Runs PLAYBOOK as PlaybookRunner.run does, calling CUT() once, when a line of its output starts with TRIGGER
    (once a line started with AFTER)."""
    vars_file = runner.workdir / f"extra-vars-cut-{time.monotonic_ns()}.json"
    vars_file.write_text(json.dumps(extra_vars))
    command = [str(REPO_ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(runner.inventory / "hosts.yml"),
               f"playbooks/{playbook}", "--limit", host.name, "-e", f"@{vars_file}"]
    started = time.monotonic()
    lines: list[str] = []
    armed = not after
    with subprocess.Popen(command, cwd=REPO_ROOT, env={**runner.environment(), "PYTHONUNBUFFERED": "1"},
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace") as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            armed = armed or line.startswith(after)
            if cut is not None and armed and line.startswith(trigger):
                cut()
                cut = None
            if time.monotonic() - started > timeout:
                process.kill()
        returncode = process.wait()
    result = PlayResult.parse(command, returncode, "".join(lines), time.monotonic() - started)
    assert cut is None, f"the run never printed {trigger!r}:\n{result.describe()}"
    return result


def ollama_answers(host: LabHost) -> bool:
    """Whether the host's Ollama answers (False while the host, its Docker or Ollama is still starting)."""
    probe = "import urllib.request; urllib.request.urlopen('http://127.0.0.1:11434/api/tags', timeout=5)"
    return host.exec("python3", "-c", probe, check=False).returncode == 0


def rollout_record(host: LabHost) -> dict[str, Any]:
    return json.loads(host.shell(f"cat {STATUS_DIR}/last-rollout.json"))


def test_a_host_cut_off_mid_rollout_is_recorded_and_the_next_run_restores_then_completes_it(
        fault_lab: FaultLab, converged: LabHost) -> None:
    """Within its switch the host's container stops (the control node loses it); the next rollout finds the
    switch that never ended, restores the host from its snapshot, and, with the host's network cut between
    its pre-pull and its switch, completes the rollout. Models and aiModels.json are intact throughout."""
    models_before = ollama_models(converged)
    ai_models_before = sha256_on(converged, AI_MODELS_JSON)
    # rollout_prune off: every model the host had must still be there (earlier tests leave extra ones);
    # preflight's role checks are tested above and only cost time here.
    menu = {"lpfleet_model_menu": [REPRICED], "verify_smoke": False, "rollout_prune": False,
            "preflight_checked_roles": []}
    reports = fault_lab.runner.workdir / "reports"
    menu["lpfleet_report_dir"] = str(reports)

    # 1. The container stops as the host's switch begins: Ansible loses it (unreachable), so it runs neither
    #    its restore nor its record; the run ends (its only batch is gone).
    def stop_host() -> None:
        run(["docker", "stop", "-t", "2", converged.container], timeout=60)

    try:
        lost = run_cutting(fault_lab.runner, "rollout_models.yml", converged, menu,
                           "TASK [lpfleet.ai.ollama_stack : ", stop_host, after="PLAY [Switch in batches",
                           timeout=400)
    finally:
        run(["docker", "start", converged.container], timeout=60)
    assert lost.returncode != 0 and lost.recap[converged.name]["unreachable"] == 1, lost.describe()
    copy = json.loads((reports / "last-rollout" / f"{converged.name}.json").read_text())
    assert copy["result"] == "switching" and copy["finished"] is None, copy
    wait_until("Ollama on the restarted host", lambda: ollama_answers(converged), timeout=120)
    left = rollout_record(converged)
    assert left["result"] == "switching" and left["rollout_id"] == copy["rollout_id"], left
    assert converged.exec("test", "-f", f"{STATUS_DIR}/rollout/switch.json", check=False).returncode == 0
    assert ollama_models(converged) == models_before, "models lost with the host"

    # 2. The next rollout restores the host from that snapshot first, then, with the host cut from the lab
    #    network between its pre-pull and its switch (no registry needed: nothing to pull), completes.
    def cut_network() -> None:
        run(["docker", "network", "disconnect", LAB_NETWORK, converged.container], timeout=60)

    try:
        done = run_cutting(fault_lab.runner, "rollout_models.yml", converged, menu,
                           "PLAY [Switch in batches", cut_network, timeout=400)
    finally:
        run(["docker", "network", "connect", LAB_NETWORK, converged.container], timeout=60, check=False)
    assert done.returncode == 0, done.describe()
    assert f"was cut off in the middle of its switch in rollout {copy['rollout_id']}" in done.output, done.describe()
    record = rollout_record(converged)
    assert record["result"] == "switched" and record["recovered_from"] == copy["rollout_id"], record
    assert converged.exec("test", "-e", f"{STATUS_DIR}/rollout/switch.json", check=False).returncode != 0
    assert ollama_models(converged) == models_before, "a model was lost or added"
    prices = [entry["price_per_unit"] for entry in ai_models_entries(converged)]
    assert sha256_on(converged, AI_MODELS_JSON) != ai_models_before and prices == [REPRICED["price_per_unit"]], prices
    summary = json.loads((reports / "last-rollout.json").read_text())
    assert summary["hosts"][converged.name]["result"] == "switched", summary


# --- 10: the model volume goes only when confirmed and unused (last: it deletes the models) ------

VOLUME_REMOVAL = {"livepeer_network_ollama_volume_state": "absent",
                  "livepeer_network_confirm_volume_removal": "yes, delete all models"}
ONLY_THE_NETWORK_ROLE = ("--tags", "livepeer_network")


def volume_exists(host: LabHost, volume: str) -> bool:
    return host.exec("docker", "volume", "inspect", volume, check=False).returncode == 0


def test_the_model_volume_is_deleted_only_when_confirmed_and_unused(fault_lab: FaultLab,
                                                                    converged: LabHost) -> None:
    volume = model_volume()

    def remove_volume(*options: str) -> PlayResult:
        return fault_lab.runner.run("site.yml", converged.name, VOLUME_REMOVAL,
                                    options=(*ONLY_THE_NETWORK_ROLE, *options))

    in_use = remove_volume()
    assert in_use.returncode != 0, f"deleting a volume in use passed:\n{in_use.describe()}"
    failure = in_use.the_failure_of(converged.name)
    assert failure.task == "lpfleet.ai.livepeer_network : Refuse to delete the model volume while containers use it", \
        in_use.describe()
    assert_names(failure.msg, f"{converged.name}: livepeer_network_ollama_volume_state is absent, but the containers "
                 f"ollama still use the volume {volume}", "Fix:",
                 "livepeer_network_ollama_volume_state: present", result=in_use)
    assert in_use.recap[converged.name]["changed"] == 0, in_use.describe()
    assert volume_exists(converged, volume)

    converged.exec("docker", "compose", "-f", stack_compose_file(), "down", timeout=180)
    dry_run = remove_volume("--check")
    assert dry_run.returncode == 0, dry_run.describe()
    assert dry_run.recap[converged.name]["changed"] == 1, dry_run.describe()
    assert volume_exists(converged, volume), "check mode deleted the volume"

    deleted = remove_volume()
    assert deleted.returncode == 0, deleted.describe()
    assert deleted.recap[converged.name]["changed"] == 1, deleted.describe()
    assert not volume_exists(converged, volume), "the confirmed deletion left the volume"

    again = remove_volume()
    assert again.returncode == 0 and again.recap[converged.name]["changed"] == 0, again.describe()
