"""lpfleet-lab stand-in for ``nvidia-smi``: reports the GPUs of a lab GPU profile.

Installed as /usr/bin/nvidia-smi (with a ``#!/usr/bin/env python3`` line added by
lab/driver/install.sh). It reads the same profile as the NVML stand-in
(LPFLEET_LAB_GPU_PROFILE, default /etc/lpfleet-lab/gpus.json) and applies the same
device selection (NVIDIA_VISIBLE_DEVICES, then CUDA_VISIBLE_DEVICES).
Python 3.8+ and the standard library only: it also runs inside containers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence

DEFAULT_PROFILE_PATH = "/etc/lpfleet-lab/gpus.json"
STAND_IN = "lpfleet-lab stand-in"

EXIT_INVALID_ARGUMENT = 2
EXIT_NOT_FOUND = 6
EXIT_DRIVER_NOT_LOADED = 9
EXIT_OTHER = 255

DRIVER_NOT_LOADED_MESSAGE = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running."
)
NO_DEVICES_MESSAGE = "No devices were found"

REQUIRED_GPU_KEYS = (
    "index", "uuid", "name", "memory_total_mib", "memory_used_mib", "compute_capability", "pci_bus_id",
)
OPTIONAL_GPU_DEFAULTS = {
    "temperature_c": 35, "power_draw_w": 20, "power_limit_w": 250,
    "utilization_gpu_pct": 0, "utilization_memory_pct": 0,
}
MAJOR_MINOR = re.compile(r"^\d{1,3}\.\d{1,3}$")
PCI_BUS_ID = re.compile(r"^[0-9A-Fa-f]{1,8}:[0-9A-Fa-f]{1,2}:[0-9A-Fa-f]{1,2}\.[0-9A-Fa-f]$")

class ProfileError(Exception):
    """The GPU profile exists but cannot be used."""


class UsageError(Exception):
    """Bad command line: reported like the real tool, exit code 2."""


# --------------------------------------------------------------------------- profile


def profile_path(environ: Mapping[str, str]) -> str:
    return environ.get("LPFLEET_LAB_GPU_PROFILE") or DEFAULT_PROFILE_PATH


def _check_gpu(position: int, gpu: object) -> dict:
    where = f"gpus[{position}]"
    if not isinstance(gpu, dict):
        raise ProfileError(f"{where} must be an object")
    missing = [key for key in REQUIRED_GPU_KEYS if key not in gpu]
    if missing:
        raise ProfileError(f"{where} lacks {', '.join(missing)}")
    for key in ("index", "memory_total_mib", "memory_used_mib"):
        value = gpu[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ProfileError(f"{where}.{key} must be a non-negative integer, got {value!r}")
    if gpu["index"] != position:
        raise ProfileError(f"{where}.index must be {position} (list GPUs in index order)")
    if gpu["memory_total_mib"] == 0 or gpu["memory_used_mib"] > gpu["memory_total_mib"]:
        raise ProfileError(f"{where}: need 0 <= memory_used_mib <= memory_total_mib and memory_total_mib > 0")
    if not str(gpu["uuid"]).startswith("GPU-"):
        raise ProfileError(f"{where}.uuid must start with GPU-, got {gpu['uuid']!r}")
    if not MAJOR_MINOR.match(str(gpu["compute_capability"])):
        raise ProfileError(f'{where}.compute_capability must look like "8.9", got {gpu["compute_capability"]!r}')
    if not PCI_BUS_ID.match(str(gpu["pci_bus_id"])):
        raise ProfileError(f'{where}.pci_bus_id must look like "00000000:01:00.0", got {gpu["pci_bus_id"]!r}')
    checked = dict(OPTIONAL_GPU_DEFAULTS)
    checked.update(gpu)
    return checked


def parse_profile(document: object) -> tuple[dict, list[dict]]:
    """Validates a decoded profile; returns (host fields, GPUs in index order)."""
    if not isinstance(document, dict):
        raise ProfileError("the profile must be a JSON object")
    if not document.get("driver_version"):
        raise ProfileError('"driver_version" is missing or empty')
    if not MAJOR_MINOR.match(str(document.get("cuda_version", ""))):
        raise ProfileError('"cuda_version" is missing or does not look like "12.4"')
    gpus = document.get("gpus")
    if not isinstance(gpus, list):
        raise ProfileError('"gpus" is missing or not a list')
    host = {"driver_version": str(document["driver_version"]), "cuda_version": str(document["cuda_version"])}
    return host, [_check_gpu(position, gpu) for position, gpu in enumerate(gpus)]


def load_profile(path: str) -> tuple[dict, list[dict]]:
    """Reads the profile; FileNotFoundError means no driver on this host."""
    with open(path, encoding="utf-8") as stream:
        try:
            document = json.load(stream)
        except ValueError as error:
            raise ProfileError(f"not valid JSON: {error}") from None
    return parse_profile(document)


# --------------------------------------------------------------------------- device selection


def _token_selects(token: str, gpu: dict, position: int) -> bool:
    if token.isdigit():
        return int(token) == position
    return token.lower() == str(gpu["uuid"]).lower()


def select_devices(gpus: list[dict], value: str | None, empty_means_none: bool) -> list[dict]:
    """Applies one *_VISIBLE_DEVICES value: indexes and UUIDs, kept in index order."""
    if value is None:
        return gpus
    value = value.strip()
    if not value:
        return [] if empty_means_none else gpus
    if value.lower() == "all":
        return gpus
    if value.lower() in ("none", "void"):
        return []
    tokens = [token.strip() for token in value.split(",") if token.strip()]
    return [gpu for position, gpu in enumerate(gpus) if any(_token_selects(t, gpu, position) for t in tokens)]


def visible_gpus(gpus: list[dict], environ: Mapping[str, str]) -> list[dict]:
    """The GPUs NVML shows under this environment, renumbered from 0 (minor numbers stay)."""
    selected = select_devices(gpus, environ.get("NVIDIA_VISIBLE_DEVICES"), empty_means_none=False)
    selected = select_devices(selected, environ.get("CUDA_VISIBLE_DEVICES"), empty_means_none=True)
    renumbered = []
    for position, gpu in enumerate(selected):
        copy = dict(gpu)
        copy["minor_number"] = gpu["index"]
        copy["index"] = position
        renumbered.append(copy)
    return renumbered


def _normal_bus_id(text: str) -> tuple[int, ...] | None:
    if not PCI_BUS_ID.match(text):
        return None
    domain, bus, rest = text.split(":")
    device, function = rest.split(".")
    return tuple(int(part, 16) for part in (domain, bus, device, function))


def select_ids(gpus: list[dict], ids: str) -> list[dict]:
    """Applies ``-i/--id``: indexes, UUIDs or PCI bus ids, comma-separated."""
    tokens = [token.strip() for token in ids.split(",") if token.strip()]
    chosen = []
    for gpu in gpus:
        bus = _normal_bus_id(str(gpu["pci_bus_id"]))
        for token in tokens:
            if (token.isdigit() and int(token) == gpu["index"]) or token.lower() == str(gpu["uuid"]).lower() \
                    or (bus is not None and _normal_bus_id(token) == bus):
                chosen.append(gpu)
                break
    return chosen


# --------------------------------------------------------------------------- --query-gpu


def _memory_free(gpu: dict) -> int:
    return int(gpu["memory_total_mib"]) - int(gpu["memory_used_mib"])


def _bus_id(gpu: dict) -> str:
    domain, bus, device, function = _normal_bus_id(str(gpu["pci_bus_id"])) or (0, 0, 0, 0)
    return f"{domain:08X}:{bus:02X}:{device:02X}.{function:X}"


# name -> (unit shown in headers and values, value getter); the getter gets (gpu, host, gpu count)
QUERY_FIELDS: dict[str, tuple[str, Callable[[dict, dict, int], str]]] = {
    "index": ("", lambda gpu, host, count: str(gpu["index"])),
    "count": ("", lambda gpu, host, count: str(count)),
    "uuid": ("", lambda gpu, host, count: str(gpu["uuid"])),
    "name": ("", lambda gpu, host, count: str(gpu["name"])),
    "pci.bus_id": ("", lambda gpu, host, count: _bus_id(gpu)),
    "driver_version": ("", lambda gpu, host, count: host["driver_version"]),
    "compute_cap": ("", lambda gpu, host, count: str(gpu["compute_capability"])),
    "memory.total": ("MiB", lambda gpu, host, count: str(gpu["memory_total_mib"])),
    "memory.used": ("MiB", lambda gpu, host, count: str(gpu["memory_used_mib"])),
    "memory.free": ("MiB", lambda gpu, host, count: str(_memory_free(gpu))),
    "temperature.gpu": ("", lambda gpu, host, count: str(gpu["temperature_c"])),
    "utilization.gpu": ("%", lambda gpu, host, count: str(gpu["utilization_gpu_pct"])),
    "utilization.memory": ("%", lambda gpu, host, count: str(gpu["utilization_memory_pct"])),
    "power.draw": ("W", lambda gpu, host, count: f"{gpu['power_draw_w']:.2f}"),
    "power.limit": ("W", lambda gpu, host, count: f"{gpu['power_limit_w']:.2f}"),
}
FIELD_ALIASES = {"gpu_name": "name", "gpu_uuid": "uuid", "gpu_bus_id": "pci.bus_id"}
FORMAT_OPTIONS = ("csv", "noheader", "nounits")


def parse_query_fields(text: str) -> list[str]:
    fields = []
    for raw in text.split(","):
        name = raw.strip()
        canonical = FIELD_ALIASES.get(name, name)
        if canonical not in QUERY_FIELDS:
            raise UsageError(f'Field "{name}" is not a valid field to query.')
        fields.append(canonical)
    return fields


def parse_format(text: str | None) -> tuple[bool, bool]:
    """Returns (header, units) for ``--format``; csv is required."""
    if not text:
        raise UsageError('"--format" is required with --query-gpu, e.g. --format=csv,noheader,nounits')
    options = [option.strip() for option in text.split(",")]
    for option in options:
        if option not in FORMAT_OPTIONS:
            raise UsageError(f'"{option}" is not a valid format option.')
    if "csv" not in options:
        raise UsageError('"--format" must include csv.')
    return "noheader" not in options, "nounits" not in options


def format_query(host: dict, gpus: list[dict], fields: Sequence[str], header: bool, units: bool) -> str:
    lines = []
    if header:
        labels = []
        for name in fields:
            unit = QUERY_FIELDS[name][0]
            labels.append(f"{name} [{unit}]" if unit else name)
        lines.append(", ".join(labels))
    for gpu in gpus:
        values = []
        for name in fields:
            unit, getter = QUERY_FIELDS[name]
            value = getter(gpu, host, len(gpus))
            values.append(f"{value} {unit}" if unit and units else value)
        lines.append(", ".join(values))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- other views

TABLE_WIDTH = 91


def _boxed(text: str) -> str:
    return "| " + text.ljust(TABLE_WIDTH - 4) + " |"


def _cells(first: str, second: str, third: str) -> str:
    return f"| {first.rjust(39)} | {second.rjust(22)} | {third.rjust(20)} |"


def render_table(host: dict, gpus: list[dict], now: float) -> str:
    driver = host["driver_version"]
    rule = "+" + "-" * (TABLE_WIDTH - 2) + "+"
    grid = "+" + "+".join("-" * width for width in (41, 24, 22)) + "+"
    lines = [
        time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(now)) + f"       ({STAND_IN})",
        rule,
        _boxed(f"NVIDIA-SMI {driver:<22} Driver Version: {driver:<14} CUDA Version: {host['cuda_version']:<8}"),
        "|" + grid[1:],
        "| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |",
        "| Fan  Temp   Perf          Pwr:Usage/Cap |           Memory-Usage | GPU-Util  Compute M. |",
        "|                                         |                        |               MIG M. |",
        "|" + "+".join("=" * width for width in (41, 24, 22)) + "|",
    ]
    for gpu in gpus:
        name = str(gpu["name"])[:30]
        lines.append(_cells(f"{gpu['index']:>3}  {name:<30} Off", f"{_bus_id(gpu)} Off", "Off"))
        power = f"{gpu['power_draw_w']}W / {gpu['power_limit_w']:>4}W"
        memory = f"{gpu['memory_used_mib']}MiB / {gpu['memory_total_mib']:>6}MiB"
        utilization = f"{gpu['utilization_gpu_pct']:>6}%      Default"
        lines.append(_cells(f" 0%  {gpu['temperature_c']:>3}C    P8 {power:>23}", memory, utilization))
        lines.append(_cells("", "", "N/A"))
        lines.append(grid)
    lines += [
        " " * TABLE_WIDTH,
        rule,
        _boxed("Processes:"),
        _boxed(" GPU   GI   CI        PID   Type   Process name                              GPU Memory"),
        _boxed("       ID   ID                                                               Usage"),
        "|" + "=" * (TABLE_WIDTH - 2) + "|",
        _boxed(" No running processes found"),
        rule,
    ]
    return "\n".join(lines) + "\n"


def render_list(gpus: list[dict]) -> str:
    return "".join(f"GPU {gpu['index']}: {gpu['name']} (UUID: {gpu['uuid']})\n" for gpu in gpus)


def render_version(host: dict) -> str:
    driver = host["driver_version"]
    nvml = ".".join(driver.split(".")[:2])
    return (
        f"NVIDIA-SMI version  : {driver} ({STAND_IN})\n"
        f"NVML version        : {nvml}\n"
        f"DRIVER version      : {driver}\n"
        f"CUDA Version        : {host['cuda_version']}\n"
    )


def render_query_help() -> str:
    names = "\n".join(f'"{name}"' for name in sorted(QUERY_FIELDS) + sorted(FIELD_ALIASES))
    return f'List of valid properties to query for the switch "--query-gpu=" ({STAND_IN}):\n\n{names}\n'


# --------------------------------------------------------------------------- command line


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError("Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nvidia-smi", add_help=False,
                     description=f"NVIDIA System Management Interface ({STAND_IN})")
    parser.add_argument("-h", "--help", action="store_true", help="print this help")
    parser.add_argument("--version", action="store_true", help="print the driver and CUDA versions")
    parser.add_argument("-L", "--list-gpus", action="store_true", help="list GPUs with their UUIDs")
    parser.add_argument("-i", "--id", help="target GPUs: indexes, UUIDs or PCI bus ids, comma-separated")
    parser.add_argument("--query-gpu", help="comma-separated fields; see --help-query-gpu")
    parser.add_argument("--format", help="csv[,noheader][,nounits]")
    parser.add_argument("--help-query-gpu", action="store_true", help="list the fields --query-gpu accepts")
    return parser


def _output(args: argparse.Namespace, host: dict, gpus: list[dict]) -> str:
    if args.version:
        return render_version(host)
    if args.query_gpu is not None:
        fields = parse_query_fields(args.query_gpu)
        header, units = parse_format(args.format)
        return format_query(host, gpus, fields, header, units)
    if args.list_gpus:
        return render_list(gpus)
    return render_table(host, gpus, time.time())


def run(argv: Sequence[str], environ: Mapping[str, str]) -> tuple[int, str]:
    """Returns (exit code, text for standard output), as the real tool prints errors there too."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
        if args.help:
            return 0, parser.format_help()
        if args.help_query_gpu:
            return 0, render_query_help()
        if args.query_gpu is not None:
            parse_query_fields(args.query_gpu)  # field errors come before driver errors, as in the real tool
        path = profile_path(environ)
        try:
            host, all_gpus = load_profile(path)
        except FileNotFoundError:
            return EXIT_DRIVER_NOT_LOADED, DRIVER_NOT_LOADED_MESSAGE + "\n\n"
        except (OSError, ProfileError) as error:
            return EXIT_OTHER, f"nvidia-smi ({STAND_IN}): invalid GPU profile {path}: {error}\n"
        gpus = visible_gpus(all_gpus, environ)
        if args.id is not None:
            gpus = select_ids(gpus, args.id)
        if not gpus and not args.version:
            return EXIT_NOT_FOUND, NO_DEVICES_MESSAGE + "\n"
        return 0, _output(args, host, gpus)
    except UsageError as error:
        return EXIT_INVALID_ARGUMENT, f"{error}\n\n"


def main() -> int:
    code, text = run(sys.argv[1:], os.environ)
    sys.stdout.write(text)
    return code


if __name__ == "__main__":
    sys.exit(main())
