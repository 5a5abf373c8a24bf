"""playbooks/gpu_inventory.yml's listing, drawn in Python (tables.gpu_inventory through the gpu_inventory filter)."""

from __future__ import annotations

import os
import sys

import pytest
from ansible.errors import AnsibleFilterError
from test_fleet_report_playbook import fake_nvidia_smi
from test_playbooks_syntax import ansible_env, free_port, run_playbook, write_inventory

from ansible_collections.lpfleet.ai.plugins.filter.tables import gpu_inventory

GPU = {"index": 0, "uuid": "GPU-0", "name": "NVIDIA GeForce RTX 4090", "memory_total_mib": 24564,
       "memory_free_mib": 24080, "driver_version": "550.54.14", "cuda_version": "12.4", "compute_capability": "8.9"}
SUMMARY = {"count": 1, "total_memory_mib": 24564, "driver_version": "550.54.14", "cuda_version": "12.4"}


def test_each_host_its_gpus_then_the_totals():
    hostvars = {"a": {"ansible_facts": {"lpfleet_gpus": [GPU], "lpfleet_gpu_summary": SUMMARY}},
                "b": {"ansible_facts": {}}, "c": {"ansible_facts": {"lpfleet_gpus": [], "lpfleet_gpu_summary": {}}}}
    lines = gpu_inventory(["a", "b", "c"], hostvars).splitlines()
    assert lines[0] == "a: 1 GPU(s), 24564 MiB, driver 550.54.14, CUDA 12.4"
    assert lines[1].split() == ["IDX", "NAME", "TOTAL", "MiB", "FREE", "MiB", "DRIVER", "CUDA", "CC", "UUID"]
    assert lines[1].startswith("  IDX") and lines[2].startswith("  0") and "RTX 4090" in lines[2]
    assert lines[3:] == ["b: not read (unreachable or failed)", "c: 0 GPU(s), 0 MiB, driver -, CUDA -",
                         "  no NVIDIA GPU found", "2 host(s) read, 1 GPU(s) in all"]


def test_bad_input_is_refused():
    with pytest.raises(AnsibleFilterError, match="gpu_inventory"):
        gpu_inventory("a", {})


def test_the_playbook_lists_a_read_host_and_an_unreachable_one(tmp_path):
    fake_nvidia_smi(tmp_path / "bin")
    inventory = write_inventory(tmp_path / "hosts.yml", {
        "gpu-a": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "gone": {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": free_port(),
                 "ansible_user": "nobody", "ansible_ssh_common_args": "-o ConnectTimeout=5"}})
    env = ansible_env(tmp_path, PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    done = run_playbook(tmp_path, "-i", str(inventory), "playbooks/gpu_inventory.yml", env=env, timeout=120)
    assert "gpu-a: 2 GPU(s), 32756 MiB, driver 550.54.14" in done.stdout, done.stdout + done.stderr
    assert "gone: not read (unreachable or failed)" in done.stdout
    assert "1 host(s) read, 2 GPU(s) in all" in done.stdout
