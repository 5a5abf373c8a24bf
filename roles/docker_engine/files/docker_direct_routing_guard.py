# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""Installed by lpfleet.ai.docker_engine on Docker engines before 28.0, as
/usr/local/libexec/lpfleet/docker-direct-routing-guard, run by lpfleet-docker-direct-routing-guard.service.

Before 28.0, Docker accepts packets for a container's address from any interface: a neighbour on the
same L2 segment that routes a bridge network's subnet through this host reaches the containers
directly, whatever address their ports are published on (moby/moby#45610). Docker 28 drops them in
the raw table's PREROUTING chain (`-d <container address> ! -i <bridge> -j DROP`). This program does
the same for every bridge network, per subnet, in a chain of its own:

  raw PREROUTING -j LPFLEET-DIRECT-ROUTING
  LPFLEET-DIRECT-ROUTING -d <subnet> ! -i <bridge> -j DROP     (one per subnet, IPv4 and IPv6)

Packets for published ports are not affected: they reach the host's own address, and Docker's DNAT
comes after the raw table. Traffic from the host itself (OUTPUT) and between containers on the same
bridge passes.

  python3 docker-direct-routing-guard sync    write the chain for the bridge networks that exist now
  python3 docker-direct-routing-guard watch   sync, then again at every network created or removed
  python3 docker-direct-routing-guard remove  remove the chain and its jump
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from collections.abc import Iterable

CHAIN = "LPFLEET-DIRECT-ROUTING"
TOOLS = {4: "iptables", 6: "ip6tables"}


def bridge_name(network: dict) -> str:
    """The Linux bridge of a Docker bridge network (named by option, else br-<first 12 of the id>)."""
    return (network.get("Options") or {}).get("com.docker.network.bridge.name") or "br-" + network["Id"][:12]


def rules(networks: Iterable[dict]) -> dict[int, list[str]]:
    """Per IP version, the chain's rules (iptables-restore syntax) for NETWORKS (`docker network inspect`)."""
    found: dict[int, list[str]] = {4: [], 6: []}
    for network in sorted(networks, key=lambda item: item.get("Name", "")):
        if network.get("Driver") != "bridge":
            continue
        for config in (network.get("IPAM") or {}).get("Config") or []:
            subnet = config.get("Subnet")
            if not subnet:
                continue
            parsed = ipaddress.ip_network(subnet, strict=False)
            found[parsed.version].append(f"-A {CHAIN} -d {parsed} ! -i {bridge_name(network)} -j DROP")
    return found


def restore_input(chain_rules: list[str]) -> str:
    """iptables-restore --noflush input that replaces the chain's rules at once (declaring a chain empties it)."""
    return "\n".join(["*raw", f":{CHAIN} - [0:0]"] + chain_rules + ["COMMIT", ""])


def run(argv: list[str], stdin: str = "", check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, check=check)


def bridge_networks() -> list[dict]:
    ids = run(["docker", "network", "ls", "--quiet", "--filter", "driver=bridge"]).stdout.split()
    return json.loads(run(["docker", "network", "inspect"] + ids).stdout) if ids else []


def sync() -> None:
    for version, chain_rules in rules(bridge_networks()).items():
        tool = TOOLS[version]
        # A version with no subnet only empties a chain that may be left: a host without IPv6
        # filtering (no ip6tables) has nothing to guard there.
        needed = bool(chain_rules)
        if run([tool + "-restore", "--noflush"], stdin=restore_input(chain_rules), check=needed).returncode == 0:
            jump = ["-t", "raw", "-C", "PREROUTING", "-j", CHAIN]
            if run([tool] + jump, check=False).returncode != 0:
                run([tool, "-t", "raw", "-I", "PREROUTING", "1", "-j", CHAIN], check=needed)


def remove() -> None:
    for tool in TOOLS.values():
        while run([tool, "-t", "raw", "-D", "PREROUTING", "-j", CHAIN], check=False).returncode == 0:
            pass
        run([tool, "-t", "raw", "-F", CHAIN], check=False)
        run([tool, "-t", "raw", "-X", CHAIN], check=False)


def watch() -> None:
    """Keeps the chain in step with the networks until Docker's event stream ends (Docker stopped)."""
    events = subprocess.Popen(
        ["docker", "events", "--filter", "type=network", "--filter", "event=create", "--filter", "event=destroy",
         "--format", "{{.Action}}"], stdout=subprocess.PIPE, text=True)
    sync()
    print(f"{CHAIN}: guarding the bridge networks' subnets; watching Docker's network events", flush=True)
    assert events.stdout is not None
    for _event in events.stdout:
        sync()
    sys.exit(f"{CHAIN}: Docker's event stream ended (exit status {events.wait()})")


def main(argv: list[str]) -> None:
    commands = {"sync": sync, "watch": watch, "remove": remove}
    if len(argv) != 1 or argv[0] not in commands:
        sys.exit("usage: docker-direct-routing-guard sync|watch|remove")
    try:
        commands[argv[0]]()
    except subprocess.CalledProcessError as error:
        sys.exit(f"{' '.join(error.cmd)} failed (exit status {error.returncode}): {error.stderr.strip()}")


if __name__ == "__main__":
    main(sys.argv[1:])
