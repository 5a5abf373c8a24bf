"""Tests of the lab's GPU profiles and NVIDIA driver stand-in (libnvidia-ml.so.1 and nvidia-smi).

The library is built with gcc into a temporary directory and driven through pynvml in
subprocesses; nvidia-smi runs as a program. Expected values come from the profile files.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import stat
import subprocess
import sys
import textwrap

import pytest
from driver_helpers import (
    DRIVER_DIR,
    GPU_PROFILE_NAMES,
    PROFILE_NAMES,
    build_nvml,
    clean_env,
    install_driver,
    load_profile,
    probe_pynvml,
    profile_path,
    run_nvidia_smi,
)

MIB = 1024 * 1024
UUID_PATTERN = re.compile(r"^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
FULL_QUERY = "index,uuid,name,memory.total,memory.free,memory.used,driver_version,compute_cap,pci.bus_id"

# What the task asked of each profile: (name, memory MiB, compute capability) per GPU.
EXPECTED_PROFILES = {
    "docs-4090-2060": [("NVIDIA GeForce RTX 4090", 24564, "8.9"), ("NVIDIA GeForce RTX 2060", 8192, "7.5")],
    "single-8gb": [("NVIDIA GeForce RTX 3060 Ti", 8192, "8.6")],
    "single-6gb": [("NVIDIA GeForce RTX 2060", 6144, "7.5")],
    "h100-80gb": [("NVIDIA H100 80GB HBM3", 81559, "9.0")],
    "dual-24gb": [("NVIDIA GeForce RTX 3090", 24576, "8.6"), ("NVIDIA GeForce RTX 3090", 24576, "8.6")],
    "no-gpu": [],
}


@pytest.fixture(scope="module")
def nvml_dir(tmp_path_factory):
    lib_dir = tmp_path_factory.mktemp("nvml")
    build_nvml(lib_dir)
    return lib_dir


# --------------------------------------------------------------------------- profiles


def test_profiles_are_the_documented_set():
    assert set(PROFILE_NAMES) == set(EXPECTED_PROFILES)
    readme = (DRIVER_DIR.parent / "profiles" / "README.md").read_text(encoding="utf-8")
    for name in PROFILE_NAMES:
        assert f"`{name}`" in readme, f"lab/profiles/README.md does not list {name}"


@pytest.mark.parametrize("name", sorted(EXPECTED_PROFILES))
def test_profile_content(name):
    profile = load_profile(name)
    assert profile["driver_version"] == "550.54.14"
    assert profile["cuda_version"] == "12.4"
    got = [(gpu["name"], gpu["memory_total_mib"], gpu["compute_capability"]) for gpu in profile["gpus"]]
    assert got == EXPECTED_PROFILES[name]
    for position, gpu in enumerate(profile["gpus"]):
        assert gpu["index"] == position
        assert UUID_PATTERN.match(gpu["uuid"]), gpu["uuid"]
        assert 0 <= gpu["memory_used_mib"] < gpu["memory_total_mib"]
        assert re.match(r"^[0-9A-F]{8}:[0-9A-F]{2}:[0-9A-F]{2}\.[0-7]$", gpu["pci_bus_id"])


def test_uuids_are_unique_across_profiles():
    uuids = [gpu["uuid"] for name in PROFILE_NAMES for gpu in load_profile(name)["gpus"]]
    assert len(uuids) == len(set(uuids))


# --------------------------------------------------------------------------- NVML through pynvml


@pytest.mark.parametrize("name", GPU_PROFILE_NAMES)
def test_pynvml_reports_the_profile(nvml_dir, name):
    profile = load_profile(name)
    (report,) = probe_pynvml(nvml_dir, [{}], profile_path(name))
    assert report["driver_version"] == "550.54.14"
    assert report["cuda_driver_version"] == 12040
    assert report["cuda_driver_version_v2"] == 12040
    assert report["nvml_version"] == "12.550.54.14"
    assert len(report["gpus"]) == len(profile["gpus"])
    for expected, got in zip(profile["gpus"], report["gpus"], strict=True):
        total, used = expected["memory_total_mib"] * MIB, expected["memory_used_mib"] * MIB
        assert got["index"] == got["minor_number"] == got["by_uuid_index"] == expected["index"]
        assert got["name"] == expected["name"]
        assert got["uuid"] == expected["uuid"]
        assert (got["memory_total"], got["memory_used"], got["memory_free"]) == (total, used, total - used)
        assert (got["memory_v2_total"], got["memory_v2_used"], got["memory_v2_free"]) == (total, used, total - used)
        assert ".".join(map(str, got["compute_capability"])) == expected["compute_capability"]
        assert got["pci_bus_id"] == expected["pci_bus_id"]
        assert got["processes"] == 0


def test_pynvml_honours_visible_devices(nvml_dir):
    profile = load_profile("docs-4090-2060")
    first, second = profile["gpus"]
    cases = [
        {"NVIDIA_VISIBLE_DEVICES": "1"},
        {"NVIDIA_VISIBLE_DEVICES": second["uuid"]},
        {"NVIDIA_VISIBLE_DEVICES": f"{second['uuid'].upper()}, 0"},
        {"NVIDIA_VISIBLE_DEVICES": "all"},
        {"NVIDIA_VISIBLE_DEVICES": "none"},
        {"NVIDIA_VISIBLE_DEVICES": "void"},
        {"NVIDIA_VISIBLE_DEVICES": "7,GPU-00000000-0000-0000-0000-000000000000"},
        {"NVIDIA_VISIBLE_DEVICES": None, "CUDA_VISIBLE_DEVICES": "1"},
        {"NVIDIA_VISIBLE_DEVICES": "1", "CUDA_VISIBLE_DEVICES": "0"},
        {"NVIDIA_VISIBLE_DEVICES": "1", "CUDA_VISIBLE_DEVICES": "1"},
        {"NVIDIA_VISIBLE_DEVICES": None, "CUDA_VISIBLE_DEVICES": ""},
        {"NVIDIA_VISIBLE_DEVICES": "", "CUDA_VISIBLE_DEVICES": None},
    ]
    expected_uuids = [
        [second["uuid"]],
        [second["uuid"]],
        [first["uuid"], second["uuid"]],
        [first["uuid"], second["uuid"]],
        [],
        [],
        [],
        [second["uuid"]],
        [second["uuid"]],
        [],
        [],
        [first["uuid"], second["uuid"]],
    ]
    reports = probe_pynvml(nvml_dir, cases, profile_path("docs-4090-2060"))
    for case, expected, report in zip(cases, expected_uuids, reports, strict=True):
        assert [gpu["uuid"] for gpu in report["gpus"]] == expected, case
        assert [gpu["index"] for gpu in report["gpus"]] == list(range(len(expected))), case
    only_2060 = reports[0]["gpus"][0]
    assert (only_2060["name"], only_2060["minor_number"]) == ("NVIDIA GeForce RTX 2060", 1)


def test_missing_profile_means_driver_not_loaded(nvml_dir, tmp_path):
    (report,) = probe_pynvml(nvml_dir, [{}], tmp_path / "absent.json")
    assert report == {"error": "NVMLError_DriverNotLoaded", "value": 9}


def _valid_profile() -> dict:
    return load_profile("single-8gb")


def _profile_text(change) -> str:
    document = _valid_profile()
    change(document)
    return json.dumps(document)


BAD_PROFILES = {
    "not json": ("{not json", "expected a string"),
    "list": ("[]", "must be a JSON object"),
    "no driver": (_profile_text(lambda d: d.pop("driver_version")), "driver_version"),
    "bad cuda": (_profile_text(lambda d: d.update(cuda_version="twelve")), "cuda_version"),
    "no gpus": (_profile_text(lambda d: d.pop("gpus")), '"gpus" is missing'),
    "gpu lacks uuid": (_profile_text(lambda d: d["gpus"][0].pop("uuid")), 'lacks "uuid"'),
    "index order": (_profile_text(lambda d: d["gpus"][0].update(index=3)), "index must equal"),
    "used > total": (_profile_text(lambda d: d["gpus"][0].update(memory_used_mib=9000)), "must not exceed"),
    "bad cc": (_profile_text(lambda d: d["gpus"][0].update(compute_capability="8")), "compute_capability"),
    "bad pci": (_profile_text(lambda d: d["gpus"][0].update(pci_bus_id="01:00")), "pci_bus_id"),
    "fraction": (_profile_text(lambda d: d["gpus"][0].update(memory_total_mib=8.5)), "not a fraction"),
    "trailing": (json.dumps(_valid_profile()) + " {}", "unexpected text after"),
}


@pytest.mark.parametrize("case", sorted(BAD_PROFILES))
def test_invalid_profile_is_an_error_naming_file_and_problem(nvml_dir, tmp_path, case):
    text, fragment = BAD_PROFILES[case]
    path = tmp_path / "gpus.json"
    path.write_text(text, encoding="utf-8")
    probe = "import ctypes, sys; lib = ctypes.CDLL(sys.argv[1]); print(lib.nvmlInit_v2())"
    result = subprocess.run([sys.executable, "-c", probe, str(nvml_dir / "libnvidia-ml.so.1")], capture_output=True,
                            text=True, env=clean_env(LPFLEET_LAB_GPU_PROFILE=str(path)), check=False)
    assert result.stdout.strip() == "999"  # NVML_ERROR_UNKNOWN
    assert str(path) in result.stderr
    assert fragment in result.stderr


# --------------------------------------------------------------------------- NVML C contract

NVML_FUNCTIONS = """
nvmlInit nvmlInit_v2 nvmlInitWithFlags nvmlShutdown nvmlErrorString nvmlSystemGetDriverVersion
nvmlSystemGetNVMLVersion nvmlSystemGetCudaDriverVersion nvmlSystemGetCudaDriverVersion_v2 nvmlDeviceGetCount
nvmlDeviceGetCount_v2 nvmlDeviceGetHandleByIndex nvmlDeviceGetHandleByIndex_v2 nvmlDeviceGetHandleByUUID
nvmlDeviceGetHandleByPciBusId_v2 nvmlDeviceGetName nvmlDeviceGetUUID nvmlDeviceGetIndex nvmlDeviceGetMemoryInfo
nvmlDeviceGetMemoryInfo_v2 nvmlDeviceGetCudaComputeCapability nvmlDeviceGetPciInfo nvmlDeviceGetPciInfo_v3
nvmlDeviceGetUtilizationRates nvmlDeviceGetTemperature nvmlDeviceGetPowerUsage nvmlDeviceGetMinorNumber
""".split()

# Runs in a fresh interpreter with ctypes: each line is "<label> <return code or value>".
RETURN_CODE_PROBE = textwrap.dedent(r"""
    import ctypes, sys
    lib = ctypes.CDLL(sys.argv[1])
    lib.nvmlErrorString.restype = ctypes.c_char_p
    handle, count, text = ctypes.c_void_p(), ctypes.c_uint(), ctypes.create_string_buffer(96)
    def say(label, value):
        print(label, value)
    say("count_before_init", lib.nvmlDeviceGetCount_v2(ctypes.byref(count)))
    say("driver_before_init", lib.nvmlSystemGetDriverVersion(text, 96))
    say("shutdown_before_init", lib.nvmlShutdown())
    say("error_string_9", lib.nvmlErrorString(9).decode())
    say("init", lib.nvmlInit_v2())
    say("init_again", lib.nvmlInitWithFlags(0))
    say("count_null", lib.nvmlDeviceGetCount_v2(None))
    say("index_out_of_range", lib.nvmlDeviceGetHandleByIndex_v2(5, ctypes.byref(handle)))
    say("unknown_uuid", lib.nvmlDeviceGetHandleByUUID(b"GPU-00000000-0000-0000-0000-000000000000",
                                                       ctypes.byref(handle)))
    say("by_pci", lib.nvmlDeviceGetHandleByPciBusId_v2(b"0000:02:00.0", ctypes.byref(handle)))
    index = ctypes.c_uint()
    say("by_pci_index", lib.nvmlDeviceGetIndex(handle, ctypes.byref(index)) or index.value)
    say("index_v1", lib.nvmlDeviceGetHandleByIndex(0, ctypes.byref(handle)))
    small = ctypes.create_string_buffer(8)
    say("name_small_buffer", lib.nvmlDeviceGetName(handle, small, 8))
    say("bad_handle", lib.nvmlDeviceGetName(ctypes.c_void_p(16), text, 96))
    class MemoryV2(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint), ("total", ctypes.c_ulonglong), ("reserved", ctypes.c_ulonglong),
                    ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]
    memory = MemoryV2(version=0x01000028)
    say("memory_v2_wrong_version", lib.nvmlDeviceGetMemoryInfo_v2(handle, ctypes.byref(memory)))
    temperature = ctypes.c_uint()
    say("temperature_bad_sensor", lib.nvmlDeviceGetTemperature(handle, 7, ctypes.byref(temperature)))
    say("shutdown", lib.nvmlShutdown())
    say("shutdown_second", lib.nvmlShutdown())
    say("count_after_shutdown", lib.nvmlDeviceGetCount_v2(ctypes.byref(count)))
    say("handle_after_shutdown", lib.nvmlDeviceGetName(handle, text, 96))
    say("shutdown_extra", lib.nvmlShutdown())
