# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""The rules of each role's `checks` entry point, on the controller (lpfleet.ai.role_checks).

Each role's rules take the role's variables (templated; spec-checked types where the spec has them)
and return what is wrong, every problem at once, each naming the variable and the fix. The host's
name is added by the action. What must be read on the host (repository keys, installed packages,
the file aiModels.json) stays in the roles' `checks_host` tasks.

Rules kept elsewhere on purpose, so that each lives in one place: the planner checks the lpfleet_*
options and every menu key (Ollama tags included); the argument specs check types and choices.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ansible_collections.lpfleet.ai.plugins.filter.plain_http_problem import plain_http_problem

DOCKER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
COMPOSE_PROJECT = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
IP_ADDRESS = re.compile(r"^[0-9A-Fa-f.:]+$")
IMAGE = re.compile(r"^[a-z0-9][^\s]*$")
CAPABILITY = re.compile(r"^[A-Z][A-Z_]*[A-Z]$")
DEB_VERSION = re.compile(r"^([0-9][A-Za-z0-9.+~:-]*)?$")
ABSOLUTE_PATH = re.compile(r"^/\S+$")
# Ollama reads keep_alive as seconds or a Go duration.
KEEP_ALIVE = re.compile(r"^[+-]?([0-9]+(\.[0-9]+)?|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
LOOPBACK_ADDRESSES = ("127.0.0.1", "::1")
VOLUME_REMOVAL_CONFIRMATION = "yes, delete all models"
GO_LIVEPEER_LABEL = ("creator", "ai-worker")
# Shared variables a role's rules may read besides its own (when defined).
SHARED_VARIABLES = ("lpfleet_allow_plain_http", "lpfleet_plan", "lpfleet_runner_token")
# Further variables a role's rules read (preflight: the facts it gathered).
EXTRA_VARIABLES = {"preflight": ("ansible_facts",)}


@dataclass
class Findings:
    """What a role's rules found: problems stop the host, warnings are shown."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def shown(value: Any) -> str:
    """VALUE as the messages show it (JSON, as Ansible's to_json)."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def range_problem(name: str, value: Any, low: float, high: float, unit: str, kind: str = "whole") -> str | None:
    """Why VALUE is not a finite number from LOW to HIGH, or None. KIND words it: whole or finite."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or not low <= number <= high:
        return ("%s is %s; it must be a %s number from %s to %s (%s). Fix: set %s in that range, or remove it "
                "for the default." % (name, shown(value), kind, _number(low), _number(high), unit, name))
    return None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def ranges(raw: Mapping[str, Any], limits: list[tuple[str, float, float, str]], kind: str) -> list[str]:
    """The range problems of RAW (the values as given: "nan" is shown as written)."""
    found = (range_problem(name, raw.get(name), low, high, unit, kind) for name, low, high, unit in limits)
    return [problem for problem in found if problem]


# --- docker_engine -------------------------------------------------------------------------------


def docker_engine(values: Mapping[str, Any], raw: Mapping[str, Any]) -> Findings:
    findings = Findings()
    allow = bool(values.get("lpfleet_allow_plain_http", False))
    if values.get("docker_engine_source") == "docker":
        problem = plain_http_problem(values.get("docker_engine_docker_repo_url"), "docker_engine_docker_repo_url",
                                     allow, "https://download.docker.com/linux")
        if problem:
            findings.problems.append(problem)
    registries = plain_http_registries(values.get("docker_engine_daemon_options"))
    if registries and not allow:
        findings.problems.append(
            "docker_engine_daemon_options makes Docker pull over plain http from %s: anyone on the path can change "
            "the images. Fix: serve the registry over https, or set lpfleet_allow_plain_http: true if this network is "
            "trusted (a lab, a local mirror)." % ", ".join(registries))
    mirrors = plain_http_registries({"registry-mirrors": values.get("docker_engine_registry_mirrors") or []})
    if mirrors and not allow:
        findings.problems.append(
            "docker_engine_registry_mirrors (the site's registry mirror: lpfleet_site_registry_mirror) makes Docker "
            "pull over plain http from %s: anyone on the path can change the images. Fix: set "
            "lpfleet_allow_plain_http: true if the site's network is trusted, or lpfleet_site_registry_mirror: false."
            % ", ".join(mirrors))
    path = values.get("docker_engine_daemon_json_path")
    if not isinstance(path, str) or not ABSOLUTE_PATH.match(path):
        findings.problems.append(
            "docker_engine_daemon_json_path is %s. Fix: give Docker's configuration file as an absolute path, "
            "e.g. /etc/docker/daemon.json." % shown(path))
    return findings


def plain_http_registries(options: Any) -> list[str]:
    """The registries OPTIONS (daemon.json) makes Docker reach over plain http: insecure ones, http:// mirrors."""
    if not isinstance(options, Mapping):
        return []
    insecure = [str(name) for name in options.get("insecure-registries") or []]
    mirrors = [str(url) for url in options.get("registry-mirrors") or [] if str(url).startswith("http://")]
    return insecure + mirrors


# --- nvidia_container_toolkit --------------------------------------------------------------------


def nvidia_container_toolkit(values: Mapping[str, Any], raw: Mapping[str, Any]) -> Findings:
    findings = Findings()
    problem = plain_http_problem(values.get("nvidia_container_toolkit_repo_base_url"),
                                 "nvidia_container_toolkit_repo_base_url",
                                 bool(values.get("lpfleet_allow_plain_http", False)),
                                 "https://nvidia.github.io/libnvidia-container")
    if problem:
        findings.problems.append(problem)
    version = values.get("nvidia_container_toolkit_version")
    if not isinstance(version, str) or not DEB_VERSION.match(version):
        findings.problems.append(
            "nvidia_container_toolkit_version is %s, not a Debian package version. Fix: write it as apt spells it "
            "(e.g. 1.17.8-1), or \"\" for the newest." % shown(version))
    return findings


# --- livepeer_network ----------------------------------------------------------------------------


def livepeer_network(values: Mapping[str, Any], raw: Mapping[str, Any]) -> Findings:
    findings = Findings()
    confirmation = values.get("livepeer_network_confirm_volume_removal")
    if values.get("livepeer_network_ollama_volume_state") == "absent" and confirmation != VOLUME_REMOVAL_CONFIRMATION:
        findings.problems.append(
            "livepeer_network_ollama_volume_state is absent, which deletes the volume %s and every model in it, but "
            "livepeer_network_confirm_volume_removal is %s. Fix: set it to \"%s\" to delete them, or set "
            "livepeer_network_ollama_volume_state: present to keep them."
            % (values.get("livepeer_network_ollama_volume"), shown(confirmation), VOLUME_REMOVAL_CONFIRMATION))
    for name, example in (("livepeer_network_name", "livepeer-ai"), ("livepeer_network_ollama_volume", "ollama")):
        value = values.get(name)
        if not isinstance(value, str) or not DOCKER_NAME.match(value):
            findings.problems.append(
                "%s is %s, which Docker refuses as a name. Fix: use letters, digits, '_', '.' and '-' only, "
                "starting with a letter or digit (e.g. %s)." % (name, shown(value), example))
    return findings


# --- ollama_stack --------------------------------------------------------------------------------

STACK_RANGES = [
    ("ollama_stack_wait_timeout", 1, 86400, "seconds"),
    ("ollama_stack_warm_budget", 1, 86400, "seconds"),
    ("ollama_stack_up_retries", 0, 100, "retries"),
    ("ollama_stack_runner_container_port", 1, 65535, "a TCP port"),
    ("ollama_stack_ollama_container_port", 1, 65535, "a TCP port"),
]

# name, syntax, what to write instead
STACK_NAMES = [
    ("ollama_stack_project_name", COMPOSE_PROJECT, "lower-case letters, digits, '_' and '-', e.g. lpfleet-ollama"),
    ("ollama_stack_network", DOCKER_NAME, "a Docker network name, e.g. livepeer-ai"),
    ("ollama_stack_volume", DOCKER_NAME, "a Docker volume name, e.g. ollama"),
    ("ollama_stack_bind_address", IP_ADDRESS, "an IPv4 or IPv6 address, e.g. 127.0.0.1"),
    ("ollama_stack_ollama_image", IMAGE, "an image reference, e.g. ollama/ollama:0.12.6"),
    ("ollama_stack_runner_image", IMAGE, "an image reference, e.g. tztcloud/livepeer-ollama-runner:0.1.1"),
]


def ollama_stack(values: Mapping[str, Any], raw: Mapping[str, Any]) -> Findings:
    findings = Findings()
    findings.problems += _stack_secrets(values)
    findings.problems += _stack_exposure(values, findings.warnings)
    findings.warnings += [
        "%s is not pinned to a version tag; `latest` moves, and hosts will drift apart. Fix: set "
        "ollama_stack_ollama_image / ollama_stack_runner_image to a tag such as ollama/ollama:0.12.6." % image
        for image in (values.get("ollama_stack_ollama_image"), values.get("ollama_stack_runner_image"))
        if isinstance(image, str) and not is_pinned(image)]
    findings.problems += ranges(raw, STACK_RANGES, "whole")
    for name, syntax, fix in STACK_NAMES:
        value = values.get(name)
        if not isinstance(value, str) or not syntax.match(value):
            findings.problems.append("%s is %s, which compose refuses or misreads. Fix: write %s (no spaces, no "
                                     "control characters)." % (name, shown(value), fix))
    for name in ("ollama_stack_ollama_cap_add", "ollama_stack_runner_cap_add"):
        problem = capabilities_problem(name, values.get(name))
        if problem:
            findings.problems.append(problem)
    return findings


def is_pinned(image: str) -> bool:
    """Whether IMAGE names a tag other than latest (or a digest)."""
    return bool(re.search(r":[^/]+$", image)) and not image.endswith(":latest")


def _stack_secrets(values: Mapping[str, Any]) -> list[str]:
    problems = []
    if "AUTH_TOKEN" in (values.get("ollama_stack_runner_environment") or {}):
        problems.append(
            "ollama_stack_runner_environment sets AUTH_TOKEN, which would land in the compose file in clear. Fix: "
            "remove it there and set lpfleet_runner_token (from vault); lpfleet passes it to the runner through a "
            "root-only env file and writes it into aiModels.json.")
    labels = values.get("ollama_stack_labels") or {}
    if isinstance(labels, Mapping) and labels.get(GO_LIVEPEER_LABEL[0]) == GO_LIVEPEER_LABEL[1]:
        problems.append(
            "ollama_stack_labels sets creator=ai-worker; go-livepeer removes every container with that label when it "
            "starts with -aiWorker. Fix: remove that label from ollama_stack_labels.")
    if "lpfleet_runner_token" in values and token_problem(values["lpfleet_runner_token"]):
        problems.append(token_problem(values["lpfleet_runner_token"]))
    return problems


def token_problem(token: Any) -> str:
    """Why TOKEN cannot be the runner's token (never showing it), or ''."""
    if isinstance(token, str) and token and "'" not in token and not CONTROL.search(token) and token == token.strip():
        return ""
    return ("lpfleet_runner_token must be a non-empty string without quotes ('), line breaks or other control "
            "characters, and without whitespace around it (go-livepeer cannot send it as a header value). Fix: "
            "generate one with `openssl rand -hex 32` and store it with ansible-vault.")


def _stack_exposure(values: Mapping[str, Any], warnings: list[str]) -> list[str]:
    """Ollama has no authentication: beyond the loopback only with the opt-in, and then a warning."""
    address = values.get("ollama_stack_bind_address")
    if not isinstance(address, str) or not address.strip():
        return ["ollama_stack_bind_address is %s, which compose reads as every interface: Ollama (no authentication) "
                "and the runner would be open to the network. Fix: set it to 127.0.0.1, or to the one address to "
                "publish on together with ollama_stack_publish_beyond_loopback: true." % shown(address)]
    if address in LOOPBACK_ADDRESSES:
        return []
    stacks = (values.get("lpfleet_plan") or {}).get("stacks") or []
    ollama = ", ".join(str(stack.get("ollama_port")) for stack in stacks)
    runner = ", ".join(str(stack.get("runner_port")) for stack in stacks)
    if not values.get("ollama_stack_publish_beyond_loopback"):
        return ["ollama_stack_bind_address is %s, so Ollama (port %s, no authentication) and the runner (port %s) "
                "would listen beyond this host. Fix: keep 127.0.0.1, or set ollama_stack_publish_beyond_loopback: "
                "true and firewall those ports." % (address, ollama, runner)]
    warnings.append(
        "ollama_stack_bind_address is %s (ollama_stack_publish_beyond_loopback), so Ollama on port %s and the runner "
        "on port %s listen beyond this host. Ollama has no authentication: anyone who reaches its port can pull, "
        "delete and run models. Firewall both ports." % (address, ollama, runner))
    return []


def capabilities_problem(name: str, value: Any) -> str | None:
    """compose passes cap_add to Docker as written; a name Docker does not know fails only at `up`."""
    good = (isinstance(value, list) and all(isinstance(cap, str) and CAPABILITY.match(cap) for cap in value)
            and "ALL" not in value)
    if good:
        return None
    return ("%s is %s. Fix: list capability names as Docker writes them, in upper case (e.g. [NET_BIND_SERVICE]), "
            "only those the image needs; not ALL." % (name, shown(value)))


# --- ollama_models -------------------------------------------------------------------------------

MODELS_RANGES = [
    ("ollama_models_retries", 0, 100, "retries"),
    ("ollama_models_retry_delay", 0, 3600, "seconds"),
    ("ollama_models_pull_timeout", 1, 604800, "seconds"),
    ("ollama_models_stall_timeout", 1, 86400, "seconds"),
    ("ollama_models_progress_interval", 0, 86400, "seconds, 0 for none"),
]


def ollama_models(values: Mapping[str, Any], raw: Mapping[str, Any]) -> Findings:
    """The Ollama tags themselves are the planner's rule (it refuses a tag Ollama would)."""
    findings = Findings(problems=ranges(raw, MODELS_RANGES, "finite"))
    keep_alive = values.get("ollama_models_keep_alive")
    if not KEEP_ALIVE.match(str(keep_alive)):
        findings.problems.append(
            "ollama_models_keep_alive is %s, which Ollama cannot read. Fix: write seconds (\"600\"), a duration "
            "(\"30m\", \"24h\") or \"-1\" to keep warm models loaded." % shown(keep_alive))
    if values.get("ollama_models_insecure") and not values.get("lpfleet_allow_plain_http", False):
        findings.problems.append(
            "ollama_models_insecure is true, so Ollama would pull models from a plain-http registry or without "
            "checking its TLS certificate, and lpfleet_allow_plain_http is false. Fix: remove ollama_models_insecure, "
            "or set lpfleet_allow_plain_http: true to accept that risk.")
    return findings


# --- ai_models -----------------------------------------------------------------------------------

AI_MODELS_RANGES = [
    ("ai_models_containers_per_gpu", 1, 64, "go-livepeer's -aiRunnerContainersPerGPU"),
    ("ai_models_backups_kept", 1, 100, "copies of the previous file kept"),
    ("ai_models_node_settle_seconds", 0, 3600, "seconds go-livepeer must keep running after a restart"),
]


def ai_models(values: Mapping[str, Any], raw: Mapping[str, Any]) -> Findings:
    """The entries and the file's mode are the module's rules (checks_host runs it in check mode)."""
    return Findings(problems=ranges(raw, AI_MODELS_RANGES, "whole"))


# --- verify --------------------------------------------------------------------------------------

VERIFY_RANGES = [
    ("verify_deadline", 0, 3600, "seconds"),
    ("verify_llm_timeout", 1, 3600, "seconds"),
    ("verify_max_tokens", 1, 4096, "tokens"),
]


def verify(values: Mapping[str, Any], raw: Mapping[str, Any]) -> Findings:
    return Findings(problems=ranges(raw, VERIFY_RANGES, "finite"))


# --- preflight -----------------------------------------------------------------------------------


# The roles whose record preflight's host-wide check reads (each has __<role>_applied_watch and records every host it
# applies to; site_cache records only its site's cache host).
APPLIED_ROLES = ("docker_engine", "nvidia_container_toolkit", "livepeer_network", "ollama_stack", "ollama_models",
                 "ai_models")


def preflight(values: Mapping[str, Any], raw: Mapping[str, Any]) -> Findings:
    """The host's system (from the facts preflight gathers), preflight's own numbers (the shared lpfleet_*
    ones are the planner's) and the roles its host-wide check reads."""
    problems = system_problems(values.get("ansible_facts") or {}, values.get("preflight_supported_os") or [],
                               values.get("preflight_supported_architectures") or [])
    unknown = [name for name in values.get("preflight_applied_roles") or [] if name not in APPLIED_ROLES]
    if unknown:
        problems.append(
            "preflight_applied_roles names %s, which keep no applied-state record to compare (the host would never "
            "count as unchanged). Fix: name only roles among %s." % (", ".join(map(shown, unknown)),
                                                                     ", ".join(APPLIED_ROLES)))
    return Findings(problems=problems + ranges(raw, [("preflight_disk_margin_mb", 0, 1000000000, "MB")], "whole"))


def system_problems(facts: Mapping[str, Any], supported_os: list[str], architectures: list[str]) -> list[str]:
    """An operating system, architecture, package and service manager lpfleet does not support."""
    problems = []
    by_major = "%s %s" % (facts.get("distribution"), facts.get("distribution_major_version"))
    by_version = "%s %s" % (facts.get("distribution"), facts.get("distribution_version"))
    if by_major not in supported_os and by_version not in supported_os:
        problems.append(
            "%s (%s) is not supported; preflight_supported_os lists %s. Fix: run lpfleet on one of those systems, or "
            "add this one to preflight_supported_os at your own risk."
            % (by_version, facts.get("distribution_release"), ", ".join(supported_os)))
    if facts.get("architecture") not in architectures:
        problems.append(
            "architecture %s is not supported; preflight_supported_architectures lists %s. Fix: run lpfleet on an "
            "x86_64 or aarch64 host." % (facts.get("architecture"), ", ".join(architectures)))
    if facts.get("pkg_mgr") != "apt" or facts.get("service_mgr") != "systemd":
        problems.append(
            "lpfleet manages packages with apt and services with systemd; this host has %s and %s. Fix: use a Debian "
            "or Ubuntu host booted with systemd." % (facts.get("pkg_mgr"), facts.get("service_mgr")))
    return problems


def spec_only(values: Mapping[str, Any], raw: Mapping[str, Any]) -> Findings:
    """A role whose argument spec is all there is to check here (site_cache: its filter checks the site against the
    other hosts)."""
    return Findings()


RULES: dict[str, Callable[[Mapping[str, Any], Mapping[str, Any]], Findings]] = {
    "docker_engine": docker_engine,
    "nvidia_container_toolkit": nvidia_container_toolkit,
    "livepeer_network": livepeer_network,
    "ollama_stack": ollama_stack,
    "ollama_models": ollama_models,
    "ai_models": ai_models,
    "verify": verify,
    "preflight": preflight,
    "site_cache": spec_only,
}


def check_role(role: str, values: Mapping[str, Any], raw: Mapping[str, Any] | None = None) -> Findings:
    """ROLE's findings for its VALUES (types as the spec coerced them) and RAW (as given, for the messages);
    a role without rules finds nothing."""
    rules = RULES.get(role)
    return rules(values, values if raw is None else raw) if rules else Findings()
