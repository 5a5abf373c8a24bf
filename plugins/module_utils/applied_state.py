# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""What a role last applied on a host, and whether the host still matches it (lpfleet.ai.applied_state).

A record, `<dir>/<role>.json` (0600, root), holds the sha256 of the role's inputs (canonical JSON of its variables
and its part of the plan; the inputs themselves are never stored) and one observation of what the role watches on
the host, taken right after the role applied. `check` compares: the same inputs and the same observation now means
that applying again would change nothing, so the role may skip its work; anything else is said in words.

An observation is read in one pass: files (sha256, mode, owner), keys of JSON files (other writers may own the rest
of the file), systemd units (active, enabled: one `systemctl show`), containers (id, running, image: one
`docker inspect`), Docker networks and volumes, dpkg packages (one `dpkg-query`), and Ollama servers (every model's
digest, whether the warm ones are loaded, and the loaded models the plan does not put there) through
module_utils.ollama_state.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from typing import Any, Callable, Optional

from ansible_collections.lpfleet.ai.plugins.module_utils.http import RequestFailed
from ansible_collections.lpfleet.ai.plugins.module_utils.ollama_state import OllamaClient, listed_key, names

RECORD_VERSION = 1
DEFAULT_DIR = "/var/lib/lpfleet/applied"

# argv -> (rc, stdout, stderr); AnsibleModule.run_command in the module.
Runner = Callable[[list[str]], tuple[int, str, str]]

WATCH_KINDS = ("files", "json_keys", "units", "containers", "networks", "volumes", "packages", "ollama")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(value: Any) -> str:
    """sha256 of the canonical JSON of VALUE."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def normalise_watch(watch: Optional[dict[str, Any]]) -> dict[str, list[Any]]:
    """WATCH with every kind present (empty lists for the missing ones); ValueError on an unknown kind."""
    watch = dict(watch or {})
    unknown = sorted(set(watch) - set(WATCH_KINDS))
    if unknown:
        raise ValueError(f"watch: unknown kind(s) {', '.join(unknown)}; known: {', '.join(WATCH_KINDS)}")
    return {kind: list(watch.get(kind) or []) for kind in WATCH_KINDS}


# --- Observing the host -------------------------------------------------------------------------------------------

def observe_file(path: str) -> dict[str, Any]:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return {"exists": False}
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return {"exists": True, "sha256": sha.hexdigest(), "mode": f"{stat.S_IMODE(info.st_mode):04o}",
            "owner": f"{info.st_uid}:{info.st_gid}"}


def observe_json_keys(path: str, keys: list[str]) -> dict[str, Any]:
    """The sha256 of each KEY's value in the JSON object at PATH (None for an absent key)."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except FileNotFoundError:
        return {"exists": False}
    except ValueError:
        return {"exists": True, "error": "not JSON"}
    if not isinstance(document, dict):
        return {"exists": True, "error": "not a JSON object"}
    return {"exists": True, "keys": {key: digest(document[key]) if key in document else None for key in keys}}


