"""roles/docker_engine/files/docker_direct_routing_guard.py, the rules it writes for Docker's bridge networks
before Docker 28 (what Docker 28 drops in raw PREROUTING), from `docker network inspect` documents. The lab test
(tests/lab/test_roles_faults.py, direct routing) shows the rules stop a neighbour on a real host."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "roles/docker_engine/files/docker_direct_routing_guard.py"
spec = importlib.util.spec_from_file_location("docker_direct_routing_guard", SCRIPT)
guard = importlib.util.module_from_spec(spec)
spec.loader.exec_module(guard)

DEFAULT_BRIDGE = {"Name": "bridge", "Id": "0f3c" * 16, "Driver": "bridge",
                  "Options": {"com.docker.network.bridge.name": "docker0"},
                  "IPAM": {"Config": [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}]}}
STACK = {"Name": "livepeer-ai", "Id": "5e1d2c3b4a5f" + "0" * 52, "Driver": "bridge", "Options": {},
         "IPAM": {"Config": [{"Subnet": "172.18.0.0/16"}, {"Subnet": "fd00:dead:beef::/64"}]}}
HOST = {"Name": "host", "Id": "ab" * 32, "Driver": "host", "IPAM": {"Config": []}}
NO_SUBNET = {"Name": "none-yet", "Id": "cd" * 32, "Driver": "bridge", "IPAM": {"Config": None}}


def test_each_bridge_subnet_is_reachable_only_through_its_bridge():
    rules = guard.rules([STACK, DEFAULT_BRIDGE, HOST, NO_SUBNET])
    assert rules[4] == [
        "-A LPFLEET-DIRECT-ROUTING -d 172.17.0.0/16 ! -i docker0 -j DROP",
        "-A LPFLEET-DIRECT-ROUTING -d 172.18.0.0/16 ! -i br-5e1d2c3b4a5f -j DROP",
    ]
    assert rules[6] == ["-A LPFLEET-DIRECT-ROUTING -d fd00:dead:beef::/64 ! -i br-5e1d2c3b4a5f -j DROP"]


def test_no_bridge_network_gives_empty_chains():
    assert guard.rules([HOST]) == {4: [], 6: []}


def test_restore_input_replaces_the_chain_in_one_commit():
    text = guard.restore_input(["-A LPFLEET-DIRECT-ROUTING -d 172.18.0.0/16 ! -i br-x -j DROP"])
    assert text.splitlines() == ["*raw", ":LPFLEET-DIRECT-ROUTING - [0:0]",
                                 "-A LPFLEET-DIRECT-ROUTING -d 172.18.0.0/16 ! -i br-x -j DROP", "COMMIT"]
