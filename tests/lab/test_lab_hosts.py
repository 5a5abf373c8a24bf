"""Lab hosts look like freshly installed GPU servers whose driver reports their GPU profile."""

from __future__ import annotations

import json

import pytest
from lab_fixtures import lab_fixture, pynvml_source  # noqa: F401  (the fixture `lab`)

pytestmark = pytest.mark.slow

GPU_HOSTS = ["lt-docs", "lt-deb12"]

PYNVML_REPORT = """
import json, pynvml
pynvml.nvmlInit()
gpus = []
for index in range(pynvml.nvmlDeviceGetCount()):
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    name = pynvml.nvmlDeviceGetName(handle)
    uuid = pynvml.nvmlDeviceGetUUID(handle)
    gpus.append({
        "index": index,
        "name": name.decode() if isinstance(name, bytes) else name,
        "uuid": uuid.decode() if isinstance(uuid, bytes) else uuid,
        "memory_total_mib": pynvml.nvmlDeviceGetMemoryInfo(handle).total // 2**20,
    })
driver = pynvml.nvmlSystemGetDriverVersion()
print(json.dumps({"driver": driver.decode() if isinstance(driver, bytes) else driver, "gpus": gpus}))
"""


def expected_gpus(profile: dict) -> list[dict]:
    return [{key: gpu[key] for key in ("index", "name", "uuid", "memory_total_mib")} for gpu in profile["gpus"]]


@pytest.mark.parametrize("host_name", GPU_HOSTS)
def test_pynvml_on_the_host_reports_the_profile_gpus(lab, host_name):
    host = lab[host_name]
    host.put("/tmp/pynvml.py", pynvml_source())
    report = json.loads(host.exec("python3", "-c", f"import sys; sys.path.insert(0, '/tmp'){PYNVML_REPORT}").stdout)
    assert report["gpus"] == expected_gpus(host.profile)
    assert report["driver"] == host.profile["driver_version"]


@pytest.mark.parametrize("host_name", GPU_HOSTS)
def test_nvidia_smi_prints_the_profile(lab, host_name):
    host = lab[host_name]
    query = host.exec("nvidia-smi", "--query-gpu=index,name,uuid,memory.total",
                      "--format=csv,noheader,nounits").stdout.decode()
    rows = [[cell.strip() for cell in line.split(",")] for line in query.splitlines()]
    assert rows == [[str(gpu["index"]), gpu["name"], gpu["uuid"], str(gpu["memory_total_mib"])]
                    for gpu in host.profile["gpus"]]
    table = host.exec("nvidia-smi").stdout.decode()
    assert f"Driver Version: {host.profile['driver_version']}" in table
    assert all(gpu["name"] in table for gpu in host.profile["gpus"])


def test_a_host_without_gpus_has_no_driver(lab):
    host = lab["lt-nogpu"]
    assert host.exec("sh", "-c", "command -v nvidia-smi", check=False).returncode != 0
    assert "libnvidia-ml" not in host.exec("ldconfig", "-p").stdout.decode()
    host.put("/tmp/pynvml.py", pynvml_source())
    probe = host.exec("python3", "-c", "import sys; sys.path.insert(0, '/tmp'); import pynvml; pynvml.nvmlInit()",
                      check=False)
    assert probe.returncode != 0
    assert "NVMLError_LibraryNotFound" in probe.stderr.decode()


@pytest.mark.parametrize("host_name", sorted(["lt-docs", "lt-deb12", "lt-nogpu"]))
def test_a_host_is_a_freshly_installed_server(lab, host_name):
    host = lab[host_name]
    assert host.exec("systemctl", "is-system-running").stdout.decode().strip() == "running"
    assert host.exec("cat", "/etc/debian_version").stdout.decode().startswith(host.debian + ".")
    assert host.exec("systemctl", "is-active", "ssh").stdout.decode().strip() == "active"
    assert json.loads(host.exec("cat", "/etc/lpfleet-lab/gpus.json").stdout) == host.profile
    # What the roles install is not there yet.
    for absent in ("docker", "nvidia-ctk", "nvidia-container-runtime-hook"):
        assert host.exec("sh", "-c", f"command -v {absent}", check=False).returncode != 0, absent
    assert host.exec("python3", "-c", "import requests", check=False).returncode != 0
    # The one lab-only accommodation for the engine the roles will install.
    drop_in = host.exec("cat", "/etc/systemd/system/docker.service.d/lab.conf").stdout.decode()
    assert "Environment=DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE=1" in drop_in
    assert "ndots" not in host.exec("cat", "/etc/resolv.conf").stdout.decode()


def test_each_host_has_its_own_identity(lab):
    hosts = [lab["lt-docs"], lab["lt-nogpu"]]
    machine_ids = {host.exec("cat", "/etc/machine-id").stdout.strip() for host in hosts}
    host_keys = {host.exec("cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[1] for host in hosts}
    assert len(machine_ids) == len(host_keys) == len(hosts)
    assert [host.exec("hostname").stdout.decode().strip() for host in hosts] == [host.name for host in hosts]


@pytest.mark.parametrize("name", ["registry", "nvidia-repo", "ollama-registry"])
def test_hosts_reach_the_vendor_stand_ins_by_name(lab, name):
    host = lab["lt-deb12"]
    port = {"registry": 5000}.get(name, 80)
    path = {"registry": "/v2/", "nvidia-repo": "/libnvidia-container/gpgkey", "ollama-registry": "/_lab/stats"}[name]
    status = host.exec("python3", "-c", "import sys, urllib.request; "
                       "print(urllib.request.urlopen(sys.argv[1], timeout=10).status)",
                       f"http://{name}:{port}{path}").stdout.decode().strip()
    assert status == "200"