def _show_blocks(text: str) -> list[dict[str, str]]:
    blocks, current = [], {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
            current = {}
            continue
        key, _separator, value = line.partition("=")
        current[key] = value
    if current:
        blocks.append(current)
    return blocks


def observe_units(run: Runner, units: list[str]) -> dict[str, Any]:
    if not units:
        return {}
    rc, out, err = run(["systemctl", "show", "--property=Id,ActiveState,UnitFileState", "--", *units])
    if rc != 0:
        return {unit: {"error": (err or out).strip()[:200] or f"systemctl exited {rc}"} for unit in units}
    blocks = _show_blocks(out)
    return {unit: {"active": block.get("ActiveState", ""), "enabled": block.get("UnitFileState", "")}
            for unit, block in zip(units, blocks)}


DAEMON_DOWN = "cannot connect to the docker daemon"


def _docker_inspect(run: Runner, kind: str, objects: list[str]) -> dict[str, dict[str, Any]]:
    """`docker inspect` of OBJECTS in one call, by name; missing ones are absent from the answer."""
    if not objects:
        return {}
    rc, out, err = run(["docker", kind, "inspect", "--", *objects])
    if rc == 127 or DAEMON_DOWN in err.lower():
        # No Docker on the host (yet), or its daemon is stopped: nothing of it runs or can be used, so the
        # role that needs it applies (docker_engine starts the daemon), also in check mode.
        return {}
    try:
        documents = json.loads(out) if out.strip() else []
    except ValueError:
        documents = []
    if rc != 0 and not documents and "no such" not in err.lower() and "not found" not in err.lower():
        raise OSError(f"docker {kind} inspect failed: {(err or out).strip()[:200]}")
    found = {}
    for document in documents if isinstance(documents, list) else []:
        name = str(document.get("Name") or "").lstrip("/")
        found[name] = document
    return found


def observe_containers(run: Runner, containers: list[str]) -> dict[str, Any]:
    found = _docker_inspect(run, "container", containers)
    result = {}
    for name in containers:
        document = found.get(name)
        if document is None:
            result[name] = {"exists": False}
            continue
        state = document.get("State") or {}
        result[name] = {"exists": True, "id": document.get("Id"), "running": bool(state.get("Running")),
                        "image": (document.get("Config") or {}).get("Image"), "image_id": document.get("Image")}
    return result


def observe_docker_objects(run: Runner, kind: str, objects: list[str]) -> dict[str, Any]:
    """Docker networks (by id) or volumes (by creation time: a volume has no id) named OBJECTS."""
    found = _docker_inspect(run, kind, objects)
    field = "Id" if kind == "network" else "CreatedAt"
    return {name: ({"exists": True, "id": found[name].get(field)} if name in found else {"exists": False})
            for name in objects}


def observe_packages(run: Runner, packages: list[str]) -> dict[str, Any]:
    if not packages:
        return {}
    _rc, out, _err = run(["dpkg-query", "--show", "--showformat=${Package}\t${db:Status-Status}\t${Version}\n",
                          "--", *packages])
    versions: dict[str, Optional[str]] = {package: None for package in packages}
    for line in out.splitlines():
        package, _tab, rest = line.partition("\t")
        status, _tab, version = rest.partition("\t")
        package = package.split(":")[0]
        if package in versions and status == "installed":
            versions[package] = version
    return versions


def observe_ollama(server: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Every model an Ollama holds (canonical name -> digest), which of SERVER's `models` (the warm ones, as in
    the warm unit's warm.json) are loaded, and, when SERVER has `planned` (every model the plan puts in that
    Ollama), the loaded models it does not name (`unplanned_loaded`, compared as Ollama compares names)."""
    client = OllamaClient(str(server["url"]).rstrip("/"), request_timeout=timeout)
    try:
        models = client.models()
        loaded = client.loaded()
    except RequestFailed as error:
        return {"error": f"cannot be read: {error}"}
    held = {name: entry.get("digest") for entry in models for name in names([entry])}
    loaded_names = names(loaded)
    loaded_keys = {listed_key(name) for name in loaded_names}
    warm = {str(name): listed_key(str(name)) in loaded_keys for name in server.get("models") or []}
    observed: dict[str, Any] = {"models": held, "loaded": warm}
    if "planned" in server:
        planned = {listed_key(str(name)) for name in server.get("planned") or []}
        observed["unplanned_loaded"] = [name for name in loaded_names if listed_key(name) not in planned]
    return observed


def observe(watch: dict[str, list[Any]], run: Runner, ollama_timeout: float = 10.0) -> dict[str, Any]:
    """One reading of everything WATCH names (see the module's documentation for its shape)."""
    return {
        "files": {str(path): observe_file(str(path)) for path in watch["files"]},
        "json_keys": {str(item["path"]): observe_json_keys(str(item["path"]), [str(key) for key in item["keys"]])
                      for item in watch["json_keys"]},
        "units": observe_units(run, [str(unit) for unit in watch["units"]]),
        "containers": observe_containers(run, [str(name) for name in watch["containers"]]),
        "networks": observe_docker_objects(run, "network", [str(name) for name in watch["networks"]]),
        "volumes": observe_docker_objects(run, "volume", [str(name) for name in watch["volumes"]]),
        "packages": observe_packages(run, [str(name) for name in watch["packages"]]),
        "ollama": {str(server["url"]): observe_ollama(server, ollama_timeout) for server in watch["ollama"]},
    }


# --- Comparing, in words ------------------------------------------------------------------------------------------

def _file_drift(path: str, then: dict[str, Any], now: dict[str, Any]) -> list[str]:
    if then.get("exists") and not now.get("exists"):
        return [f"{path} is missing (lpfleet wrote it)"]
    if now.get("exists") and not then.get("exists"):
        return [f"{path} appeared since lpfleet's last apply"]
    reasons = []
    if then.get("sha256") != now.get("sha256"):
        reasons.append(f"{path} changed since lpfleet wrote it")
    if then.get("mode") != now.get("mode"):
        reasons.append(f"{path}'s mode changed ({then.get('mode')} -> {now.get('mode')})")
    if then.get("owner") != now.get("owner"):
        reasons.append(f"{path}'s owner changed ({then.get('owner')} -> {now.get('owner')})")
    return reasons


def _json_drift(path: str, then: dict[str, Any], now: dict[str, Any]) -> list[str]:
    if then == now:
        return []
    if now.get("error") or not now.get("exists"):
        return [f"{path} is {now.get('error') or 'missing'} (lpfleet wrote it)"]
    keys = sorted(key for key in set(then.get("keys") or {}) | set(now.get("keys") or {})
                  if (then.get("keys") or {}).get(key) != (now.get("keys") or {}).get(key))
    return [f"{path} changed since lpfleet wrote it (key(s) {', '.join(keys) or '?'})"]


def _unit_drift(unit: str, then: dict[str, Any], now: dict[str, Any]) -> list[str]:
    if now.get("error"):
        return [f"unit {unit} cannot be read: {now['error']}"]
    reasons = []
    if then.get("active") != now.get("active"):
        reasons.append(f"unit {unit} is {now.get('active') or 'unknown'} (was {then.get('active')})")
    if then.get("enabled") != now.get("enabled"):
        reasons.append(f"unit {unit} is {now.get('enabled') or 'unknown'} at boot (was {then.get('enabled')})")
    return reasons


def _container_drift(name: str, then: dict[str, Any], now: dict[str, Any]) -> list[str]:
    if then.get("exists") and not now.get("exists"):
        return [f"container {name} is missing"]
    if then.get("running") and not now.get("running"):
        return [f"container {name} is not running"]
    if then.get("id") != now.get("id"):
        return [f"container {name} was recreated or appeared since lpfleet's last apply"]
    if (then.get("image"), then.get("image_id")) != (now.get("image"), now.get("image_id")):
        return [f"container {name} runs another image"]
    if then.get("running") != now.get("running"):
        return [f"container {name} is running (it was not)"]
    return []


def _docker_object_drift(kind: str, name: str, then: dict[str, Any], now: dict[str, Any]) -> list[str]:
    if then.get("exists") and not now.get("exists"):
        return [f"Docker {kind} {name} is missing"]
    if then != now:
        return [f"Docker {kind} {name} was recreated or appeared since lpfleet's last apply"]
    return []


def _package_drift(package: str, then: Optional[str], now: Optional[str]) -> list[str]:
    if then == now:
        return []
    if now is None:
        return [f"package {package} is not installed"]
    return [f"package {package} is {now} (lpfleet left {then or 'none'})"]


def _ollama_drift(url: str, then: dict[str, Any], now: dict[str, Any]) -> list[str]:
    if now.get("error"):
        return [f"the Ollama at {url} {now['error']}"]
    reasons = []
    then_models, now_models = then.get("models") or {}, now.get("models") or {}
    for model in sorted(set(then_models) - set(now_models)):
        reasons.append(f"model {model} is missing from the Ollama at {url}")
    for model in sorted(set(now_models) - set(then_models)):
        reasons.append(f"model {model} appeared in the Ollama at {url}")
    for model in sorted(set(then_models) & set(now_models)):
        if then_models[model] != now_models[model]:
            reasons.append(f"model {model} in the Ollama at {url} changed digest")
    present = {listed_key(model) for model in now_models}  # a missing model is said above, not as unloaded too
    for model, loaded in sorted((now.get("loaded") or {}).items()):
        if (then.get("loaded") or {}).get(model) and not loaded and listed_key(model) in present:
            reasons.append(f"warm model {model} is not loaded in the Ollama at {url}")
    # Said whatever the record holds: a model loaded behind the plan's back (by hand, or by traffic before
    # go-livepeer stopped offering it) is never how the role leaves an Ollama.
    for model in now.get("unplanned_loaded") or []:
        reasons.append(f"model {model} is loaded in the Ollama at {url}, which the plan does not put there")
    return reasons


def _keyed_drift(then: dict[str, Any], now: dict[str, Any], compare: Callable[[str, Any, Any], list[str]]) -> list[str]:
    reasons = []
    for key in sorted(set(then) | set(now)):
        reasons.extend(compare(key, then.get(key), now.get(key)))
    return reasons


def drift(then: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between two observations of the same watch, in words (empty when nothing does)."""
    empty: dict[str, Any] = {}
    return [
        *_keyed_drift(then["files"], now["files"], lambda k, a, b: _file_drift(k, a or empty, b or empty)),
        *_keyed_drift(then["json_keys"], now["json_keys"], lambda k, a, b: _json_drift(k, a or empty, b or empty)),
        *_keyed_drift(then["units"], now["units"], lambda k, a, b: _unit_drift(k, a or empty, b or empty)),
        *_keyed_drift(then["containers"], now["containers"],
                      lambda k, a, b: _container_drift(k, a or empty, b or empty)),
        *_keyed_drift(then["networks"], now["networks"],
                      lambda k, a, b: _docker_object_drift("network", k, a or empty, b or empty)),
        *_keyed_drift(then["volumes"], now["volumes"],
                      lambda k, a, b: _docker_object_drift("volume", k, a or empty, b or empty)),
        *_keyed_drift(then["packages"], now["packages"], _package_drift),
        *_keyed_drift(then["ollama"], now["ollama"], lambda k, a, b: _ollama_drift(k, a or empty, b or empty)),
    ]


# --- The record ---------------------------------------------------------------------------------------------------

def record_path(directory: str, role: str) -> str:
    return os.path.join(directory, f"{role}.json")


def build_record(role: str, inputs_sha256: str, watch: dict[str, list[Any]],
                 observed: dict[str, Any]) -> dict[str, Any]:
    return {"version": RECORD_VERSION, "role": role, "inputs_sha256": inputs_sha256, "watch_sha256": digest(watch),
            "observed": observed}


def read_record(path: str) -> Optional[dict[str, Any]]:
    """The record at PATH; None when there is none or it cannot be read as one."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("version") != RECORD_VERSION:
        return None
    return document


def compare(role: str, record: Optional[dict[str, Any]], inputs_sha256: str, watch: dict[str, list[Any]],
            observe_now: Callable[[], dict[str, Any]]) -> list[str]:
    """Why the host is not as ROLE last applied it from the inputs hashed INPUTS_SHA256 (empty: in sync).

    Observes the host only when the record and the inputs agree."""
    if record is None:
        return [f"no record of an earlier {role} apply on this host"]
    if record.get("inputs_sha256") != inputs_sha256:
        return ["inputs changed"]
    if record.get("watch_sha256") != digest(watch):
        return ["what the role watches changed (a new lpfleet version)"]
    return drift(record.get("observed") or {}, observe_now())


def write_record(path: str, record: dict[str, Any]) -> bool:
    """Write RECORD at PATH atomically, 0600, in a 0700 directory; False when the file already holds it."""
    content = json.dumps(record, sort_keys=True, indent=1) + "\n"
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == content:
                return False
    except OSError:
        pass
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            os.fchmod(stream.fileno(), 0o600)
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return True
