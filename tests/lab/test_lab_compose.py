"""The Livepeer docs' compose file (the seed) starts on a lab host once the stand-in toolkit is in.

Done by hand here, the way the docs and NVIDIA's guide say, on a fresh host of its own:
Debian's Docker packages, the toolkit from the lab's signed repository, `nvidia-ctk runtime
configure`, the network and the volume, `docker compose up -d`. Slow (a few minutes at most).
"""

from __future__ import annotations

import json
import re
import time

import pytest
from lab_fixtures import LABCTL, REPO_ROOT, LabHost, group_vars, labctl_up, require_docker, run

pytestmark = pytest.mark.slow

SEED = REPO_ROOT.parent / "shared" / "seeds" / "000_86613071044f55d4.txt"
HOST = LabHost("lt-compose", "single-8gb", "13")
KEYRING = "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg"
HEALTH_PROBE = "import urllib.request; print(urllib.request.urlopen('http://llm_runner:8000/health').read().decode())"


def seed_compose_file() -> str:
    """The docker-compose.yml block of the seed, unindented."""
    if not SEED.is_file():
        pytest.skip(f"the seed {SEED} is absent (it lives outside the repository, in ../shared/seeds)")
    found = re.search(r"```yaml[^\n]*docker-compose\.yml[^\n]*\n(.*?)\n\s*```", SEED.read_text(), re.DOTALL)
    assert found, f"no docker-compose.yml block in {SEED}"
    block = found.group(1).splitlines()
    indent = min(len(line) - len(line.lstrip()) for line in block if line.strip())
    return "\n".join(line[indent:] for line in block) + "\n"


def lab_compose_file() -> str:
    """The seed's file with the two images pointed at the lab registry, nothing else changed."""
    original = seed_compose_file()
    images = {"tztcloud/livepeer-ollama-runner:0.1.1": group_vars()["ollama_stack_runner_image"],
              "ollama/ollama:latest": group_vars()["ollama_stack_ollama_image"]}
    for upstream, lab_image in images.items():
        assert f"image: {upstream}\n" in original, f"the seed no longer uses {upstream}"
        original = original.replace(f"image: {upstream}\n", f"image: {lab_image}\n")
    return original


def install_engine_and_toolkit(host: LabHost) -> None:
    host.shell(f"""
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends docker.io docker-cli docker-compose gnupg >/dev/null
python3 -c 'import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1]).read())' \
  http://nvidia-repo/libnvidia-container/gpgkey | gpg --batch --yes --dearmor -o {KEYRING}
echo 'deb [signed-by={KEYRING}] http://nvidia-repo/libnvidia-container/stable/deb/$(ARCH) /' \
  > /etc/apt/sources.list.d/nvidia-container-toolkit.list
apt-get update -qq
apt-get install -y -qq nvidia-container-toolkit >/dev/null
echo '{{"insecure-registries": ["registry:5000"]}}' > /etc/docker/daemon.json
nvidia-ctk runtime configure --runtime=docker
systemctl restart docker
""", timeout=900)


def running_containers(host: LabHost) -> dict[str, str]:
    out = host.exec("docker", "ps", "--format", "{{.Names}} {{.State}}").stdout.decode()
    return dict(line.split(" ", 1) for line in out.splitlines())


@pytest.fixture(name="fresh_host")
def fresh_host_fixture():
    require_docker()
    run([str(LABCTL), "rm-host", HOST.name], timeout=300)
    labctl_up({HOST.name: (HOST.profile_name, HOST.debian)})
    yield HOST
    run([str(LABCTL), "rm-host", HOST.name], timeout=300)


def test_the_seed_compose_file_starts_on_a_lab_host(fresh_host, record_property):
    compose = lab_compose_file()
    timings = {}
    started = time.monotonic()
    install_engine_and_toolkit(fresh_host)
    timings["install_s"] = time.monotonic() - started

    fresh_host.exec("mkdir", "-p", "/opt/seed")
    fresh_host.put("/opt/seed/docker-compose.yml", compose.encode())
    fresh_host.shell("docker network create livepeer-ai >/dev/null && docker volume create ollama >/dev/null")
    started = time.monotonic()
    fresh_host.shell("cd /opt/seed && docker compose up -d --quiet-pull", timeout=600)
    timings["compose_up_s"] = time.monotonic() - started

    deadline = time.monotonic() + 60
    while running_containers(fresh_host) != {"ollama": "running", "llm_runner": "running"}:
        assert time.monotonic() < deadline, f"containers: {running_containers(fresh_host)}"
        time.sleep(1)
    # The GPU reservation reached Ollama: the toolkit stand-in injected the driver stand-in.
    gpus = fresh_host.exec("docker", "exec", "ollama", "nvidia-smi", "-L").stdout.decode()
    assert [line.split(" (UUID")[0] for line in gpus.splitlines()] == [
        f"GPU {gpu['index']}: {gpu['name']}" for gpu in fresh_host.profile["gpus"]]
    # Nested containers on livepeer-ai resolve the lab's names: Ollama pulls from ollama-registry.
    pull = fresh_host.exec("docker", "exec", "ollama", "ollama", "pull", "llama3.1:8b", timeout=300)
    assert "success" in (pull.stdout + pull.stderr).decode().split()
    # The runner reaches Ollama by its container name and reports healthy.
    health = fresh_host.exec("docker", "exec", "llm_runner", "python3", "-c", HEALTH_PROBE).stdout
    assert json.loads(health) == {"status": "OK"}
    for name, seconds in timings.items():
        record_property(name, round(seconds, 1))
    print(f"seed compose on a lab host: {timings}")

