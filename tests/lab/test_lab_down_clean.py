"""`make lab-down` removes the lab's containers, networks and volumes and nothing else;
`make lab-clean` also removes its images and caches.

Run against a separate lab instance (LPFLEET_LAB_INSTANCE) built from nothing, so that the
lab other work uses stays up; the build is therefore cold and timed (a few minutes).
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from lab_fixtures import LAB_MK, REPO_ROOT, require_docker, run

pytestmark = pytest.mark.slow

INSTANCE = "ltclean"
INSTANCE_LABEL = f"label=io.lpfleet.lab={INSTANCE}"
DEFAULT_LABEL = "label=io.lpfleet.lab=1"
UNRELATED = "lt-unrelated"


def make(target: str, *variables: str, timeout: float = 1800) -> float:
    env = dict(os.environ, LPFLEET_LAB_INSTANCE=INSTANCE)
    started = time.monotonic()
    run(["make", "--no-print-directory", "-f", str(LAB_MK), target, *variables], timeout=timeout, env=env)
    return time.monotonic() - started


def ids(*listing: str) -> set[str]:
    return set(run(["docker", *listing]).stdout.decode().split())


def lab_objects(label: str) -> dict[str, set[str]]:
    return {
        "containers": ids("ps", "-aq", "--filter", label),
        "networks": ids("network", "ls", "-q", "--filter", label),
        "volumes": ids("volume", "ls", "-q", "--filter", label),
        "images": ids("images", "-aq", "--filter", label),
    }


def unrelated_objects() -> dict[str, bool]:
    def exists(*inspect: str) -> bool:
        return subprocess.run(["docker", *inspect], capture_output=True, check=False).returncode == 0

    return {
        "container": exists("container", "inspect", f"{UNRELATED}-container"),
        "network": exists("network", "inspect", f"{UNRELATED}-network"),
        "volume": exists("volume", "inspect", f"{UNRELATED}-volume"),
        "image": exists("image", "inspect", f"{UNRELATED}/empty:1"),
    }


@pytest.fixture(name="unrelated")
def unrelated_fixture():
    """A container, network, volume and image that have nothing to do with the lab."""
    require_docker()
    empty_tar = run(["tar", "-c", "-T", "/dev/null"]).stdout
    run(["docker", "import", "-", f"{UNRELATED}/empty:1"], stdin=empty_tar)
    run(["docker", "create", "--name", f"{UNRELATED}-container", f"{UNRELATED}/empty:1", "/none"])
    run(["docker", "network", "create", f"{UNRELATED}-network"])
    run(["docker", "volume", "create", f"{UNRELATED}-volume"])
    yield
    run(["docker", "rm", "-f", f"{UNRELATED}-container"], check=False)
    run(["docker", "network", "rm", f"{UNRELATED}-network"], check=False)
    run(["docker", "volume", "rm", f"{UNRELATED}-volume"], check=False)
    run(["docker", "rmi", f"{UNRELATED}/empty:1"], check=False)


def test_lab_down_then_lab_clean_remove_the_lab_and_nothing_else(unrelated, record_property):
    default_lab_before = lab_objects(DEFAULT_LABEL)
    cold = make("lab-up", "LAB_HOSTS=lt-one:single-8gb")
    record_property("cold_lab_up_s", round(cold, 1))
    created = lab_objects(INSTANCE_LABEL)
    assert all(created.values()), f"the instance lab lacks something: {created}"

    make("lab-down", timeout=600)
    after_down = lab_objects(INSTANCE_LABEL)
    assert after_down["containers"] == after_down["networks"] == after_down["volumes"] == set()
    assert after_down["images"] == created["images"], "lab-down must keep the images"
    assert all(unrelated_objects().values()), unrelated_objects()
    default_lab = lab_objects(DEFAULT_LABEL)
    for kind, before in default_lab_before.items():
        assert before <= default_lab[kind], f"lab-down of another lab removed {kind} of the default lab"

    make("lab-clean", timeout=600)
    assert lab_objects(INSTANCE_LABEL) == {"containers": set(), "networks": set(), "volumes": set(), "images": set()}
    leftover = run(["docker", "images", "-q", "--filter", f"reference=lpfleet-lab_{INSTANCE}/*"]).stdout.split()
    assert leftover == [], "images of the cleaned lab remain"
    assert not (REPO_ROOT / ".cache" / f"lab_{INSTANCE}").exists()
    assert all(unrelated_objects().values()), unrelated_objects()
    assert default_lab_before["images"] <= lab_objects(DEFAULT_LABEL)["images"]
    print(f"cold lab-up of one host and the stand-ins: {cold:.0f}s")
