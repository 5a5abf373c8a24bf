#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
module: gpu_facts
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.1.0"
short_description: The host's NVIDIA GPUs as facts
description:
  - Sets C(lpfleet_gpus), one item per GPU ordered by index (C(index), C(uuid), C(name), C(memory_total_mib),
    C(memory_free_mib), C(driver_version), C(cuda_version), C(compute_capability)), and C(lpfleet_gpu_summary)
    (C(count), C(total_memory_mib), C(driver_version), C(cuda_version), C(source)).
  - Reads NVML through the C(pynvml) module (package C(nvidia-ml-py)) when it imports on the host, otherwise
    runs C(nvidia-smi --query-gpu ... --format=csv,noheader,nounits).
  - Without an NVIDIA driver the task fails naming what is missing, or, with O(missing_driver=empty), returns an
    empty list. Output it cannot read always fails, quoting the line.
options:
  method:
    description: C(nvml) uses only C(pynvml), C(nvidia_smi) only the command, C(auto) NVML first, then the command.
    type: str
    default: auto
    choices: [auto, nvml, nvidia_smi]
  nvidia_smi_path:
    description: The C(nvidia-smi) command, a name looked up on the PATH or an absolute path.
    type: str
    default: nvidia-smi
  missing_driver:
    description: What to do when there is no driver (no NVML library, no C(nvidia-smi), or a driver that is not
      loaded). C(fail) fails the task; C(empty) returns no GPU.
    type: str
    default: fail
    choices: [fail, empty]
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  facts:
    support: full
  platform:
    platforms: posix
notes:
  - C(memory_total_mib) is what NVML reports (24564 MiB for an RTX 4090), not the marketing size.
"""

EXAMPLES = r"""
- name: Read the GPUs
  lpfleet.ai.gpu_facts:

- name: Read the GPUs on hosts that may have none yet
  lpfleet.ai.gpu_facts:
    missing_driver: empty

- name: Show them
  ansible.builtin.debug:
    msg: "{{ (lpfleet_gpus | lpfleet.ai.gpu_table).splitlines() }}"
"""

RETURN = r"""
ansible_facts:
  description: The facts.
  returned: always
  type: complex
  contains:
    lpfleet_gpus:
      description: One item per GPU, by index.
      returned: always
      type: list
      elements: dict
      sample:
        - index: 0
          uuid: GPU-6b1f8a2e-3c4d-4e6f-9a8b-9c0d1e2f3a4b
          name: NVIDIA GeForce RTX 4090
          memory_total_mib: 24564
          memory_free_mib: 24080
          driver_version: "550.54.14"
          cuda_version: "12.4"
          compute_capability: "8.9"
    lpfleet_gpu_summary:
      description: C(count), C(total_memory_mib), C(driver_version), C(cuda_version) and C(source)
        (C(nvml), C(nvidia-smi), or C(none) when O(missing_driver=empty) found no driver).
      returned: always
      type: dict
      sample: {count: 2, total_memory_mib: 32756, driver_version: "550.54.14", cuda_version: "12.4", source: nvml}
