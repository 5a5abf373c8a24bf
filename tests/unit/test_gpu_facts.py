"""The lpfleet.ai.gpu_facts module: NVML through a fake pynvml, nvidia-smi through a fake executable."""

import json
import os
import shutil
import subprocess
import sys
import types
from collections import namedtuple

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.lpfleet.ai.plugins.modules import gpu_facts

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
QUERY_FIXTURE = os.path.join(FIXTURES, "gpu_nvidia_smi_query.csv")
HEADER_FIXTURE = os.path.join(FIXTURES, "gpu_nvidia_smi_table.txt")
MIB = 1024 * 1024

Memory = namedtuple("Memory", "total free used")


def fake_pynvml(devices, init_error=None, driver="550.54.14", cuda=12040):
    """A stand-in for the pynvml module with the calls gpu_facts makes; devices: (uuid, name, total, free, cc)."""
    module = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    calls = []

    def init():
        calls.append("init")
        if init_error:
            raise NVMLError(init_error)

    module.NVMLError = NVMLError
    module.calls = calls
    module.nvmlInit = init
    module.nvmlShutdown = lambda: calls.append("shutdown")
    module.nvmlSystemGetDriverVersion = lambda: driver
    module.nvmlSystemGetCudaDriverVersion = lambda: cuda
    module.nvmlDeviceGetCount = lambda: len(devices)
    module.nvmlDeviceGetHandleByIndex = lambda index: devices[index]
    module.nvmlDeviceGetUUID = lambda handle: handle[0]
    module.nvmlDeviceGetName = lambda handle: handle[1]
    module.nvmlDeviceGetMemoryInfo = lambda handle: Memory(handle[2], handle[3], handle[2] - handle[3])
    module.nvmlDeviceGetCudaComputeCapability = lambda handle: handle[4]
    return module


DOCS_HOST = [
    ("GPU-6b1f8a2e-3c4d-4e6f-9a8b-9c0d1e2f3a4b", b"NVIDIA GeForce RTX 4090", 24564 * MIB, 24080 * MIB + 5, (8, 9)),
    ("GPU-0d3c72a1-85e4-4b7f-a2c9-5f1e6d8b9a07", "NVIDIA GeForce RTX 2060", 8192 * MIB, 7954 * MIB, (7, 5)),
]


def write_nvidia_smi(tmp_path, query_output=None, query_rc=0, query_file=QUERY_FIXTURE, table_file=HEADER_FIXTURE,
                     no_compute_cap=False):
    """An executable that answers like nvidia-smi: --query-gpu prints the CSV fixture, no argument the table."""
    script = tmp_path / "nvidia-smi"
    if query_output is not None:
        query_file = tmp_path / "query-output.txt"
        query_file.write_text(query_output)
    lines = ["#!/bin/sh", 'case "$1" in']
    if no_compute_cap:
        lines.append('  *compute_cap*) echo \'Field "compute_cap" is not a valid field to query.\'; exit 2 ;;')
        lines.append(f'  --query-gpu=*) cut -d, -f1-6 "{query_file}"; exit {query_rc} ;;')
    else:
        lines.append(f'  --query-gpu=*) cat "{query_file}"; exit {query_rc} ;;')
    lines += [f'  "") cat "{table_file}" ;;', "  *) exit 64 ;;", "esac"]
    script.write_text("\n".join(lines) + "\n")
    script.chmod(0o755)
    return str(script)


@pytest.fixture
def run(capsys):
    def run_module(**args):
        with patch_module_args(args), pytest.raises(SystemExit) as exited:
            gpu_facts.main()
        result = json.loads(capsys.readouterr().out)
        result["_rc"] = exited.value.code
        return result

    return run_module


@pytest.fixture
def no_pynvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes "import pynvml" raise ImportError


# --- NVML -----------------------------------------------------------------------------------


def test_nvml_reports_every_gpu_as_facts(run, monkeypatch):
    fake = fake_pynvml(DOCS_HOST)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    result = run()
    assert result["_rc"] == 0 and result["changed"] is False
    gpus = result["ansible_facts"]["lpfleet_gpus"]
    assert gpus[0] == {
        "index": 0,
        "uuid": "GPU-6b1f8a2e-3c4d-4e6f-9a8b-9c0d1e2f3a4b",
        "name": "NVIDIA GeForce RTX 4090",
        "memory_total_mib": 24564,
        "memory_free_mib": 24080,
        "driver_version": "550.54.14",
        "cuda_version": "12.4",
        "compute_capability": "8.9",
    }
    assert [g["index"] for g in gpus] == [0, 1] and gpus[1]["compute_capability"] == "7.5"
    assert result["ansible_facts"]["lpfleet_gpu_summary"] == {
        "count": 2, "total_memory_mib": 24564 + 8192, "driver_version": "550.54.14", "cuda_version": "12.4",
        "source": "nvml"}
    assert fake.calls == ["init", "shutdown"]


def test_nvml_without_a_driver_falls_back_to_nvidia_smi(run, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([], init_error="Driver Not Loaded"))
    result = run(nvidia_smi_path=write_nvidia_smi(tmp_path))
    assert result["ansible_facts"]["lpfleet_gpu_summary"]["source"] == "nvidia-smi"


