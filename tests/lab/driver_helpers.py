"""Shared helpers for the tests of the lab's driver and toolkit stand-ins (no Docker needed).

Paths into lab/, loading GPU profiles, building the NVML stand-in, running it under pynvml in a
subprocess (pynvml loads libnvidia-ml.so.1 once per process), and running the Python stand-ins as
programs with a clean environment.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
LAB_DIR = REPO_ROOT / "lab"
PROFILES_DIR = LAB_DIR / "profiles"
DRIVER_DIR = LAB_DIR / "driver"
TOOLKIT_DIR = LAB_DIR / "toolkit"
TOOLKIT_SRC = TOOLKIT_DIR / "src"
NVIDIA_SMI = DRIVER_DIR / "nvidia_smi.py"

# Variables that change what the stand-ins report; tests set them explicitly.
STAND_IN_VARIABLES = (
    "NVIDIA_VISIBLE_DEVICES",
    "CUDA_VISIBLE_DEVICES",
    "LPFLEET_LAB_GPU_PROFILE",
    "LPFLEET_LAB_DRIVER_ROOT",
    "LD_LIBRARY_PATH",
)

PROFILE_NAMES = sorted(path.stem for path in PROFILES_DIR.glob("*.json"))


def load_profile(name: str) -> dict:
    return json.loads((PROFILES_DIR / f"{name}.json").read_text(encoding="utf-8"))


def profile_path(name: str) -> Path:
    return PROFILES_DIR / f"{name}.json"


GPU_PROFILE_NAMES = [name for name in PROFILE_NAMES if load_profile(name)["gpus"]]


def clean_env(**overrides: str | None) -> dict:
    """The current environment without the stand-ins' variables, plus overrides (None removes)."""
    environment = {key: value for key, value in os.environ.items() if key not in STAND_IN_VARIABLES}
    for key, value in overrides.items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    return environment


def require_tools(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} on PATH (apt-get install gcc dpkg-dev gnupg gpgv)")


def build_nvml(outdir: Path) -> Path:
    """Builds libnvidia-ml.so.1 with lab/driver/build.sh; skips the test when gcc is missing."""
    require_tools("gcc")
    result = subprocess.run([str(DRIVER_DIR / "build.sh"), str(outdir)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return outdir / "libnvidia-ml.so.1"


def install_driver(destdir: Path, profile: str) -> subprocess.CompletedProcess:
    """Runs lab/driver/install.sh DESTDIR PROFILE (building the library with gcc)."""
    require_tools("gcc")
    return subprocess.run(
        [str(DRIVER_DIR / "install.sh"), str(destdir), str(profile)],
        capture_output=True,
        text=True,
        check=False,
        env=clean_env(),
    )


def pynvml_python() -> str:
    """An interpreter that has pynvml (nvidia-ml-py); the test is skipped without one."""
    if importlib.util.find_spec("pynvml") is not None:
        return sys.executable
    venv_python = REPO_ROOT / ".venv" / "bin" / "python"
    if venv_python.exists():
        return str(venv_python)
    pytest.skip("pynvml (nvidia-ml-py) is not installed; run the tests with the project's .venv")
    raise AssertionError("unreachable")


# Runs in a fresh interpreter: for each case, sets the environment, then reads everything lpfleet's
# gpu_facts and pynvml users ask NVML through pynvml's public functions.
PYNVML_PROBE = r"""
import json, os, sys
import pynvml

def read_all():
    pynvml.nvmlInit()
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            memory_v2 = pynvml.nvmlDeviceGetMemoryInfo(handle, version=pynvml.nvmlMemory_v2)
            pci = pynvml.nvmlDeviceGetPciInfo(handle)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            gpus.append({
                "index": pynvml.nvmlDeviceGetIndex(handle),
                "minor_number": pynvml.nvmlDeviceGetMinorNumber(handle),
                "name": pynvml.nvmlDeviceGetName(handle),
                "uuid": uuid,
                "memory_total": memory.total, "memory_free": memory.free, "memory_used": memory.used,
                "memory_v2_total": memory_v2.total, "memory_v2_free": memory_v2.free,
                "memory_v2_used": memory_v2.used,
                "compute_capability": list(pynvml.nvmlDeviceGetCudaComputeCapability(handle)),
                "pci_bus_id": pci.busId.decode() if isinstance(pci.busId, bytes) else pci.busId,
                "by_uuid_index": pynvml.nvmlDeviceGetIndex(pynvml.nvmlDeviceGetHandleByUUID(uuid)),
                "temperature": pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU),
                "power_mw": pynvml.nvmlDeviceGetPowerUsage(handle),
                "utilization_gpu": pynvml.nvmlDeviceGetUtilizationRates(handle).gpu,
                "processes": len(pynvml.nvmlDeviceGetComputeRunningProcesses(handle)),
            })
        return {
            "driver_version": pynvml.nvmlSystemGetDriverVersion(),
            "cuda_driver_version": pynvml.nvmlSystemGetCudaDriverVersion(),
            "cuda_driver_version_v2": pynvml.nvmlSystemGetCudaDriverVersion_v2(),
            "nvml_version": pynvml.nvmlSystemGetNVMLVersion(),
            "gpus": gpus,
        }
    finally:
        pynvml.nvmlShutdown()

results = []
for case in json.loads(sys.argv[1]):
    for key in ("NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"):
        os.environ.pop(key, None)
    for key, value in case.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        results.append(read_all())
    except pynvml.NVMLError as error:
        results.append({"error": type(error).__name__, "value": error.value})
print(json.dumps(results))
"""


def probe_pynvml(lib_dir: Path, cases: list[dict], profile: Path | str | None = None) -> list[dict]:
    """Runs PYNVML_PROBE with the stand-in first on LD_LIBRARY_PATH; one result per case.

    A case maps environment variables to values (None unsets) before that case's nvmlInit; the
    *_VISIBLE_DEVICES variables start unset in every case.
    """
    environment = clean_env(LD_LIBRARY_PATH=str(lib_dir))
    if profile is not None:
        environment["LPFLEET_LAB_GPU_PROFILE"] = str(profile)
    result = subprocess.run(
        [pynvml_python(), "-c", PYNVML_PROBE, json.dumps(cases)],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def run_nvidia_smi(args: list[str], profile: Path | str | None, **env: str | None) -> subprocess.CompletedProcess:
    environment = clean_env(**env)
    if profile is not None:
        environment["LPFLEET_LAB_GPU_PROFILE"] = str(profile)
    return subprocess.run(
        [sys.executable, str(NVIDIA_SMI), *args],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        timeout=30,
    )


def load_source_module(path: Path, name: str) -> ModuleType:
    """Imports a stand-in program (they are plain Python files installed without the .py suffix)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
