"""lpfleet-lab stand-in for ``nvidia-container-runtime``: an OCI runtime wrapper around runc.

Packaged as /usr/bin/nvidia-container-runtime by lab/toolkit/build-repo.sh. On
``create``/``run`` it reads the bundle's config.json and, when the container's
NVIDIA_VISIBLE_DEVICES asks for GPUs (set, not ``void``/``none``), adds read-only
bind mounts of the lab driver (nvidia-smi, libnvidia-ml.so.1 and the GPU
profile), the way the real toolkit injects the driver. Then it execs runc with
the same arguments. Python 3.8+ and the standard library only.

LPFLEET_LAB_DRIVER_ROOT (default ``/``) is where the driver files are looked
up; LPFLEET_LAB_GPU_PROFILE overrides the profile path.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence

TOOLKIT_VERSION = "1.17.8"  # rewritten per package version by build-repo.sh
STAND_IN = "lpfleet-lab stand-in"

NVIDIA_SMI = "/usr/bin/nvidia-smi"
NVML_LIBRARY = "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1"
GPU_PROFILE = "/etc/lpfleet-lab/gpus.json"
CREATE_COMMANDS = ("create", "run")
GLOBAL_FLAGS_WITH_VALUE = ("--root", "--log", "--log-format", "--criu", "--rootless")
BUNDLE_FLAGS = ("--bundle", "-b")
NO_GPU_VALUES = ("void", "none")
MOUNT_OPTIONS = ["rbind", "ro", "nosuid", "nodev"]


class InjectionError(Exception):
    """The container must not start; the message says why (shown by Docker)."""


def find_create_bundle(args: Sequence[str], cwd: str) -> str | None:
    """The bundle directory when runc's subcommand is create or run, else None."""
    position = 0
    while position < len(args) and args[position].startswith("-"):
        position += 2 if args[position] in GLOBAL_FLAGS_WITH_VALUE else 1
    if position >= len(args) or args[position] not in CREATE_COMMANDS:
        return None
    rest = args[position + 1:]
    for index, arg in enumerate(rest):
        if arg in BUNDLE_FLAGS and index + 1 < len(rest):
            return rest[index + 1]
        for flag in BUNDLE_FLAGS:
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
    return cwd


def container_env(spec: dict) -> dict[str, str]:
    """The container's environment; a later duplicate wins, as in the real toolkit."""
    environment: dict[str, str] = {}
    for entry in (spec.get("process") or {}).get("env") or []:
        name, _, value = str(entry).partition("=")
        environment[name] = value
    return environment


def wants_gpus(environment: Mapping[str, str]) -> bool:
    value = environment.get("NVIDIA_VISIBLE_DEVICES")
    return value is not None and value.strip() != "" and value.strip().lower() not in NO_GPU_VALUES


