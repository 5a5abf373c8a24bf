"""Session fixtures for the tests that need the Docker lab (tests/lab/test_lab_*.py).

The `lab` fixture adds a few test hosts (named lt-*) to the running lab with `lab/labctl up`,
which reuses every cached image and every host already up, and removes at the end of the
session the hosts it created. Without a usable Docker engine the tests skip, saying why.
Test modules import the fixtures they use from here (tests/lab has no conftest for them).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
LABCTL = REPO_ROOT / "lab" / "labctl"
LAB_MK = REPO_ROOT / "lab" / "lab.mk"
PROFILES = REPO_ROOT / "lab" / "profiles"
STATE = REPO_ROOT / "lab" / "state"
GROUP_VARS = REPO_ROOT / "inventories" / "lab" / "group_vars" / "all" / "lab.yml"
LABEL = "io.lpfleet.lab=1"
UP_TIMEOUT = 1800

# name -> (GPU profile, Debian version): a GPU host of each platform and a host without GPU.
TEST_HOSTS = {
    "lt-docs": ("docs-4090-2060", "13"),
    "lt-deb12": ("dual-24gb", "12"),
    "lt-nogpu": ("no-gpu", "13"),
}


def run(command: list[str], timeout: float = 120, check: bool = True, env: dict[str, str] | None = None,
        stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """Runs a command; on failure the assertion message carries its output."""
    result = subprocess.run(command, input=stdin, capture_output=True, timeout=timeout, env=env, check=False)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {result.returncode}:\n"
                    f"{result.stdout.decode(errors='replace')[-3000:]}\n{result.stderr.decode(errors='replace')[-3000:]}")
    return result


def docker_problem() -> str | None:
    """Why the Docker lab cannot run here, or None."""
    if shutil.which("docker") is None:
        return "no docker command on PATH (run `make docker`)"
    result = subprocess.run(["docker", "info"], capture_output=True, timeout=60, check=False)
    if result.returncode != 0:
        return f"the Docker engine does not answer (run `make docker`): {result.stderr.decode().strip()[:200]}"
    if os.geteuid() != 0:
        return "building the lab (debootstrap) needs root"
    return None


def pynvml_source() -> bytes:
    """The virtualenv's pynvml: one pure-Python file, runnable by a host's own python3."""
    spec = importlib.util.find_spec("pynvml")
    if spec is None or spec.origin is None:
        pytest.skip("pynvml (nvidia-ml-py) is not installed in this virtualenv (make venv)")
    return Path(spec.origin).read_bytes()


def require_docker() -> None:
    reason = docker_problem()
    if reason:
        pytest.skip(f"Docker lab unavailable: {reason}")


def profile(name: str) -> dict:
    return json.loads((PROFILES / f"{name}.json").read_text())


def group_vars() -> dict:
    return yaml.safe_load(GROUP_VARS.read_text())


def ports_env() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (STATE / "ports.env").read_text().splitlines()
             if line and not line.startswith("#"))
    return dict(pairs)


def lab_hosts() -> set[str]:
    out = run(["docker", "ps", "-a", "--filter", f"label={LABEL}", "--filter", "label=io.lpfleet.lab.role=host",
               "--format", '{{.Label "io.lpfleet.lab.host"}}']).stdout.decode()
    return set(out.split())


@dataclass(frozen=True)
class LabHost:
    name: str
    profile_name: str
    debian: str

    @property
    def container(self) -> str:
        return f"lpfleet-lab-{self.name}"

    @property
    def profile(self) -> dict:
        return profile(self.profile_name)

    def exec(self, *command: str, check: bool = True, timeout: float = 120,
             stdin: bytes | None = None) -> subprocess.CompletedProcess:
        args = ["docker", "exec", *(["-i"] if stdin is not None else []), self.container, *command]
        return run(args, timeout=timeout, check=check, stdin=stdin)

    def shell(self, script: str, check: bool = True, timeout: float = 120) -> str:
        return self.exec("bash", "-euo", "pipefail", "-c", script, check=check, timeout=timeout).stdout.decode()

    def put(self, path: str, data: bytes) -> None:
        """Writes a file inside the running host (docker cp cannot: /tmp is a tmpfs there)."""
        self.exec("sh", "-c", f"cat > {path}", stdin=data)


def labctl_up(hosts: dict[str, tuple[str, str]], env: dict[str, str] | None = None) -> float:
    """`lab/labctl up` for HOSTS; returns the seconds it took."""
    spec = " ".join(f"{name}:{prof}:{debian}" for name, (prof, debian) in hosts.items())
    started = time.monotonic()
    run([str(LABCTL), "up", "--hosts", spec], timeout=UP_TIMEOUT, env=env)
    return time.monotonic() - started


@pytest.fixture(scope="session", name="lab")
def lab_fixture() -> Iterator[dict[str, LabHost]]:
    """The test hosts, up (created when missing; the ones created here go away afterwards)."""
    require_docker()
    before = lab_hosts()
    labctl_up(TEST_HOSTS)
    yield {name: LabHost(name, prof, debian) for name, (prof, debian) in TEST_HOSTS.items()}
    created = sorted(set(TEST_HOSTS) - before)
    if created:
        run([str(LABCTL), "rm-host", *created], timeout=300)
