"""Helpers for the lab tests that run lpfleet's playbooks against lab hosts (tests/lab/test_roles_*.py).

- `PlaybookRunner` writes an inventory of only the test's own hosts (same connection settings as
  lab/state/inventory, `group_vars` linked from inventories/lab) and runs `.venv/bin/ansible-playbook`
  with the project's ansible.cfg; `PlayResult` reads the recap and the failures out of its output.
- `ConvergedHost`: the shared converged lab host (`CONVERGED_HOST`) of conftest.py's `converged_host` fixture,
  converged by site.yml once per session and again only when asked for other extra vars or spoiled.
- `ModelRegistry` drives the Ollama model registry stand-in's fault and statistics API.
- `host_changes_since` lists what changed on a host's root file system since a marker file.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from lab_fixtures import REPO_ROOT, LabHost, ports_env

ANSIBLE_PLAYBOOK = REPO_ROOT / ".venv" / "bin" / "ansible-playbook"
# The lab host the `converged_host` session fixture (tests/lab/conftest.py) converges once and shares: the
# docs' two GPUs (RTX 4090 + RTX 2060), so that both the shared and the per_gpu layouts can run on it.
CONVERGED_HOST = LabHost("conv-docs", "docs-4090-2060", "13")
ANSIBLE_CONFIG = REPO_ROOT / "ansible.cfg"
LAB_GROUP_VARS = REPO_ROOT / "inventories" / "lab" / "group_vars"

_TASK_LINE = re.compile(r"^TASK \[(?P<task>.*)\] \*+$")
_FAILURE_LINE = re.compile(r"^(?:fatal|failed): \[(?P<host>[^\]]+)\](?P<item> \(item=.*?\))?(?:: FAILED!)? => "
                           r"(?P<result>\{.*\})$")
_RECAP_LINE = re.compile(r"^(?P<host>\S+)\s+: ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)"
                         r"\s+unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)")


@dataclass(frozen=True)
class Failure:
    """One `fatal:`/`failed:` line: the host, the task it failed in, the loop item and the result."""

    host: str
    task: str
    item: str
    result: dict[str, Any]

    @property
    def msg(self) -> str:
        return str(self.result.get("msg", ""))


@dataclass
class PlayResult:
    """What one ansible-playbook run printed, read back."""

    command: list[str]
    returncode: int
    output: str
    seconds: float
    failures: list[Failure] = field(default_factory=list)
    recap: dict[str, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def parse(cls, command: list[str], returncode: int, output: str, seconds: float) -> PlayResult:
        result = cls(command, returncode, output, seconds)
        task = ""
        for line in output.splitlines():
            if match := _TASK_LINE.match(line):
                task = match["task"]
            elif match := _FAILURE_LINE.match(line):
                result.failures.append(Failure(match["host"], task, (match["item"] or "").strip(),
                                               json.loads(match["result"])))
            elif match := _RECAP_LINE.match(line):
                result.recap[match["host"]] = {key: int(match[key])
                                               for key in ("ok", "changed", "unreachable", "failed")}
        return result

    def describe(self) -> str:
        """The command and the end of its output, for assertion messages."""
        return f"$ {' '.join(self.command)}\n(exit {self.returncode}, {self.seconds:.0f} s)\n{self.output[-6000:]}"

    def failures_of(self, host: str) -> list[Failure]:
        return [failure for failure in self.failures if failure.host == host]

    def the_failure_of(self, host: str) -> Failure:
        """The failure that stopped HOST (a loop's item line when there is one, it says more)."""
        failures = self.failures_of(host)
        assert failures, f"no failure of {host} in the output:\n{self.describe()}"
        itemised = [failure for failure in failures if failure.item]
        return (itemised or failures)[-1]


class PlaybookRunner:
    """Runs the project's playbooks against an inventory of only the given lab hosts."""

    def __init__(self, workdir: Path, hosts: list[LabHost],
                 aliases: dict[str, tuple[LabHost, dict[str, Any]]] | None = None) -> None:
        """ALIASES: more inventory hosts, alias -> (the lab host it reaches, its host vars): one run checks
        several settings on one host at once, each alias failing or passing on its own."""
        self.workdir = workdir
        self.inventory = workdir / "inventory"
        self.inventory.mkdir(parents=True, exist_ok=True)
        (self.inventory / "group_vars").symlink_to(LAB_GROUP_VARS)
        members = {host.name: {"ansible_host": host.container, "lab_gpu_profile": host.profile_name}
                   for host in hosts}
        for alias, (host, host_vars) in (aliases or {}).items():
            members[alias] = {**host_vars, "ansible_host": host.container, "lab_gpu_profile": host.profile_name}
        document = {"all": {"children": {"gpu_hosts": {"hosts": members}}}}
        (self.inventory / "hosts.yml").write_text("---\n" + yaml.safe_dump(document, sort_keys=True))
        self._runs = 0

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "ANSIBLE_CONFIG": str(ANSIBLE_CONFIG),
            # One JSON line per result: the failures can be read back exactly.
            "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            # A fact cache of our own: the shared .cache/facts may hold other hosts of the same name.
            "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(self.workdir / "facts"),
        })
        return env

    def run(self, playbook: str, host: str, extra_vars: dict[str, Any] | None = None,
            timeout: float = 600, options: Sequence[str] = ()) -> PlayResult:
        """HOST: an inventory host, or several joined by commas (--limit). OPTIONS: more ansible-playbook
        options (--tags, --check)."""
        command = [str(ANSIBLE_PLAYBOOK), "-i", str(self.inventory / "hosts.yml"), f"playbooks/{playbook}",
                   "--limit", host, *options]
        if extra_vars is not None:
            self._runs += 1
            vars_file = self.workdir / f"extra-vars-{self._runs}.json"
            vars_file.write_text(json.dumps(extra_vars, indent=1))
            command += ["-e", f"@{vars_file}"]
        started = time.monotonic()
        completed = subprocess.run(command, cwd=REPO_ROOT, env=self.environment(), capture_output=True,
                                   timeout=timeout, check=False)
        output = completed.stdout.decode(errors="replace") + completed.stderr.decode(errors="replace")
        return PlayResult.parse(command, completed.returncode, output, time.monotonic() - started)


