"""lpfleet.ai.applied_state: a role's record and the drift found against it (the module run in this process).

Files are real files under tmp_path; Ollama is the Ollama-like fixture server; `docker`, `systemctl` and
`dpkg-query` are small fake programs on PATH that answer from a JSON state file as the real ones print.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from http_servers import OllamaServer, run_module

from ansible_collections.lpfleet.ai.plugins.action.applied_state import role_code_sha256
from ansible_collections.lpfleet.ai.plugins.modules import applied_state

FAKE_TOOL = r'''
import json, os, sys
state = json.load(open(os.environ["FAKE_HOST_STATE"]))
tool, args = os.path.basename(sys.argv[0]), sys.argv[1:]
names = args[args.index("--") + 1:]
if tool == "docker" and state.get("daemon_down"):
    sys.stderr.write("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                     "Is the docker daemon running?\n")
    sys.exit(1)
elif tool == "docker":
    found = [state[args[0]][name] for name in names if name in state.get(args[0], {})]
    print(json.dumps(found))
    missing = [name for name in names if name not in state.get(args[0], {})]
    if missing:
        sys.stderr.write("Error: No such object: %s\n" % missing[0])
        sys.exit(1)
elif tool == "systemctl":
    print("\n\n".join("Id=%s\nActiveState=%s\nUnitFileState=%s" % (name, *state["units"].get(name, ["inactive", ""]))
                      for name in names))
elif tool == "dpkg-query":
    for name in names:
        if name in state["packages"]:
            print("%s\tinstalled\t%s" % (name, state["packages"][name]))
        else:
            sys.stderr.write("dpkg-query: no packages found matching %s\n" % name)
'''


class Host:
    """The fake host: its state file, its daemon.json, and the record directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.records = root / "applied"
        self.daemon_json = root / "daemon.json"
        self.daemon_json.write_text(json.dumps({"runtimes": {"nvidia": {"path": "nvidia-container-runtime"}},
                                                "log-driver": "json-file"}))
        self.state = {
            "container": {"ollama": self.container("ollama", "c1", True)},
            "network": {"livepeer-ai": {"Name": "livepeer-ai", "Id": "n1"}},
            "volume": {"ollama": {"Name": "ollama", "CreatedAt": "2026-11-30T10:00:00Z"}},
            "units": {"docker.service": ["active", "enabled"]},
            "packages": {"docker.io": "20.10.24+dfsg1-1+b3"},
        }
        self.save()

    @staticmethod
    def container(name: str, ident: str, running: bool) -> dict:
        return {"Name": "/" + name, "Id": ident, "State": {"Running": running},
                "Config": {"Image": "ollama/ollama:0.6"}, "Image": "sha256:" + "e" * 64}

    def save(self) -> None:
        (self.root / "state.json").write_text(json.dumps(self.state))