""")


def test_exports_the_nvml_functions(nvml_dir):
    lib = ctypes.CDLL(str(nvml_dir / "libnvidia-ml.so.1"))
    missing = [name for name in NVML_FUNCTIONS if not hasattr(lib, name)]
    assert not missing
    assert not hasattr(lib, "json_string"), "internal helpers must not be exported"


def test_return_codes_follow_nvml(nvml_dir):
    result = subprocess.run(
        [sys.executable, "-c", RETURN_CODE_PROBE, str(nvml_dir / "libnvidia-ml.so.1")], capture_output=True,
        text=True, env=clean_env(LPFLEET_LAB_GPU_PROFILE=str(profile_path("docs-4090-2060"))), check=False)
    assert result.returncode == 0, result.stderr
    said = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert said == {
        "count_before_init": "1",  # NVML_ERROR_UNINITIALIZED
        "driver_before_init": "1",
        "shutdown_before_init": "1",
        "error_string_9": "Driver Not Loaded",
        "init": "0",
        "init_again": "0",
        "count_null": "2",  # NVML_ERROR_INVALID_ARGUMENT
        "index_out_of_range": "2",
        "unknown_uuid": "6",  # NVML_ERROR_NOT_FOUND
        "by_pci": "0",
        "by_pci_index": "1",
        "index_v1": "0",
        "name_small_buffer": "7",  # NVML_ERROR_INSUFFICIENT_SIZE
        "bad_handle": "2",
        "memory_v2_wrong_version": "25",  # NVML_ERROR_ARGUMENT_VERSION_MISMATCH
        "temperature_bad_sensor": "2",
        "shutdown": "0",
        "shutdown_second": "0",  # two inits, two shutdowns
        "count_after_shutdown": "1",
        "handle_after_shutdown": "1",
        "shutdown_extra": "1",
    }


# --------------------------------------------------------------------------- nvidia-smi


@pytest.mark.parametrize("name", GPU_PROFILE_NAMES)
def test_nvidia_smi_query_matches_the_profile(name):
    profile = load_profile(name)
    result = run_nvidia_smi([f"--query-gpu={FULL_QUERY}", "--format=csv,noheader,nounits"], profile_path(name))
    assert result.returncode == 0, result.stdout
    rows = [line.split(", ") for line in result.stdout.splitlines()]
    expected = [
        [str(gpu["index"]), gpu["uuid"], gpu["name"], str(gpu["memory_total_mib"]),
         str(gpu["memory_total_mib"] - gpu["memory_used_mib"]), str(gpu["memory_used_mib"]),
         profile["driver_version"], gpu["compute_capability"], gpu["pci_bus_id"]]
        for gpu in profile["gpus"]
    ]
    assert rows == expected


def test_nvidia_smi_csv_with_header_and_units():
    gpu = load_profile("single-8gb")["gpus"][0]
    result = run_nvidia_smi(["--query-gpu=memory.total,name,memory.used,index", "--format=csv"],
                            profile_path("single-8gb"))
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines() == [
        "memory.total [MiB], name, memory.used [MiB], index",
        f"{gpu['memory_total_mib']} MiB, {gpu['name']}, {gpu['memory_used_mib']} MiB, 0",
    ]
    no_units = run_nvidia_smi(["--query-gpu=memory.free", "--format=csv,nounits"], profile_path("single-8gb"))
    assert no_units.stdout.splitlines() == [
        "memory.free [MiB]", str(gpu["memory_total_mib"] - gpu["memory_used_mib"])]


@pytest.mark.parametrize("field", ["memory.bogus", "x", "name,fan_speed_rpm"])
def test_nvidia_smi_rejects_unknown_fields(field):
    result = run_nvidia_smi([f"--query-gpu={field}", "--format=csv"], profile_path("single-8gb"))
    assert result.returncode == 2
    bad = field.split(",")[-1]
    assert result.stdout.splitlines()[0] == f'Field "{bad}" is not a valid field to query.'


@pytest.mark.parametrize("args", [["--query-gpu=name"], ["--query-gpu=name", "--format=json"], ["--bogus"]])
def test_nvidia_smi_rejects_bad_command_lines(args):
    result = run_nvidia_smi(args, profile_path("single-8gb"))
    assert result.returncode == 2
    assert result.stdout.strip()


def test_nvidia_smi_list_and_version():
    profile = load_profile("docs-4090-2060")
    listing = run_nvidia_smi(["-L"], profile_path("docs-4090-2060"))
    assert listing.stdout.splitlines() == [
        f"GPU {gpu['index']}: {gpu['name']} (UUID: {gpu['uuid']})" for gpu in profile["gpus"]]
    version = run_nvidia_smi(["--version"], profile_path("docs-4090-2060"))
    assert version.returncode == 0
    assert "lpfleet-lab stand-in" in version.stdout
    assert re.search(r"^DRIVER version\s+: 550\.54\.14$", version.stdout, re.M)
    assert re.search(r"^CUDA Version\s+: 12\.4$", version.stdout, re.M)


@pytest.mark.parametrize("name", GPU_PROFILE_NAMES)
def test_nvidia_smi_table(name):
    profile = load_profile(name)
    result = run_nvidia_smi([], profile_path(name))
    assert result.returncode == 0
    assert re.search(r"Driver Version: 550\.54\.14\s+CUDA Version: 12\.4", result.stdout)
    for gpu in profile["gpus"]:
        assert re.search(rf"\|\s+{gpu['index']}\s+{re.escape(gpu['name'])}\s", result.stdout)
        assert f"{gpu['memory_used_mib']}MiB / {gpu['memory_total_mib']:>6}MiB" in result.stdout
    table_lines = [line for line in result.stdout.splitlines()[1:] if line.strip()]
    assert {len(line) for line in table_lines} == {91}, "table borders must line up"


def test_nvidia_smi_honours_visible_devices_and_id():
    first, second = load_profile("docs-4090-2060")["gpus"]
    path = profile_path("docs-4090-2060")
    by_uuid = run_nvidia_smi(["-L"], path, NVIDIA_VISIBLE_DEVICES=second["uuid"])
    assert by_uuid.stdout.splitlines() == [f"GPU 0: {second['name']} (UUID: {second['uuid']})"]
    by_cuda = run_nvidia_smi(["--query-gpu=index,name", "--format=csv,noheader"], path, CUDA_VISIBLE_DEVICES="1")
    assert by_cuda.stdout.splitlines() == [f"0, {second['name']}"]
    by_id = run_nvidia_smi(["-i", "0", "--query-gpu=uuid", "--format=csv,noheader"], path)
    assert by_id.stdout.splitlines() == [first["uuid"]]
    by_bus = run_nvidia_smi(["--id=0000:02:00.0", "--query-gpu=uuid", "--format=csv,noheader"], path)
    assert by_bus.stdout.splitlines() == [second["uuid"]]
    for env in ({"NVIDIA_VISIBLE_DEVICES": "none"}, {"CUDA_VISIBLE_DEVICES": ""}):
        hidden = run_nvidia_smi(["-L"], path, **env)
        assert (hidden.returncode, hidden.stdout.strip()) == (6, "No devices were found")


def test_nvidia_smi_without_profile_reports_no_driver(tmp_path):
    result = run_nvidia_smi(["-L"], tmp_path / "absent.json")
    assert result.returncode == 9
    assert "couldn't communicate with the NVIDIA driver" in result.stdout


def test_nvidia_smi_reports_an_invalid_profile(tmp_path):
    path = tmp_path / "gpus.json"
    path.write_text(_profile_text(lambda d: d["gpus"][0].update(index=2)), encoding="utf-8")
    result = run_nvidia_smi(["-L"], path)
    assert result.returncode == 255
    assert str(path) in result.stdout and "gpus[0].index must be 0" in result.stdout


def test_nvidia_smi_and_nvml_agree(nvml_dir):
    path = profile_path("dual-24gb")
    cases = [{}, {"NVIDIA_VISIBLE_DEVICES": "1"}, {"CUDA_VISIBLE_DEVICES": "0,1"}]
    reports = probe_pynvml(nvml_dir, cases, path)
    for case, report in zip(cases, reports, strict=True):
        smi = run_nvidia_smi(["--query-gpu=index,uuid,memory.free", "--format=csv,noheader,nounits"], path, **case)
        nvml_rows = [f"{gpu['index']}, {gpu['uuid']}, {gpu['memory_free'] // MIB}" for gpu in report["gpus"]]
        assert smi.stdout.splitlines() == nvml_rows, case


# --------------------------------------------------------------------------- install.sh


def test_install_lays_out_the_driver(tmp_path):
    result = install_driver(tmp_path, profile_path("docs-4090-2060"))
    assert result.returncode == 0, result.stderr
    expected_modes = {
        "usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1": 0o755,
        "usr/bin/nvidia-smi": 0o755,
        "etc/lpfleet-lab/gpus.json": 0o644,
    }
    for relative, mode in expected_modes.items():
        assert stat.S_IMODE((tmp_path / relative).stat().st_mode) == mode, relative
    assert (tmp_path / "etc/lpfleet-lab/gpus.json").read_bytes() == profile_path("docs-4090-2060").read_bytes()
    smi = tmp_path / "usr/bin/nvidia-smi"
    assert smi.read_text(encoding="utf-8").startswith("#!/usr/bin/env python3\n")
    listed = subprocess.run([str(smi), "-L"], capture_output=True, text=True, check=False,
                            env=clean_env(LPFLEET_LAB_GPU_PROFILE=str(tmp_path / "etc/lpfleet-lab/gpus.json")))
    assert listed.returncode == 0 and listed.stdout.count("GPU ") == 2


def test_install_skips_a_host_without_gpus(tmp_path):
    result = install_driver(tmp_path / "root", profile_path("no-gpu"))
    assert result.returncode == 0, result.stderr
    assert "no driver stand-in" in result.stdout
    assert not (tmp_path / "root").exists()


def test_install_rejects_a_bad_profile(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"gpus": []}', encoding="utf-8")
    result = install_driver(tmp_path / "root", bad)
    assert result.returncode == 1
    assert str(bad) in result.stderr and "driver_version" in result.stderr
    assert not (tmp_path / "root").exists()
    missing = install_driver(tmp_path / "root", tmp_path / "absent.json")
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_build_script_needs_an_outdir():
    result = subprocess.run([str(DRIVER_DIR / "build.sh")], capture_output=True, text=True, check=False,
                            env=dict(os.environ))
    assert result.returncode == 2 and "usage" in result.stderr