def test_nvml_only_fails_when_pynvml_is_missing(run, no_pynvml):
    result = run(method="nvml")
    assert result["_rc"] == 1 and "pynvml does not import" in result["msg"] and "nvidia-ml-py" in result["msg"]


def test_no_driver_at_all_fails_naming_what_is_missing(run, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([], init_error="NVML Shared Library Not Found"))
    result = run(nvidia_smi_path=str(tmp_path / "nvidia-smi"))
    assert result["_rc"] == 1
    assert "no NVIDIA driver" in result["msg"] and "NVML Shared Library Not Found" in result["msg"]
    assert str(tmp_path / "nvidia-smi") in result["msg"] and "missing_driver=empty" in result["msg"]


def test_no_driver_with_missing_driver_empty_gives_no_gpu(run, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([], init_error="Driver Not Loaded"))
    result = run(nvidia_smi_path=str(tmp_path / "nvidia-smi"), missing_driver="empty")
    assert result["_rc"] == 0
    assert result["ansible_facts"]["lpfleet_gpus"] == []
    assert result["ansible_facts"]["lpfleet_gpu_summary"] == {
        "count": 0, "total_memory_mib": 0, "driver_version": None, "cuda_version": None, "source": "none"}


# --- nvidia-smi -----------------------------------------------------------------------------


def test_nvidia_smi_reads_the_fixture(run, no_pynvml, tmp_path):
    result = run(nvidia_smi_path=write_nvidia_smi(tmp_path))
    gpus = result["ansible_facts"]["lpfleet_gpus"]
    assert [(g["name"], g["memory_total_mib"], g["memory_free_mib"], g["compute_capability"]) for g in gpus] == [
        ("NVIDIA GeForce RTX 4090", 24564, 24080, "8.9"), ("NVIDIA GeForce RTX 2060", 8192, 7954, "7.5")]
    assert {g["cuda_version"] for g in gpus} == {"12.4"} and {g["driver_version"] for g in gpus} == {"550.54.14"}
    assert result["ansible_facts"]["lpfleet_gpu_summary"]["source"] == "nvidia-smi"


def test_nvidia_smi_and_nvml_agree(run, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(DOCS_HOST))
    by_nvml = run()["ansible_facts"]["lpfleet_gpus"]
    by_smi = run(method="nvidia_smi", nvidia_smi_path=write_nvidia_smi(tmp_path))["ansible_facts"]["lpfleet_gpus"]
    assert by_nvml == by_smi


def test_nvidia_smi_found_on_the_path(run, no_pynvml, tmp_path, monkeypatch):
    write_nvidia_smi(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert run()["ansible_facts"]["lpfleet_gpu_summary"]["count"] == 2


def test_old_driver_without_compute_cap(run, no_pynvml, tmp_path):
    result = run(nvidia_smi_path=write_nvidia_smi(tmp_path, no_compute_cap=True))
    gpus = result["ansible_facts"]["lpfleet_gpus"]
    assert len(gpus) == 2 and {g["compute_capability"] for g in gpus} == {None}


def test_not_available_free_memory_is_null(run, no_pynvml, tmp_path):
    line = "0, GPU-1, NVIDIA GH200 480GB, 97871, [N/A], 550.54.14, 9.0\n"
    gpus = run(nvidia_smi_path=write_nvidia_smi(tmp_path, query_output=line))["ansible_facts"]["lpfleet_gpus"]
    assert gpus[0]["memory_free_mib"] is None and gpus[0]["memory_total_mib"] == 97871


def test_no_devices_found_is_an_empty_list(run, no_pynvml, tmp_path):
    script = write_nvidia_smi(tmp_path, query_output="No devices were found\n", query_rc=6)
    result = run(nvidia_smi_path=script)
    assert result["_rc"] == 0 and result["ansible_facts"]["lpfleet_gpus"] == []


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("this is not csv from nvidia-smi\n", "expected 7 comma-separated fields"),
        ("0, GPU-1, NVIDIA GeForce RTX 4090, lots, 1, 550.54.14, 8.9\n", "'lots' for memory.total"),
        ("zero, GPU-1, NVIDIA GeForce RTX 4090, 24564, 1, 550.54.14, 8.9\n", "'zero' for index"),
    ],
)
def test_garbage_output_fails_quoting_it(run, no_pynvml, tmp_path, output, expected):
    result = run(nvidia_smi_path=write_nvidia_smi(tmp_path, query_output=output), missing_driver="empty")
    assert result["_rc"] == 1 and expected in result["msg"] and output.strip() in result["msg"]


def test_driver_not_loaded_counts_as_missing(run, no_pynvml, tmp_path):
    message = ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
               "Make sure that the latest NVIDIA driver is installed and running.\n")
    script = write_nvidia_smi(tmp_path, query_output=message, query_rc=9)
    failed = run(nvidia_smi_path=script)
    assert failed["_rc"] == 1 and "cannot reach the driver" in failed["msg"]
    assert run(nvidia_smi_path=script, missing_driver="empty")["ansible_facts"]["lpfleet_gpus"] == []