@pytest.fixture
def host(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("docker", "systemctl", "dpkg-query"):
        program = bin_dir / tool
        program.write_text(f"#!{sys.executable}\n{FAKE_TOOL}")
        program.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_HOST_STATE", str(tmp_path / "state.json"))
    return Host(tmp_path)


@pytest.fixture
def ollama():
    with OllamaServer() as server:
        server.install("llama3.1:8b")
        server.loaded["llama3.1:8b"] = datetime.now(UTC) + timedelta(days=3650)
        yield server


def watch_of(host: Host, ollama: OllamaServer | None = None, planned: list[str] | None = None) -> dict:
    """The watch; PLANNED (every model the plan puts in the Ollama, as ollama_models' watch gives it) or none."""
    watch = {"files": [str(host.daemon_json)],
             "json_keys": [{"path": str(host.daemon_json), "keys": ["runtimes"]}],
             "units": ["docker.service"], "containers": ["ollama"], "networks": ["livepeer-ai"],
             "volumes": ["ollama"], "packages": ["docker.io"]}
    if ollama:
        watch["ollama"] = [{"url": ollama.url, "models": ["llama3.1:8b"]}]
        if planned is not None:
            watch["ollama"][0]["planned"] = planned
    return watch


def run(host: Host, state: str, inputs=None, watch=None, **extra) -> dict:
    args = {"name": "demo", "state": state, "inputs": {"demo_option": "alpha-7"} if inputs is None else inputs,
            "watch": watch_of(host) if watch is None else watch, "dir": str(host.records), "ollama_timeout": 5}
    return run_module(applied_state.main, dict(args, **extra))


def recorded(host: Host, **args) -> None:
    result = run(host, "record", **args)
    assert not result.get("failed"), result
    assert run(host, "check", **args)["in_sync"]


def test_without_a_record_the_role_applies_and_the_record_then_holds(host):
    first = run(host, "check")
    assert (first["in_sync"], first["reason"]) == (False, "no record of an earlier demo apply on this host")
    written = run(host, "record")
    assert written["written"] and not written["changed"] and written["path"] == str(host.records / "demo.json")
    record = host.records / "demo.json"
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    assert stat.S_IMODE(host.records.stat().st_mode) == 0o700
    assert [p.name for p in host.records.iterdir()] == ["demo.json"]  # no temporary file left
    again = run(host, "check")
    assert (again["in_sync"], again["reason"], again["changed"]) == (True, "", False)
    assert not run(host, "record")["written"]  # the same observation: nothing written


def test_changed_inputs_are_found_and_never_stored_or_returned(host):
    secret = "tok-3f9a81c2d"
    recorded(host, inputs={"token": secret, "port": "port-8000"})
    result = run(host, "check", inputs={"token": secret, "port": "port-8001"})
    assert (result["in_sync"], result["reasons"]) == (False, ["inputs changed"])
    assert secret not in (host.records / "demo.json").read_text()
    assert secret not in json.dumps(result)


def test_an_edited_file_and_its_mode_are_named(host):
    recorded(host)
    document = json.loads(host.daemon_json.read_text())
    document["log-driver"] = "syslog"  # a key no watched json_keys entry names: only the whole-file watch sees it
    host.daemon_json.write_text(json.dumps(document))
    host.daemon_json.chmod(0o600)
    reasons = run(host, "check")["reasons"]
    assert reasons == [f"{host.daemon_json} changed since lpfleet wrote it",
                       f"{host.daemon_json}'s mode changed (0644 -> 0600)"]


def test_json_keys_see_only_the_keys_lpfleet_owns(host):
    watch = {"json_keys": [{"path": str(host.daemon_json), "keys": ["runtimes"]}]}
    recorded(host, watch=watch)
    document = json.loads(host.daemon_json.read_text())
    document["registry-mirrors"] = ["https://mirror.example"]  # another writer's key
    host.daemon_json.write_text(json.dumps(document))
    assert run(host, "check", watch=watch)["in_sync"]
    del document["runtimes"]
    host.daemon_json.write_text(json.dumps(document))
    result = run(host, "check", watch=watch)
    assert result["reason"] == f"{host.daemon_json} changed since lpfleet wrote it (key(s) runtimes)"
    host.daemon_json.write_text("{not json")
    assert run(host, "check", watch=watch)["reason"] == f"{host.daemon_json} is not JSON (lpfleet wrote it)"


def test_a_stopped_a_recreated_and_a_removed_container(host):
    recorded(host)
    host.state["container"]["ollama"]["State"]["Running"] = False
    host.save()
    assert run(host, "check")["reason"] == "container ollama is not running"
    host.state["container"]["ollama"] = host.container("ollama", "c2", True)
    host.save()
    assert run(host, "check")["reason"] == "container ollama was recreated or appeared since lpfleet's last apply"
    del host.state["container"]["ollama"]
    host.save()
    assert run(host, "check")["reason"] == "container ollama is missing"


def test_units_packages_networks_and_volumes(host):
    recorded(host)
    host.state["units"]["docker.service"] = ["failed", "disabled"]
    host.state["packages"]["docker.io"] = "26.1.5+dfsg1-9"
    del host.state["network"]["livepeer-ai"]
    host.state["volume"]["ollama"]["CreatedAt"] = "2026-11-30T12:00:00Z"
    host.save()
    assert run(host, "check")["reasons"] == [
        "unit docker.service is failed (was active)",
        "unit docker.service is disabled at boot (was enabled)",
        "Docker network livepeer-ai is missing",
        "Docker volume ollama was recreated or appeared since lpfleet's last apply",
        "package docker.io is 26.1.5+dfsg1-9 (lpfleet left 20.10.24+dfsg1-1+b3)",
    ]


def test_a_deleted_model_an_unloaded_warm_one_and_a_stranger_in_ollama(host, ollama):
    recorded(host, watch=watch_of(host, ollama))
    ollama.loaded.clear()
    assert run(host, "check", watch=watch_of(host, ollama))["reason"] == (
        f"warm model llama3.1:8b is not loaded in the Ollama at {ollama.url}")
    del ollama.models["llama3.1:8b"]
    ollama.registry["phi3:mini"] = {"digest": "f6" * 32, "layers": [("sha256:" + "d4" * 32, 50)]}
    ollama.install("phi3:mini")
    assert run(host, "check", watch=watch_of(host, ollama))["reasons"] == [
        f"model llama3.1:8b is missing from the Ollama at {ollama.url}",
        f"model phi3:mini appeared in the Ollama at {ollama.url}",
    ]


def load(ollama: OllamaServer, *tags: str) -> None:
    """TAGS installed (from the fixture's registry) and loaded, as `ollama run` or a request leaves them."""
    for tag in tags:
        ollama.registry.setdefault(tag, {"digest": tag.encode().hex()[:64].ljust(64, "0"),
                                         "layers": list(OllamaServer.LAYERS)})
        ollama.install(tag)
        ollama.loaded[tag] = datetime.now(UTC) + timedelta(days=3650)


def test_a_loaded_model_the_plan_does_not_put_in_that_ollama_is_drift_a_planned_cold_one_is_not(host, ollama):
    # The plan names a cold `phi3` (Ollama lists it as phi3:latest) besides the warm llama3.1:8b; mistral:7b, off the
    # menu, stays in the volume (ollama_models_prune false) and is not loaded when the role records.
    load(ollama, "phi3:latest", "mistral:7b")
    ollama.loaded.pop("phi3:latest")
    ollama.loaded.pop("mistral:7b")
    watch = watch_of(host, ollama, planned=["llama3.1:8b", "phi3"])
    recorded(host, watch=watch)
    ollama.loaded["phi3:latest"] = datetime.now(UTC) + timedelta(minutes=5)  # traffic asked for it
    assert run(host, "check", watch=watch)["in_sync"]
    ollama.loaded["mistral:7b"] = datetime.now(UTC) + timedelta(minutes=5)  # `ollama run mistral:7b` by hand
    result = run(host, "check", watch=watch)
    assert (result["in_sync"], result["reasons"]) == (False, [
        f"model mistral:7b is loaded in the Ollama at {ollama.url}, which the plan does not put there"])
    del ollama.loaded["mistral:7b"]  # the role's unload
    assert run(host, "check", watch=watch)["in_sync"]


def test_an_unplanned_loaded_model_in_the_record_itself_is_still_drift(host, ollama):
    """Traffic can load a dropped model again between the role's unload and its record: the next run applies."""
    load(ollama, "mistral:7b")
    watch = watch_of(host, ollama, planned=["Llama3.1:8b"])  # case ignored, as Ollama does
    assert run(host, "record", watch=watch)["written"]
    assert run(host, "check", watch=watch)["reasons"] == [
        f"model mistral:7b is loaded in the Ollama at {ollama.url}, which the plan does not put there"]


def test_without_the_planned_list_loaded_models_are_not_looked_at(host, ollama):
    """The warm unit's shape ({url, models}) alone: only the warm models' load is watched."""
    recorded(host, watch=watch_of(host, ollama))
    load(ollama, "mistral:7b")
    assert run(host, "check", watch=watch_of(host, ollama))["reasons"] == [
        f"model mistral:7b appeared in the Ollama at {ollama.url}"]


def test_an_ollama_that_does_not_answer_is_not_in_sync(host, ollama):
    watch = watch_of(host, ollama)
    recorded(host, watch=watch)
    ollama.answer_script["/api/tags"] = [(500, "text/plain", b"boom")] * 5
    result = run(host, "check", watch=watch)
    assert not result["in_sync"] and result["reason"].startswith(f"the Ollama at {ollama.url} cannot be read")


def test_a_changed_watch_applies_again(host):
    recorded(host)
    watch = dict(watch_of(host), units=["docker.service", "containerd.service"])
    assert run(host, "check", watch=watch)["reason"] == "what the role watches changed (a new lpfleet version)"


def test_check_mode_records_nothing_and_disabled_never_skips(host):
    result = run(host, "record", _ansible_check_mode=True)
    assert result["written"] and not result["changed"] and not (host.records / "demo.json").exists()
    recorded(host)
    result = run(host, "check", enabled=False)
    assert (result["in_sync"], result["reason"]) == (False, "lpfleet_skip_unchanged is false")


def test_a_digest_computed_on_the_controller_stands_for_the_inputs(host):
    written = run_module(applied_state.main, {"name": "demo", "state": "record", "inputs_sha256": "ab" * 32,
                                              "watch": watch_of(host), "dir": str(host.records)})
    assert written["written"]
    checked = run_module(applied_state.main, {"name": "demo", "inputs_sha256": "cd" * 32, "watch": watch_of(host),
                                              "dir": str(host.records)})
    assert checked["reason"] == "inputs changed"


def test_bad_name_and_unknown_watch_kind_fail_clearly(host):
    assert "letters, digits and _ only" in run(host, "check", name="../etc")["msg"]
    assert run(host, "check", watch={"file": ["/x"]})["msg"].startswith("watch: unknown kind(s) file")


def test_without_docker_on_the_host_its_objects_are_missing_not_an_error(host, monkeypatch, tmp_path):
    (tmp_path / "bin" / "docker").unlink()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # not the machine's own docker either
    result = run(host, "check")
    assert result["reason"] == "no record of an earlier demo apply on this host"
    run(host, "record")
    assert run(host, "check")["in_sync"]


def test_the_role_code_digest_follows_the_role_files(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "main.yml").write_text("- name: a\n")
    (tmp_path / "README.md").write_text("docs")
    before = role_code_sha256(str(tmp_path))
    (tmp_path / "README.md").write_text("other docs")
    assert role_code_sha256(str(tmp_path)) == before
    (tmp_path / "tasks" / "apply.yml").write_text("- name: b\n")
    assert role_code_sha256(str(tmp_path)) != before


def test_the_inputs_are_the_variables_the_role_declares_but_the_skip_switch():
    from ansible_collections.lpfleet.ai.plugins.action.applied_state import declared_variables

    role = Path(__file__).resolve().parents[2] / "roles" / "ollama_models"
    names = declared_variables(str(role))
    assert {"lpfleet_plan", "ollama_models_prune", "ollama_models_keep_alive"} <= set(names)
    assert "lpfleet_skip_unchanged" not in names
    assert declared_variables(str(role / "no-such-role")) == []


def test_a_stopped_docker_daemon_is_drift_not_an_error(host):
    recorded(host)
    host.state["daemon_down"] = True
    host.save()
    result = run(host, "check")
    assert not result.get("failed"), result
    assert not result["in_sync"] and "container ollama is missing" in result["reason"], result["reason"]


def check_roles(host: Host, roles: list[dict], **extra) -> dict:
    args = {"roles": roles, "dir": str(host.records), "ollama_timeout": 5}
    return run_module(applied_state.main, dict(args, **extra))


def test_one_call_checks_several_roles_and_the_unfinished_work_markers(host, tmp_path):
    watch = watch_of(host)
    for name in ("first", "second"):
        recorded(host, name=name, inputs={"role": name}, watch=watch)
    roles = [{"name": name, "inputs_sha256": applied_state.digest({"role": name}), "watch": watch}
             for name in ("first", "second")]
    marker = tmp_path / "switch.json"
    whole = check_roles(host, roles, absent=[str(marker)])
    assert (whole["in_sync"], whole["reasons"], whole["changed"]) == (True, [], False), whole
    assert whole["roles"] == {"first": {"in_sync": True, "reason": ""}, "second": {"in_sync": True, "reason": ""}}

    marker.write_text("{}")
    host.state["container"]["ollama"]["State"]["Running"] = False
    host.save()
    roles[1]["inputs_sha256"] = applied_state.digest({"role": "second", "changed": True})
    drifted = check_roles(host, roles, absent=[str(marker)])
    assert not drifted["in_sync"]
    assert drifted["reasons"] == ["first: container ollama is not running", "second: inputs changed",
                                  f"{marker} exists"], drifted["reasons"]
    assert drifted["roles"]["second"] == {"in_sync": False, "reason": "inputs changed"}


def test_several_roles_are_never_in_sync_when_the_skip_is_off_and_are_never_recorded_at_once(host):
    watch = watch_of(host)
    recorded(host, name="first", inputs={"role": "first"}, watch=watch)
    roles = [{"name": "first", "inputs_sha256": applied_state.digest({"role": "first"}), "watch": watch}]
    assert check_roles(host, roles)["in_sync"]
    off = check_roles(host, roles, enabled=False)
    assert (off["in_sync"], off["reasons"]) == (False, ["first: lpfleet_skip_unchanged is false"])
    assert "state=check only" in check_roles(host, roles, state="record")["msg"]
    assert "needs name" in check_roles(host, [{"name": "../etc", "inputs_sha256": roles[0]["inputs_sha256"]}])["msg"]
    unbuilt = check_roles(host, [{"name": "first", "inputs_sha256": "cannot be built here: KeyError"}])
    assert unbuilt["reasons"] == ["first: inputs changed"]
