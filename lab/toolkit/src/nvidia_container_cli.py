"""lpfleet-lab stand-in for ``nvidia-container-cli`` (package libnvidia-container-tools).

Packaged as /usr/bin/nvidia-container-cli by lab/toolkit/build-repo.sh. Supports
``--version`` and ``info`` (the driver and every GPU of the host's profile), which
is what provisioning checks use. LPFLEET_LAB_DRIVER_ROOT and LPFLEET_LAB_GPU_PROFILE
locate the lab driver as for nvidia-container-runtime.
Python 3.8+ and the standard library only.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import TextIO

TOOLKIT_VERSION = "1.17.8"  # rewritten per package version by build-repo.sh
STAND_IN = "lpfleet-lab stand-in"

NVML_LIBRARY = "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1"
GPU_PROFILE = "/etc/lpfleet-lab/gpus.json"


class CliError(Exception):
    """Printed as ``nvidia-container-cli: <message>`` with exit code 1."""


def load_driver(environ: Mapping[str, str]) -> dict:
    """The host's GPU profile, failing like libnvidia-container when the driver is absent."""
    root = environ.get("LPFLEET_LAB_DRIVER_ROOT") or "/"
    library = os.path.join(root, NVML_LIBRARY.lstrip("/"))
    profile = environ.get("LPFLEET_LAB_GPU_PROFILE") or os.path.join(root, GPU_PROFILE.lstrip("/"))
    if not os.path.isfile(library):
        raise CliError("initialization error: load library failed: libnvidia-ml.so.1: cannot open shared "
                       f"object file: no such file or directory ({STAND_IN}: {library} is missing)")
    try:
        with open(profile, encoding="utf-8") as stream:
            document = json.load(stream)
    except FileNotFoundError:
        raise CliError(f"initialization error: nvml error: driver not loaded ({STAND_IN}: {profile} is missing)") \
            from None
    except (OSError, ValueError) as error:
        raise CliError("initialization error: nvml error: unknown error "
                       f"({STAND_IN}: GPU profile {profile}: {error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("gpus"), list):
        raise CliError("initialization error: nvml error: unknown error "
                       f'({STAND_IN}: GPU profile {profile} has no "gpus" list)')
    return document


def render_info(document: dict) -> str:
    lines = [
        f"NVRM version:   {document.get('driver_version', '')}",
        f"CUDA version:   {document.get('cuda_version', '')}",
    ]
    for gpu in document["gpus"]:
        name = str(gpu.get("name", ""))
        lines += [
            "",
            f"Device Index:   {gpu.get('index')}",
            f"Device Minor:   {gpu.get('index')}",
            f"Model:          {name}",
            f"Brand:          {'GeForce' if 'GeForce' in name else 'Nvidia'}",
            f"GPU UUID:       {gpu.get('uuid')}",
            f"Bus Location:   {gpu.get('pci_bus_id')}",
            f"Architecture:   {gpu.get('compute_capability')}",
        ]
    return "\n".join(lines) + "\n"


def version_text() -> str:
    return (f"cli-version: {TOOLKIT_VERSION}\nlib-version: {TOOLKIT_VERSION}\n"
            f"build revision: {STAND_IN}\nbuild platform: x86_64\n")


def run(argv: list[str], environ: Mapping[str, str], stdout: TextIO, stderr: TextIO) -> int:
    commands = [arg for arg in argv if not arg.startswith("-")]
    try:
        if "--version" in argv or "-V" in argv:
            stdout.write(version_text())
        elif commands[:1] == ["info"]:
            stdout.write(render_info(load_driver(environ)))
        else:
            raise CliError(f"unsupported command {' '.join(argv)!r} ({STAND_IN}: only info and --version)")
        return 0
    except CliError as error:
        stderr.write(f"nvidia-container-cli: {error}\n")
        return 1


def main(argv: list[str] | None = None) -> int:
    return run(sys.argv[1:] if argv is None else argv, os.environ, sys.stdout, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
