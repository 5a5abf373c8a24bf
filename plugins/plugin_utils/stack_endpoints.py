# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""Where the host reaches the Ollama and runner containers lpfleet runs now, from what Docker reports."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ansible_collections.lpfleet.ai.plugins.plugin_utils.planner import host_address

KEYS = {"ollama": "ollama", "runner": "runners"}


def _endpoint(container: Mapping[str, Any]) -> dict[str, str] | None:
    """The container's name and the URL of its first published port; None when it publishes none."""
    ports = [port for port in container.get("Ports") or [] if port.get("PublicPort") is not None]
    if not ports:
        return None
    address = ports[0].get("IP") or ""
    return {"container": container["Names"][0].lstrip("/"),
            "url": "http://%s:%s" % (host_address(address), ports[0]["PublicPort"])}


def endpoints(results: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, str]]]:
    """docker_host_info's results looped over the services (ollama, runner) -> {ollama: [...], runners: [...]},
    each a list of {container, url} sorted by container name."""
    found: dict[str, list[dict[str, str]]] = {"ollama": [], "runners": []}
    for result in results:
        key = KEYS[result["item"]]
        for container in sorted(result.get("containers") or [], key=lambda container: container["Names"]):
            endpoint = _endpoint(container)
            if endpoint is not None:
                found[key].append(endpoint)
    return found
