"""Where the fleet report goes: lpfleet_report_dir, by default reports/ in the directory ansible-playbook
runs in (the playbook project; /runner/project in an AWX job), never inside the collection.

The report runs as `lpfleet.ai.fleet_report` (by FQCN, as from an installed collection, whose
playbook_dir is the collection's playbooks/) from a project directory outside the checkout, against
one host that cannot be reached (its record is written all the same).
"""

from __future__ import annotations

import json
import subprocess

import pytest
from test_playbooks_syntax import ANSIBLE_PLAYBOOK, REPO, ansible_env, free_port, write_inventory


def report(tmp_path, *extra: str) -> subprocess.CompletedProcess[str]:
    project = tmp_path / "project"
    project.mkdir()
    inventory = write_inventory(project / "hosts.yml", {"ghost": {
        "ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": free_port(),
        "ansible_user": "nobody", "ansible_ssh_common_args": "-o ConnectTimeout=5"}})
    return subprocess.run([str(ANSIBLE_PLAYBOOK), "-i", str(inventory), "lpfleet.ai.fleet_report", *extra],
                          cwd=project, env=ansible_env(tmp_path), capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.mark.parametrize(("given", "where"), [((), "reports"), (("-e", "lpfleet_report_dir=out/fleet"), "out/fleet")],
                         ids=["default", "relative"])
def test_the_report_lands_in_the_project_directory(tmp_path, given, where):
    done = report(tmp_path, *given)
    assert done.returncode == 0, done.stdout + done.stderr
    written = tmp_path / "project" / where / "fleet-report.json"
    assert json.loads(written.read_text())["hosts"][0]["host"] == "ghost"
    assert f"Fleet report written to {written.parent}/fleet-report.json" in done.stdout
    assert not (REPO / "playbooks" / "reports").exists()


def test_an_absolute_directory_is_used_as_given(tmp_path):
    target = tmp_path / "shared" / "lpfleet"
    done = report(tmp_path, "-e", f"lpfleet_report_dir={target}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (target / "fleet-report.md").is_file() and not (tmp_path / "project" / "reports").exists()
    assert oct((target / "fleet-report.json").stat().st_mode & 0o777) == "0o600"
