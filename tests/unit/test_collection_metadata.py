"""The collection declares what it uses and nothing else: galaxy.yml, requirements.yml, LICENSE.

Every other collection the shipped YAML (roles, playbooks) calls by FQCN is a galaxy.yml dependency,
every dependency is called, each with an upper bound, and requirements.yml gives the same ranges
(plus what only this checkout's ansible.cfg and molecule use, marked development-only there).
"""

from __future__ import annotations

import re
from pathlib import Path

import ansible_collections
import yaml

REPO = Path(__file__).resolve().parents[2]
GALAXY = yaml.safe_load((REPO / "galaxy.yml").read_text())
REQUIREMENTS = {item["name"]: item["version"] for item in
                yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]}


def installed_collections() -> set[str]:
    """namespace.name of every collection the pinned `ansible` package carries."""
    found = set()
    for root in map(Path, ansible_collections.__path__):
        found |= {f"{ns.name}.{coll.name}" for ns in root.iterdir() if ns.is_dir()
                  for coll in ns.iterdir() if (coll / "MANIFEST.json").exists()}
    return found


def called(paths: list[Path]) -> set[str]:
    """The collections (namespace.name) whose content PATHS call by FQCN."""
    known = installed_collections() - {"ansible.builtin"}
    pattern = re.compile(r"\b([a-z0-9_]+\.[a-z0-9_]+)\.[a-z0-9_]+\b")
    return {match for path in paths for match in pattern.findall(path.read_text()) if match in known}


def shipped_yaml() -> list[Path]:
    return sorted([*(REPO / "roles").rglob("*.yml"), *(REPO / "roles").rglob("*.j2"),
                   *(REPO / "playbooks").rglob("*.yml"), *(REPO / "playbooks").rglob("*.j2")])


def test_the_dependencies_are_what_the_collection_calls():
    assert set(GALAXY["dependencies"]) == called(shipped_yaml()) == {"community.docker"}


def test_every_range_has_an_upper_bound_and_requirements_agree_with_galaxy():
    for name, spec in {**REQUIREMENTS, **GALAXY["dependencies"]}.items():
        assert re.fullmatch(r">=\d+\.\d+\.\d+,<\d+\.\d+\.\d+", spec), f"{name}: {spec} has no upper bound"
    for name, spec in GALAXY["dependencies"].items():
        assert REQUIREMENTS.get(name) == spec, f"{name}: requirements.yml {REQUIREMENTS.get(name)}, galaxy.yml {spec}"


def test_what_requirements_adds_is_used_by_the_checkout_only():
    development = set(REQUIREMENTS) - set(GALAXY["dependencies"])
    used_here = called([REPO / "ansible.cfg", *sorted((REPO / "molecule").rglob("*.yml"))])
    assert development == {"ansible.posix"} and development <= used_here
    assert not development & called(shipped_yaml())


def test_license_is_the_mit_text_galaxy_declares():
    assert GALAXY["license"] == ["MIT"]
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Permission is hereby granted, free of charge" in text
