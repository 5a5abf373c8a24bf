# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""Sites and their cache hosts (roles/site_cache, roles/ollama_models' site.yml, roles/docker_engine).

Each filter of this file is documented beside it: site_cache.yml, site_cache_outcome.yml,
site_registry_mirrors.yml and with_registry_mirrors.yml."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

DEFAULT_PORT = 11480


def _site_of(variables: Mapping[str, Any]) -> str:
    site = variables.get("lpfleet_site") or ""
    if not isinstance(site, str):
        raise AnsibleFilterError("site_cache: lpfleet_site must be a string, got %r" % (site,))
    return site.strip()


def _cache_url(name: str, variables: Mapping[str, Any]) -> str:
    address = variables.get("lpfleet_site_cache_address") or variables.get("ansible_host") or name
    port = variables.get("lpfleet_site_cache_port") or DEFAULT_PORT
    if ":" in str(address) and not str(address).startswith("["):
        address = "[%s]" % address
    return "http://%s:%s" % (address, port)


def site_cache(host: str, hostvars: Mapping[str, Any], hosts: list[str]) -> dict[str, Any]:
    """The filter: see DOCUMENTATION."""
    mine = hostvars[host]
    site = _site_of(mine)
    off = {"mode": "off", "site": site, "cache_host": "", "cache_url": "", "members": [host] if site else [],
           "problem": ""}
    if not site:
        return off
    members = [name for name in hosts if name in hostvars and _site_of(hostvars[name]) == site]
    if host not in members:
        members.append(host)
    if len(members) < 2:
        return off
    cache_host = mine.get("lpfleet_site_cache_host") or members[0]
    if cache_host not in members:
        return dict(off, members=members, problem=(
            "lpfleet_site_cache_host=%r is not a host of the site %r (its hosts: %s); fix: name one of them, or "
            "leave it unset for the site's first host" % (cache_host, site, ", ".join(members))))
    return {"mode": "cache" if cache_host == host else "member", "site": site, "cache_host": cache_host,
            "cache_url": _cache_url(cache_host, hostvars[cache_host]), "members": members, "problem": ""}


DEFAULT_REGISTRY_PORT = 5000


def site_registry_mirrors(host: str, hostvars: Mapping[str, Any], hosts: list[str]) -> list[str]:
    """The filter: see site_registry_mirrors.yml."""
    part = site_cache(host, hostvars, hosts)
    if part["mode"] != "member" or part["problem"]:
        return []
    cache_vars = hostvars[part["cache_host"]]
    if not _flag(hostvars[host].get("lpfleet_site_registry_mirror"), "lpfleet_site_registry_mirror"):
        return []
    address = cache_vars.get("lpfleet_site_cache_address") or cache_vars.get("ansible_host") or part["cache_host"]
    if ":" in str(address) and not str(address).startswith("["):
        address = "[%s]" % address
    port = cache_vars.get("lpfleet_site_registry_port") or DEFAULT_REGISTRY_PORT
    return ["http://%s:%s" % (address, port)]


def _flag(value: Any, name: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0", ""):
        return value.lower() in ("true", "yes", "on", "1")
    raise AnsibleFilterError("site_registry_mirrors: %s must be true or false, got %r" % (name, value))


def with_registry_mirrors(options: Mapping[str, Any], mirrors: list[str]) -> dict[str, Any]:
    """The filter: see with_registry_mirrors.yml."""
    if not isinstance(options, Mapping):
        raise AnsibleFilterError("with_registry_mirrors: expected daemon.json options (a mapping), got %r" % (options,))
    if not isinstance(mirrors, list) or not all(isinstance(url, str) for url in mirrors):
        raise AnsibleFilterError("with_registry_mirrors: expected a list of mirror URLs, got %r" % (mirrors,))
    if not mirrors:
        return dict(options)
    own = options.get("registry-mirrors") or []
    return {**options, "registry-mirrors": list(dict.fromkeys([*mirrors, *own]))}


def _pull_problem(pull: Mapping[str, Any]) -> str:
    if pull.get("unreachable"):
        return "the cache host could not be reached (%s)" % (pull.get("msg") or "unreachable")
    if pull.get("failed") or pull.get("rc"):
        return "the cache host's pull failed (%s)" % (pull.get("msg") or "no message")
    return ""


def site_cache_outcome(copies: list[Mapping[str, Any]], pulls: list[Mapping[str, Any]],
                       part: Mapping[str, Any]) -> dict[str, Any]:
    """The filter: see site_cache_outcome.yml."""
    pull_of = {pull.get("item"): pull for pull in pulls or []}
    outcome: dict[str, Any] = {"site": part.get("site", ""), "cache_host": part.get("cache_host", ""),
                               "copied": [], "local": [], "fallback": [], "bytes_copied": 0}
    for copy in copies or []:
        model = copy.get("item")
        if copy.get("fallback"):
            reasons = [_pull_problem(pull_of.get(model, {})), copy.get("reason", "")]
            outcome["fallback"].append({"model": model, "reason": "; ".join(r for r in reasons if r)})
        elif copy.get("source") == "site-cache":
            outcome["copied"].append(model)
            outcome["bytes_copied"] += int(copy.get("bytes_copied") or 0)
        else:
            outcome["local"].append(model)
    fallback = outcome["fallback"]
    outcome["message"] = (
        "%s from upstream: the site %s's cache host %s could not give %s"
        % (", ".join(item["model"] for item in fallback), outcome["site"], outcome["cache_host"],
           " | ".join("%s (%s)" % (item["model"], item["reason"]) for item in fallback))
        if fallback else "")
    return outcome


class FilterModule:
    """Sites and their cache hosts."""

    def filters(self) -> dict[str, Any]:
        return {"site_cache": site_cache, "site_cache_outcome": site_cache_outcome,
                "site_registry_mirrors": site_registry_mirrors, "with_registry_mirrors": with_registry_mirrors}