def test_other_nvidia_smi_failures_fail_even_with_missing_driver_empty(run, no_pynvml, tmp_path):
    script = write_nvidia_smi(tmp_path, query_output="Unable to determine the device handle: Unknown Error\n",
                              query_rc=15)
    result = run(nvidia_smi_path=script, missing_driver="empty")
    assert result["_rc"] == 1 and "rc=15" in result["msg"] and "Unknown Error" in result["msg"]


def test_missing_binary_fails_and_names_it(run, no_pynvml, tmp_path):
    result = run(method="nvidia_smi", nvidia_smi_path=str(tmp_path / "bin" / "nvidia-smi"))
    assert result["_rc"] == 1 and str(tmp_path / "bin" / "nvidia-smi") in result["msg"]
    assert "pynvml" not in result["msg"]  # method=nvidia_smi never tried NVML


def test_missing_cuda_header_leaves_cuda_version_null(run, no_pynvml, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    script = write_nvidia_smi(tmp_path, table_file=str(empty))
    result = run(nvidia_smi_path=script)
    assert result["ansible_facts"]["lpfleet_gpu_summary"]["cuda_version"] is None


def test_the_fixture_is_what_the_module_asks_for():
    with open(QUERY_FIXTURE, encoding="utf-8") as handle:
        lines = [line for line in handle if line.strip()]
    assert lines and all(len(line.split(",")) == len(gpu_facts.QUERY_FIELDS) for line in lines)


# --- against the lab's driver stand-in: the real pynvml on an NVML library ----------------------

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LAB_DRIVER = os.path.join(REPO, "lab", "driver")
LAB_PROFILES = os.path.join(REPO, "lab", "profiles")


@pytest.fixture(scope="module")
def standin_driver(tmp_path_factory):
    """lab/driver built into a temporary directory: libnvidia-ml.so.1 and an nvidia-smi wrapper."""
    if not os.path.isfile(os.path.join(LAB_DRIVER, "build.sh")):
        pytest.skip("lab/driver (the NVIDIA driver stand-in) is not in this checkout")
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the lab's NVML stand-in (apt-get install gcc libc6-dev)")
    directory = tmp_path_factory.mktemp("driver")
    subprocess.run(["bash", os.path.join(LAB_DRIVER, "build.sh"), str(directory)], check=True, capture_output=True)
    wrapper = directory / "nvidia-smi"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{os.path.join(LAB_DRIVER, "nvidia_smi.py")}" "$@"\n')
    wrapper.chmod(0o755)
    return directory


def run_in_process_with_driver(driver, profile, tmp_path, **args):
    """The module as Ansible runs it: its own process, reading its arguments from a file."""
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = dict(os.environ, LD_LIBRARY_PATH=str(driver), LPFLEET_LAB_GPU_PROFILE=profile,
               PYTHONPATH=os.path.join(REPO, "collections"))
    done = subprocess.run([sys.executable, "-m", "ansible_collections.lpfleet.ai.plugins.modules.gpu_facts",
                           str(args_file)], env=env, capture_output=True, text=True, cwd=str(tmp_path))
    return json.loads(done.stdout)


@pytest.mark.parametrize("profile", ["docs-4090-2060", "dual-24gb", "h100-80gb", "single-6gb", "single-8gb"])
def test_nvml_and_nvidia_smi_read_the_standin_alike(standin_driver, tmp_path, profile):
    path = os.path.join(LAB_PROFILES, profile + ".json")
    with open(path, encoding="utf-8") as handle:
        expected = json.load(handle)
    by_nvml = run_in_process_with_driver(standin_driver, path, tmp_path, method="nvml")["ansible_facts"]
    by_smi = run_in_process_with_driver(standin_driver, path, tmp_path, method="nvidia_smi",
                                        nvidia_smi_path=str(standin_driver / "nvidia-smi"))["ansible_facts"]
    assert by_nvml["lpfleet_gpus"] == by_smi["lpfleet_gpus"]
    assert [(g["index"], g["uuid"], g["name"], g["memory_total_mib"], g["compute_capability"])
            for g in by_nvml["lpfleet_gpus"]] == [
        (g["index"], g["uuid"], g["name"], g["memory_total_mib"], g["compute_capability"]) for g in expected["gpus"]]
    assert by_nvml["lpfleet_gpu_summary"]["cuda_version"] == by_smi["lpfleet_gpu_summary"]["cuda_version"] == (
        expected["cuda_version"])


def test_standin_without_its_profile_is_a_driver_that_is_not_loaded(standin_driver, tmp_path):
    absent = str(tmp_path / "no-profile.json")
    failed = run_in_process_with_driver(standin_driver, absent, tmp_path,
                                        nvidia_smi_path=str(standin_driver / "nvidia-smi"))
    assert failed["failed"] is True and "no NVIDIA driver found" in failed["msg"]
    assert "NVML could not start" in failed["msg"] and "cannot reach the driver" in failed["msg"]