def driver_files(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """(host source, container destination) for each driver file to inject."""
    root = environ.get("LPFLEET_LAB_DRIVER_ROOT") or "/"
    profile = environ.get("LPFLEET_LAB_GPU_PROFILE") or os.path.join(root, GPU_PROFILE.lstrip("/"))
    return [
        (os.path.join(root, NVIDIA_SMI.lstrip("/")), NVIDIA_SMI),
        (os.path.join(root, NVML_LIBRARY.lstrip("/")), NVML_LIBRARY),
        (profile, GPU_PROFILE),
    ]


def _missing(source: str) -> str:
    return f"({STAND_IN}: {source} is missing on this host; install the lab driver stand-in there or request no GPU)"


def check_driver(files: list[tuple[str, str]]) -> list[dict]:
    """Fails like libnvidia-container when the driver is absent; returns the profile's GPUs."""
    (smi, _), (library, _), (profile_path, _) = files
    if not os.path.isfile(library):
        raise InjectionError("nvidia-container-cli: initialization error: load library failed: libnvidia-ml.so.1: "
                             "cannot open shared object file: no such file or directory " + _missing(library))
    if not os.path.isfile(profile_path):
        raise InjectionError("nvidia-container-cli: initialization error: nvml error: driver not loaded "
                             + _missing(profile_path))
    if not os.path.isfile(smi):
        raise InjectionError("nvidia-container-cli: mount error: nvidia-smi: no such file or directory "
                             + _missing(smi))
    try:
        with open(profile_path, encoding="utf-8") as stream:
            gpus = json.load(stream).get("gpus")
    except (OSError, ValueError, AttributeError) as error:
        raise InjectionError("nvidia-container-cli: initialization error: nvml error: unknown error "
                             f"({STAND_IN}: cannot read GPU profile {profile_path}: {error})") from None
    if not isinstance(gpus, list):
        raise InjectionError("nvidia-container-cli: initialization error: nvml error: unknown error "
                             f'({STAND_IN}: GPU profile {profile_path} has no "gpus" list)')
    return gpus


def check_requested_devices(value: str, gpus: list[dict]) -> None:
    """Rejects device indexes or UUIDs the host does not have, as the real CLI does."""
    if value.strip().lower() == "all":
        return
    uuids = {str(gpu.get("uuid", "")).lower() for gpu in gpus if isinstance(gpu, dict)}
    for token in (token.strip() for token in value.split(",")):
        known = (token.isdigit() and int(token) < len(gpus)) or token.lower() in uuids
        if token and not known:
            raise InjectionError(f"nvidia-container-cli: device error: {token}: unknown device")


def add_driver_mounts(spec: dict, files: list[tuple[str, str]]) -> dict:
    """Returns the spec with read-only bind mounts of the driver files (each destination once)."""
    updated = dict(spec)
    mounts = [mount for mount in spec.get("mounts") or []]
    present = {mount.get("destination") for mount in mounts if isinstance(mount, dict)}
    for source, destination in files:
        if destination not in present:
            mounts.append({"destination": destination, "type": "bind", "source": source,
                           "options": list(MOUNT_OPTIONS)})
    updated["mounts"] = mounts
    return updated


def read_spec(bundle: str) -> dict:
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, encoding="utf-8") as stream:
            spec = json.load(stream)
    except (OSError, ValueError) as error:
        raise InjectionError(f"nvidia-container-runtime: cannot read OCI spec {path}: {error}") from None
    if not isinstance(spec, dict):
        raise InjectionError(f"nvidia-container-runtime: OCI spec {path} is not a JSON object")
    return spec


def write_spec(bundle: str, spec: dict) -> None:
    path = os.path.join(bundle, "config.json")
    mode = os.stat(path).st_mode & 0o7777
    handle, temporary = tempfile.mkstemp(prefix=".config.json.", dir=bundle)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(spec, stream)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def modify_bundle(bundle: str, environ: Mapping[str, str]) -> bool:
    """Injects the driver into the bundle when its container asks for GPUs; True when it did."""
    spec = read_spec(bundle)
    environment = container_env(spec)
    if not wants_gpus(environment):
        return False
    files = driver_files(environ)
    check_requested_devices(environment["NVIDIA_VISIBLE_DEVICES"], check_driver(files))
    write_spec(bundle, add_driver_mounts(spec, files))
    return True


def exec_runc(args: Sequence[str], environ: Mapping[str, str]) -> None:
    runc = shutil.which("runc", path=environ.get("PATH"))
    if runc is None:
        search_path = environ.get("PATH", "")
        raise InjectionError(f"nvidia-container-runtime: runc not found on PATH ({search_path}); install runc")
    os.execve(runc, ["runc", *args], dict(environ))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        if args[:1] == ["--version"]:
            sys.stdout.write(f"NVIDIA Container Runtime version {TOOLKIT_VERSION}\ncommit: {STAND_IN}\nspec: 1.2.0\n\n")
            sys.stdout.flush()
        bundle = find_create_bundle(args, os.getcwd())
        if bundle is not None:
            modify_bundle(bundle, os.environ)
        exec_runc(args, os.environ)
    except InjectionError as error:
        sys.stderr.write(f"{error}\n")
        return 1
    return 0  # not reached: execve replaced this process


if __name__ == "__main__":
    sys.exit(main())