@dataclass
class ConvergedHost:
    """CONVERGED_HOST, its playbook runner, and the extra vars it was last converged with."""

    host: LabHost
    runner: PlaybookRunner
    # Canonical JSON of the extra vars of the last successful site.yml; None: not converged (or spoiled).
    converged_with: str | None = None
    # (what ran, seconds) for each site.yml this fixture ran: printed at the end of the session.
    runs: list[tuple[str, float]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.host.name

    def converge(self, extra_vars: dict[str, Any] | None = None, timeout: float = 1200) -> LabHost:
        """The host converged by site.yml with EXTRA_VARS (runs it unless that is already so)."""
        wanted = json.dumps(extra_vars or {}, sort_keys=True)
        if self.converged_with != wanted:
            self.converged_with = None
            result = self.runner.run("site.yml", self.name, extra_vars or None, timeout=timeout)
            self.runs.append((f"site.yml {wanted}"[:120], result.seconds))
            # The whole output, for reading where the time went (profile_tasks' list is at its end).
            (self.runner.workdir / f"converge-{len(self.runs)}.log").write_text(result.output)
            assert_converged(result, self.name)
            self.converged_with = wanted
        return self.host

    def spoil(self) -> None:
        """Says the host is no longer as its last converge left it: the next converge() runs site.yml."""
        self.converged_with = None


def assert_converged(result: PlayResult, host: str) -> None:
    recap = result.recap.get(host, {})
    assert result.returncode == 0 and recap.get("failed") == 0 and recap.get("unreachable") == 0, \
        f"site.yml did not converge the shared host {host}:\n{result.describe()}"


class ModelRegistry:
    """The Ollama model registry stand-in's control API (lab/standins/README.md)."""

    def __init__(self) -> None:
        self.url = ports_env()["OLLAMA_REGISTRY_URL"].rstrip("/")

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def model(self, name: str) -> dict[str, Any]:
        """The registry's description of NAME: digests and sizes (model_digest, model_size)."""
        models = self._call("GET", "/_lab/models")["models"]
        return next(model for model in models if model["name"] == name)

    def add_fault(self, **fault: Any) -> dict[str, Any]:
        return self._call("POST", "/_lab/faults", fault)

    def faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "/_lab/faults")["faults"]

    def clear_fault_if_active(self, fault_id: int) -> None:
        """Clears the faults when ours is still active. The API can only clear all of them, so it
        is not called while ours is gone (other lab users may have faults of their own)."""
        if any(fault["id"] == fault_id for fault in self.faults()):
            self._call("DELETE", "/_lab/faults")

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/_lab/stats")

    def requests_from(self, client: str, since: float) -> list[dict[str, Any]]:
        """The recent requests (the registry keeps the last 500) CLIENT made since SINCE (epoch seconds)."""
        return [entry for entry in self.stats()["requests"] if entry["client"] == client and entry["time"] >= since]

    def bytes_sent_to(self, client: str) -> int:
        return self.stats()["clients"].get(client, {}).get("bytes", 0)


