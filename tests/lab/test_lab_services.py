"""The vendor stand-ins, the lab inventory that points at them, and `lab-up`'s caching."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request

import pytest
import yaml
from lab_fixtures import (  # noqa: F401  (the fixture `lab`)
    LAB_MK,
    REPO_ROOT,
    STATE,
    TEST_HOSTS,
    group_vars,
    lab_fixture,
    ports_env,
    run,
)

pytestmark = pytest.mark.slow

IMAGE_VARIABLES = ("ollama_stack_ollama_image", "ollama_stack_runner_image", "ai_models_livepeer_image",
                   "nvidia_container_toolkit_smoke_image")


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


@pytest.mark.parametrize("variable", IMAGE_VARIABLES)
def test_the_registry_holds_every_image_the_inventory_names(lab, variable):
    image = group_vars()[variable]
    match = re.fullmatch(r"registry:5000/(?P<path>[a-z0-9/_-]+):(?P<tag>[\w.-]+)", image)
    assert match, f"{variable}={image!r} is not a registry:5000 image"
    status, body = get(f"{ports_env()['REGISTRY_URL']}/v2/{match['path']}/tags/list")
    assert status == 200
    assert match["tag"] in json.loads(body)["tags"]


def test_the_inventory_points_at_the_lab_repository(lab):
    base = group_vars()["nvidia_container_toolkit_repo_base_url"]
    assert base == "http://nvidia-repo/libnvidia-container"
    published = ports_env()["NVIDIA_REPO_URL"]
    status, key = get(f"{published}/gpgkey")
    assert status == 200 and key.startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")
    status, listing = get(f"{published}/stable/deb/nvidia-container-toolkit.list")
    assert listing.decode().strip() == f"deb {base}/stable/deb/$(ARCH) /"
    status, release = get(f"{published}/stable/deb/amd64/InRelease")
    assert b"-----BEGIN PGP SIGNED MESSAGE-----" in release


def test_the_model_registry_is_published_for_fault_injection(lab):
    url = ports_env()["OLLAMA_REGISTRY_URL"]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
    status, body = get(f"{url}/_lab/stats")
    assert status == 200 and isinstance(json.loads(body), dict)


def test_the_inventory_reaches_hosts_through_docker(lab):
    hosts = yaml.safe_load((REPO_ROOT / "inventories" / "lab" / "hosts.yml").read_text())
    defaults = hosts["all"]["children"]["gpu_hosts"]["hosts"]
    assert {name: spec["lab_gpu_profile"] for name, spec in defaults.items()} == {
        "gpu-docs": "docs-4090-2060", "gpu-8g": "single-8gb", "gpu-h100": "h100-80gb"}
    assert all(spec["ansible_host"] == f"lpfleet-lab-{name}" for name, spec in defaults.items())
    assert group_vars()["ansible_connection"] == "community.docker.docker"
    written = yaml.safe_load((STATE / "inventory" / "hosts.yml").read_text())
    running = written["all"]["children"]["gpu_hosts"]["hosts"]
    for name, (profile, _) in TEST_HOSTS.items():
        assert running[name] == {"ansible_host": f"lpfleet-lab-{name}", "lab_gpu_profile": profile}
    pong = run([str(REPO_ROOT / ".venv" / "bin" / "ansible"), "-i", str(STATE / "inventory"), "lt-nogpu",
                "-m", "ansible.builtin.ping"], timeout=120)
    assert b"lt-nogpu | SUCCESS" in pong.stdout and b"pong" in pong.stdout


def test_lab_status_shows_hosts_and_stand_ins(lab):
    table = run(["make", "--no-print-directory", "-f", str(LAB_MK), "lab-status"], timeout=120).stdout.decode()
    rows = {line.split()[0]: line.split() for line in table.splitlines() if line.strip()}
    assert rows["lt-docs"][1:4] == ["docs-4090-2060", "2:", "RTX"]
    assert rows["lt-nogpu"][1:3] == ["no-gpu", "none"]
    assert rows["lt-nogpu"][3] == "running/running"
    assert rows["lt-deb12"][-1].startswith("12.")
    for stand_in in ("registry", "nvidia-repo", "ollama-registry"):
        assert rows[stand_in][2] == "running"


def test_a_second_lab_up_builds_nothing_and_is_fast(lab):
    spec = " ".join(f"{name}:{profile}:{debian}" for name, (profile, debian) in TEST_HOSTS.items())
    started = time.monotonic()
    result = subprocess.run(["make", "--no-print-directory", "-f", str(LAB_MK), "lab-up", f"LAB_HOSTS={spec}"],
                            capture_output=True, text=True, timeout=300, check=True)
    elapsed = time.monotonic() - started
    steps = [line for line in result.stdout.splitlines() if line.startswith("==> ")]
    changed = [line for line in steps if re.search(r": (docker build|docker import|debootstrap|create|recreate|"
                                                   r"push|start)\b", line)]
    assert changed == [], "a second lab-up changed something:\n" + "\n".join(changed)
    assert elapsed < 30, f"a cached lab-up took {elapsed:.1f}s"
