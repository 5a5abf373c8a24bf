"""lpfleet.ai.docker_daemon_json: the one reader and merger of Docker's daemon.json. Real files in a temporary
directory; `dockerd` is a small script on PATH that reports a version and accepts or refuses a file."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from http_servers import run_module

from ansible_collections.lpfleet.ai.plugins.modules import docker_daemon_json

FAKE_DOCKERD = """#!{python}
import json, os, sys
if sys.argv[1] == "--version":
    print("Docker version " + os.environ["FAKE_DOCKERD_VERSION"] + ", build deadbeef")
    sys.exit(0)
config = json.load(open(sys.argv[sys.argv.index("--config-file") + 1]))
open(os.environ["FAKE_DOCKERD_SEEN"], "w").write(json.dumps(config))
if "bogus-option" in config:
    print("unable to configure the Docker daemon with file x: the following directives don't match any "
          "configuration option: bogus-option", file=sys.stderr)
    sys.exit(1)
print("configuration OK")
"""

# As nvidia-ctk writes it: four-space indentation, no final newline.
NVIDIA_CTK_STYLE = json.dumps({"runtimes": {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}}, indent=4)


@pytest.fixture
def daemon(tmp_path, monkeypatch):
    """The path of daemon.json in a directory of its own, with a fake dockerd 26.1 on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "dockerd"
    fake.write_text(FAKE_DOCKERD.format(python=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DOCKERD_VERSION", "26.1.5+dfsg1")
    monkeypatch.setenv("FAKE_DOCKERD_SEEN", str(tmp_path / "seen.json"))
    etc = tmp_path / "etc" / "docker"
    etc.mkdir(parents=True)
    return etc / "daemon.json"


def run(path: Path, options: dict, **args) -> dict:
    return run_module(docker_daemon_json.main, {"path": str(path), "options": options, **args})


def backups(path: Path) -> list[str]:
    return sorted(name for name in os.listdir(path.parent) if name.startswith("daemon.json.") and name != path.name)


def test_merges_key_by_key_keeping_what_others_own(daemon):
    daemon.write_text(NVIDIA_CTK_STYLE)
    result = run(daemon, {"insecure-registries": ["registry:5000"], "runtimes": {"other": {"path": "x"}}})
    assert result["changed"] and result["validated"]
    written = json.loads(daemon.read_text())
    assert written == {"insecure-registries": ["registry:5000"],
                       "runtimes": {"nvidia": {"args": [], "path": "nvidia-container-runtime"}, "other": {"path": "x"}}}
    assert oct(daemon.stat().st_mode & 0o777) == "0o644"
    assert len(backups(daemon)) == 1 and result["backup_file"].endswith(backups(daemon)[0])


def test_lists_and_values_are_replaced_not_appended(daemon):
    daemon.write_text('{"insecure-registries": ["old:5000"], "log-opts": {"max-size": "10m", "max-file": "3"}}')
    run(daemon, {"insecure-registries": ["registry:5000"], "log-opts": {"max-size": "100m"}})
    assert json.loads(daemon.read_text()) == {"insecure-registries": ["registry:5000"],
                                              "log-opts": {"max-size": "100m", "max-file": "3"}}


def test_same_content_in_another_layout_is_no_change(daemon):
    daemon.write_text(NVIDIA_CTK_STYLE)
    result = run(daemon, {"runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}}})
    assert result["changed"] is False
    assert daemon.read_text() == NVIDIA_CTK_STYLE and backups(daemon) == []


def test_missing_file_is_empty_and_created_only_when_there_is_something_to_say(daemon):
    assert run(daemon, {})["changed"] is False and not daemon.exists()
    result = run(daemon, {"insecure-registries": ["registry:5000"]})
    assert result["changed"] and json.loads(daemon.read_text()) == {"insecure-registries": ["registry:5000"]}
    assert "backup_file" not in result
    assert run(daemon, {"insecure-registries": ["registry:5000"]})["changed"] is False


def test_check_mode_and_diff_show_the_change_and_write_nothing(daemon):
    daemon.write_text('{"debug": true}')
    result = run(daemon, {"debug": False}, _ansible_check_mode=True, _ansible_diff=True)
    assert result["changed"] and result["config"] == {"debug": False}
    assert '"debug": true' in result["diff"]["before"] and '"debug": false' in result["diff"]["after"]
    assert daemon.read_text() == '{"debug": true}' and backups(daemon) == []


@pytest.mark.parametrize("content, problem", [
    ('{"debug": true,', "is not valid JSON"),
    ('["registry:5000"]', "holds a JSON list, not an object"),
])
def test_a_broken_file_is_named_and_left_alone(daemon, content, problem):
    daemon.write_text(content)
    result = run(daemon, {"debug": True})
    assert result["failed"] and problem in result["msg"] and str(daemon) in result["msg"]
    assert daemon.read_text() == content


def test_dockerd_refusing_the_merged_file_stops_before_writing(daemon, tmp_path):
    daemon.write_text('{"debug": true}')
    result = run(daemon, {"bogus-option": 1})
    assert result["failed"] and "bogus-option" in result["msg"] and "Nothing was written" in result["msg"]
    assert json.loads((tmp_path / "seen.json").read_text()) == {"debug": True, "bogus-option": 1}
    assert daemon.read_text() == '{"debug": true}' and backups(daemon) == []


def test_dockerd_before_23_cannot_validate_so_it_is_not_asked(daemon, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_DOCKERD_VERSION", "20.10.24+dfsg1")
    result = run(daemon, {"debug": True})
    assert result["changed"] and result["validated"] is False
    assert not (tmp_path / "seen.json").exists()
    result = run(daemon, {"debug": False}, validate=False)
    assert result["validated"] is False
