"""Every entry point of every role is declared in its meta/argument_specs.yml, with its inputs.

An entry point is a tasks file another place runs with `tasks_from` (roles, playbooks, molecule) or
one its own role never includes. Each `tasks_from` names the entry point without `.yml`: only then
does Ansible validate the inputs against the spec of that name (with `.yml` it validates none).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "roles"
ROLE_ACTIONS = {f"{prefix}{verb}_role" for prefix in ("", "ansible.builtin.") for verb in ("include", "import")}
TASK_ACTIONS = {f"{prefix}{verb}_tasks" for prefix in ("", "ansible.builtin.") for verb in ("include", "import")}


def yaml_files() -> list[Path]:
    found = [*ROLES.glob("*/tasks/*.yml"), *ROLES.glob("*/handlers/*.yml"), *(REPO / "playbooks").glob("*.yml")]
    return sorted(found + sorted((REPO / "molecule").rglob("*.yml")))


def dicts(node) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from dicts(value)
    elif isinstance(node, list):
        for value in node:
            yield from dicts(value)


def tasks_from_uses() -> list[tuple[str, str, str]]:
    """(where, role, tasks_from) for every include_role/import_role with tasks_from."""
    uses = []
    for path in yaml_files():
        for node in dicts(yaml.safe_load(path.read_text())):
            for key in ROLE_ACTIONS & node.keys():
                args = node[key]
                if isinstance(args, dict) and "tasks_from" in args:
                    where = str(path.relative_to(REPO))
                    uses += [(where, role, str(args["tasks_from"])) for role in role_names(str(args["name"]))]
    return uses


def role_names(name: str) -> list[str]:
    """The roles NAME stands for: preflight's loop over preflight_host_checked_roles stands for each of them."""
    if "{{" in name:
        defaults = yaml.safe_load((ROLES / "preflight" / "defaults" / "main.yml").read_text())
        assert "__preflight_host_checked_role" in name, f"a role name only preflight's loop may template: {name}"
        return list(defaults["preflight_host_checked_roles"])
    return [name.removeprefix("lpfleet.ai.")]


def specs(role: str) -> dict:
    path = ROLES / role / "meta" / "argument_specs.yml"
    return yaml.safe_load(path.read_text())["argument_specs"] if path.exists() else {}


def roles() -> list[str]:
    return sorted(path.name for path in ROLES.iterdir() if (path / "tasks" / "main.yml").exists())


def included_by_own_role(role: str) -> set[str]:
    names = set()
    for path in (ROLES / role / "tasks").glob("*.yml"):
        for node in dicts(yaml.safe_load(path.read_text())):
            for key in TASK_ACTIONS & node.keys():
                args = node[key]
                target = args.get("file") if isinstance(args, dict) else args
                names |= set(re.findall(r"([a-z0-9_]+)\.yml", str(target)))
    return names


@pytest.mark.parametrize(("where", "role", "entry"), tasks_from_uses(), ids=lambda value: str(value))
def test_every_tasks_from_names_a_declared_entry_point(where, role, entry):
    assert not entry.endswith((".yml", ".yaml")), (
        f"{where}: tasks_from: {entry} for {role}: write it without .yml, or Ansible validates no argument spec")
    assert (ROLES / role / "tasks" / f"{entry}.yml").is_file(), f"{where}: {role} has no tasks/{entry}.yml"
    assert entry in specs(role), f"{where}: {role}'s meta/argument_specs.yml does not declare entry point {entry}"


@pytest.mark.parametrize("role", roles())
def test_every_entry_point_of_a_role_is_declared_and_every_declared_one_exists(role):
    declared = specs(role)
    files = {path.stem for path in (ROLES / role / "tasks").glob("*.yml")}
    used = {entry for _, used_role, entry in tasks_from_uses() if used_role == role}
    entry_points = {"main"} | used | (files - included_by_own_role(role))
    assert sorted(entry_points - declared.keys()) == [], f"{role}: entry points without an argument spec"
    assert sorted(declared.keys() - files) == [], f"{role}: argument specs for tasks files that do not exist"
    for name, spec in declared.items():
        assert spec.get("short_description"), f"{role}: entry point {name} has no short_description"
        for option, details in (spec.get("options") or {}).items():
            assert details.get("description"), f"{role}: {name}: option {option} has no description"