"""

import csv
import os
import re
from typing import Any

from ansible.module_utils.basic import AnsibleModule

QUERY_FIELDS = ("index", "uuid", "name", "memory.total", "memory.free", "driver_version", "compute_cap")
NOT_AVAILABLE = ("[N/A]", "[Not Supported]", "N/A", "")
_CUDA_VERSION = re.compile(r"CUDA Version\s*:\s*([0-9][0-9.]*)")
_NO_DRIVER_HINTS = ("couldn't communicate with the nvidia driver", "driver not loaded", "nvml: driver/library")
_BYTES_PER_MIB = 1024 * 1024

INSTALL_DRIVER = ("install the NVIDIA driver for this GPU (Debian: the nvidia-driver package from non-free), "
                  "reboot, and check that nvidia-smi lists the GPU")


class DriverMissing(Exception):
    """No NVIDIA driver to ask (the message says what is missing)."""


class GpuReadError(Exception):
    """The driver answered something lpfleet cannot read."""


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _cuda_from_nvml(version: int) -> str:
    """NVML gives the CUDA driver version as 1000 * major + 10 * minor (12040 is 12.4)."""
    return "%d.%d" % (version // 1000, (version % 1000) // 10)


def read_with_nvml() -> list[dict[str, Any]]:
    """The GPUs through NVML. ImportError when pynvml is absent, DriverMissing when NVML cannot start."""
    import pynvml  # imported here: the host may not have it, and nvidia-smi is the fallback

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise DriverMissing("NVML could not start (%s)" % exc) from exc
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        cuda = _cuda_from_nvml(pynvml.nvmlSystemGetCudaDriverVersion())
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            gpus.append({
                "index": index,
                "uuid": _text(pynvml.nvmlDeviceGetUUID(handle)),
                "name": _text(pynvml.nvmlDeviceGetName(handle)),
                "memory_total_mib": int(memory.total) // _BYTES_PER_MIB,
                "memory_free_mib": int(memory.free) // _BYTES_PER_MIB,
                "driver_version": driver,
                "cuda_version": cuda,
                "compute_capability": "%d.%d" % (major, minor),
            })
        return gpus
    except pynvml.NVMLError as exc:
        raise GpuReadError("NVML failed while reading the GPUs: %s" % exc) from exc
    finally:
        pynvml.nvmlShutdown()


def find_nvidia_smi(module: AnsibleModule, configured: str) -> str:
    if os.path.isabs(configured):
        if os.access(configured, os.X_OK):
            return configured
        raise DriverMissing("%s does not exist or is not executable" % configured)
    found = module.get_bin_path(configured)
    if not found:
        raise DriverMissing("%s is not on the PATH (%s)" % (configured, os.environ.get("PATH", "")))
    return found


def run_query(module: AnsibleModule, command: str, fields: tuple[str, ...]) -> tuple[int, str, str]:
    return module.run_command([command, "--query-gpu=" + ",".join(fields), "--format=csv,noheader,nounits"])


def read_with_nvidia_smi(module: AnsibleModule, configured: str) -> list[dict[str, Any]]:
    command = find_nvidia_smi(module, configured)
    fields = QUERY_FIELDS
    rc, out, err = run_query(module, command, fields)
    if rc != 0 and "compute_cap" in (out + err):  # drivers before 510 lack the compute_cap field
        fields = QUERY_FIELDS[:-1]
        rc, out, err = run_query(module, command, fields)
    said = (err.strip() or out.strip() or "no output")
    if rc != 0:
        if "no devices were found" in said.lower():
            return []
        if any(hint in said.lower() for hint in _NO_DRIVER_HINTS):
            raise DriverMissing("%s cannot reach the driver: %s" % (command, said))
        raise GpuReadError("%s --query-gpu failed (rc=%d): %s" % (command, rc, said))
    cuda = read_cuda_version(module, command)
    return [parse_query_line(line, fields, cuda, command) for line in out.splitlines() if line.strip()]


def read_cuda_version(module: AnsibleModule, command: str) -> str | None:
    """nvidia-smi has no query field for the CUDA version; the header of its plain output has it. None when absent."""
    rc, out, _err = module.run_command([command])
    match = _CUDA_VERSION.search(out) if rc == 0 else None
    return match.group(1) if match else None


def _number(raw: str, field: str, line: str, command: str, optional: bool) -> int | None:
    if optional and raw in NOT_AVAILABLE:
        return None
    try:
        return int(float(raw))
    except ValueError:
        raise GpuReadError("%s printed %r for %s in the line %r; expected a number. Fix: check the driver with "
                           "'%s --query-gpu=%s --format=csv,noheader,nounits'."
                           % (command, raw, field, line, command, ",".join(QUERY_FIELDS))) from None


def parse_query_line(line: str, fields: tuple[str, ...], cuda: str | None, command: str) -> dict[str, Any]:
    values = [value.strip() for value in next(csv.reader([line], skipinitialspace=True))]
    if len(values) != len(fields):
        raise GpuReadError("%s printed a line lpfleet cannot read: %r (expected %d comma-separated fields: %s)."
                           % (command, line, len(fields), ", ".join(fields)))
    row = dict(zip(fields, values))
    compute = row.get("compute_cap")
    return {
        "index": _number(row["index"], "index", line, command, optional=False),
        "uuid": row["uuid"],
        "name": row["name"],
        "memory_total_mib": _number(row["memory.total"], "memory.total", line, command, optional=False),
        "memory_free_mib": _number(row["memory.free"], "memory.free", line, command, optional=True),
        "driver_version": row["driver_version"],
        "cuda_version": cuda,
        "compute_capability": None if compute in NOT_AVAILABLE else compute,
    }


def read_gpus(module: AnsibleModule) -> tuple[list[dict[str, Any]], str]:
    """The GPUs and where they came from; DriverMissing when neither way can reach a driver."""
    method = module.params["method"]
    reasons = []
    if method in ("auto", "nvml"):
        try:
            return read_with_nvml(), "nvml"
        except ImportError as exc:
            if method == "nvml":
                raise GpuReadError("method=nvml, but pynvml does not import on this host (%s). Fix: install the "
                                   "nvidia-ml-py package for the Python Ansible uses here, or use "
                                   "method=nvidia_smi." % exc) from exc
            reasons.append("pynvml does not import (%s)" % exc)
        except DriverMissing as exc:
            if method == "nvml":
                raise
            reasons.append(str(exc))
    try:
        return read_with_nvidia_smi(module, module.params["nvidia_smi_path"]), "nvidia-smi"
    except DriverMissing as exc:
        reasons.append(str(exc))
        raise DriverMissing("; ".join(reasons)) from exc


def summarise(gpus: list[dict[str, Any]], source: str) -> dict[str, Any]:
    first = gpus[0] if gpus else {}
    return {
        "count": len(gpus),
        "total_memory_mib": sum(gpu["memory_total_mib"] for gpu in gpus),
        "driver_version": first.get("driver_version"),
        "cuda_version": first.get("cuda_version"),
        "source": source,
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "method": {"type": "str", "default": "auto", "choices": ["auto", "nvml", "nvidia_smi"]},
            "nvidia_smi_path": {"type": "str", "default": "nvidia-smi"},
            "missing_driver": {"type": "str", "default": "fail", "choices": ["fail", "empty"]},
        },
        supports_check_mode=True,
    )
    try:
        gpus, source = read_gpus(module)
    except DriverMissing as exc:
        if module.params["missing_driver"] == "fail":
            module.fail_json(msg="no NVIDIA driver found on this host: %s. Fix: %s, or set missing_driver=empty "
                                 "to carry on without GPUs." % (exc, INSTALL_DRIVER))
        gpus, source = [], "none"
    except GpuReadError as exc:
        module.fail_json(msg=str(exc))
    gpus = sorted(gpus, key=lambda gpu: gpu["index"])
    module.exit_json(changed=False, ansible_facts={
        "lpfleet_gpus": gpus,
        "lpfleet_gpu_summary": summarise(gpus, source),
    })


if __name__ == "__main__":
    main()