def lab_address(host: LabHost) -> str:
    """HOST's address on the lab network: what the registry sees as the client of its pulls."""
    raw = subprocess.run(["docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", host.container],
                         capture_output=True, check=True, timeout=30).stdout
    networks = json.loads(raw)
    addresses = [settings["IPAddress"] for name, settings in networks.items() if name.startswith("lpfleet-lab")]
    assert len(addresses) == 1, f"{host.container} is not on exactly one lab network: {networks}"
    return addresses[0]


HOST_MARKER = "/run/lpfleet-test-marker"
# What any Ansible run leaves behind (its remote temporary directory) and what a running system writes.
_EXPECTED_CHANGES = re.compile(r"^(/tmp|/root|/root/\.ansible|/root/\.ansible/tmp|/var/log/journal(/.*)?)$")


def mark_host(host: LabHost) -> None:
    """Drops the marker that `host_changes_since` compares modification times with."""
    host.exec("touch", HOST_MARKER)
    time.sleep(0.05)


def host_changes_since_mark(host: LabHost) -> list[str]:
    """Paths of the host's root file system modified after the marker, less Ansible's own temporary
    directory and the journal. /run and /tmp are tmpfs, /var/lib/docker a volume (-xdev leaves them)."""
    listing = host.shell(f"find / -xdev \\( -path /proc -o -path /sys \\) -prune -o -newer {HOST_MARKER} -print")
    return [path for path in listing.splitlines() if path and not _EXPECTED_CHANGES.match(path)]


def ollama_api(host: LabHost, path: str, body: dict[str, Any] | None = None, port: int = 11434) -> Any:
    """Calls the host's Ollama API on its published loopback port, from inside the host."""
    script = (
        "import json, sys, urllib.request\n"
        "body = sys.argv[2].encode() if sys.argv[2] else None\n"
        "method = 'DELETE' if sys.argv[1] == '/api/delete' else ('POST' if body else 'GET')\n"
        "request = urllib.request.Request('http://127.0.0.1:%s' % sys.argv[3] + sys.argv[1], data=body,"
        " method=method, headers={'Content-Type': 'application/json'})\n"
        "print(urllib.request.urlopen(request, timeout=30).read().decode() or 'null')\n"
    )
    output = host.exec("python3", "-c", script, path, json.dumps(body) if body is not None else "", str(port))
    return json.loads(output.stdout.decode())


def ollama_models(host: LabHost) -> list[str]:
    return sorted(model["name"] for model in ollama_api(host, "/api/tags")["models"])
