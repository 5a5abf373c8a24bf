"""`make lab-down` removes the lab's containers, networks and volumes and nothing else;
`make lab-clean` also removes its images and caches.

Run against a separate lab instance (LPFLEET_LAB_INSTANCE), so that the lab other work uses
stays up. Its images are built from nothing except the debootstrap root file systems, which are
seeded from the default lab: its cached tarballs, linked in, or, where its cache lacks them (a
fresh clone has an empty .cache/lab; the pybase tarball is often gone), the layer of the root
file system image the default lab imported, which the Docker engine keeps. `clean` must remove
them all the same, and debootstrap is the one step of a cold build this test has nothing to
learn from.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from lab_fixtures import LAB_MK, REPO_ROOT, require_docker, run

pytestmark = pytest.mark.slow

INSTANCE = "ltclean"
INSTANCE_LABEL = f"label=io.lpfleet.lab={INSTANCE}"
DEFAULT_LABEL = "label=io.lpfleet.lab=1"
UNRELATED = "lt-unrelated"
INSTANCE_CACHE = REPO_ROOT / ".cache" / f"lab_{INSTANCE}"
DEFAULT_CACHE = REPO_ROOT / ".cache" / "lab"


def make(target: str, *variables: str, timeout: float = 1800) -> float:
    env = dict(os.environ, LPFLEET_LAB_INSTANCE=INSTANCE)
    started = time.monotonic()
    run(["make", "--no-print-directory", "-f", str(LAB_MK), target, *variables], timeout=timeout, env=env)
    return time.monotonic() - started


# The default lab's root file system images (lab/labctl's rootfs_image) and their Debian suites.
ROOTFS_IMAGES = {"pybase": "trixie", "host-rootfs-trixie": "trixie", "host-rootfs-bookworm": "bookworm"}


def default_rootfs_tags() -> dict[str, str]:
    """Tarball name (rootfs-SUITE-DIGEST.tar, as labctl names it) -> the default lab's image of it: the
    content tag that :latest (the last import) points at."""
    tags = {}
    for name, suite in ROOTFS_IMAGES.items():
        listing = run(["docker", "images", "--format", "{{.Tag}} {{.ID}}", f"lpfleet-lab/{name}"]).stdout.decode()
        ids_by_tag = dict(line.split() for line in listing.splitlines() if line.strip())
        latest = ids_by_tag.pop("latest", None)
        tags.update({f"rootfs-{suite}-{tag}.tar": f"lpfleet-lab/{name}:{tag}"
                     for tag, image in ids_by_tag.items() if image == latest})
    return tags


def save_image_layer(image: str, target: Path) -> None:
    """TARGET: the one layer of IMAGE (an imported tarball: the same files), from `docker save`."""
    saved = target.with_suffix(".save")
    with saved.open("wb") as out:
        subprocess.run(["docker", "save", image], stdout=out, check=True, timeout=300)
    with tarfile.open(saved) as archive:
        layers = json.load(archive.extractfile("manifest.json"))[0]["Layers"]
        assert len(layers) == 1, f"{image} has {len(layers)} layers, not the one of an imported root file system"
        member = archive.getmember(layers[0])
        while member.issym():  # a layer shared with another image in the archive
            member = archive.getmember(os.path.normpath(os.path.join(os.path.dirname(member.name), member.linkname)))
        partial = target.with_suffix(".partial")
        with archive.extractfile(member) as layer, partial.open("wb") as out:
            shutil.copyfileobj(layer, out, 1 << 20)
    saved.unlink()
    partial.rename(target)


def seed_root_file_systems() -> dict[str, list[Path]]:
    """The default lab's debootstrap tarballs in the instance's cache (same file names): hard links of the
    ones in its cache, the others from its images. By how: {"linked": [...], "from_images": [...]}."""
    INSTANCE_CACHE.mkdir(parents=True, exist_ok=True)
    seeded: dict[str, list[Path]] = {"linked": [], "from_images": []}
    for tarball in sorted(DEFAULT_CACHE.glob("rootfs-*.tar")):
        target = INSTANCE_CACHE / tarball.name
        if not target.exists():
            os.link(tarball, target)
        seeded["linked"].append(target)
    for name, image in sorted(default_rootfs_tags().items()):
        target = INSTANCE_CACHE / name
        if not target.exists():
            save_image_layer(image, target)
            seeded["from_images"].append(target)
    return seeded


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
    seeded = seed_root_file_systems()
    cold = make("lab-up", "LAB_HOSTS=lt-one:single-8gb")
    record_property("cold_lab_up_s", round(cold, 1))
    record_property("seeded_root_file_systems", {how: len(paths) for how, paths in seeded.items()})
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
    assert not INSTANCE_CACHE.exists()
    assert all(unrelated_objects().values()), unrelated_objects()
    assert default_lab_before["images"] <= lab_objects(DEFAULT_LABEL)["images"]
    assert all(tarball.exists() for tarball in DEFAULT_CACHE.glob("rootfs-*.tar")), "clean removed a shared tarball"
    print(f"lab-up of one host and the stand-ins ({len(seeded['linked'])} root file systems linked, "
          f"{len(seeded['from_images'])} from images): {cold:.0f}s")
