# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""Preflight's disk check: which planned models are still to download, how many MB they take, and what the
filesystem holding Docker's data root has free."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ansible_collections.lpfleet.ai.plugins.module_utils.ollama_names import name_key


def mount_of(path: str, mounts: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The mount (from ansible_facts.mounts) whose mount point holds PATH: the longest that is a prefix of it."""
    holding = [mount for mount in mounts
               if (path.rstrip("/") + "/").startswith(str(mount.get("mount", "")).rstrip("/") + "/")]
    return max(holding, key=lambda mount: len(str(mount["mount"])), default=None)


def download_sizes(plan: Mapping[str, Any]) -> dict[str, int]:
    """The plan's tags with their download size in MB (0 when the plan does not know it)."""
    sizes: dict[str, int] = {}
    for stack in plan.get("stacks") or []:
        for model in stack.get("models") or []:
            sizes.setdefault(model["ollama_tag"], int(model.get("download_mb") or 0))
    return sizes


def disk_need(plan: Mapping[str, Any], present: Sequence[str], mounts: Sequence[Mapping[str, Any]],
              data_root: str, margin_mb: int) -> dict[str, Any]:
    """What the disk check decides. PRESENT: the planned tags whose manifest is already in the volume."""
    have = {name_key(tag) for tag in present}
    sizes = download_sizes(plan)
    missing = [tag for tag in plan.get("ollama_tags") or [] if name_key(tag) not in have]
    download_mb = sum(sizes.get(tag, 0) for tag in missing)
    mount = mount_of(data_root, mounts)
    free_mb = int((mount or {}).get("size_available", 0) / 1000000)
    needed_mb = download_mb + int(margin_mb)
    return {"missing": missing, "download_mb": download_mb, "needed_mb": needed_mb, "mount": mount,
            "free_mb": free_mb, "ok": mount is not None and free_mb >= needed_mb}
