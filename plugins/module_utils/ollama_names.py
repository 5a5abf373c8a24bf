# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""Ollama's model names: its rules for a valid name and the one canonical form lpfleet compares names in.

A port of Ollama's types/model/name.go (ParseName, IsValid, DisplayShortest, EqualFold), read at
ollama/ollama fb30760 (2026-08). Pure functions, no Ansible imports: modules use them on the target,
the planner and filters on the controller; nothing else in lpfleet parses an Ollama name.

- A name is `[[scheme://]host/][namespace/]model[:tag]`. The tag is cut at the last ':' when it
  comes after the last '/'; then the model, the namespace and the host at each '/' from the right.
- Missing parts take Ollama's defaults: host `registry.ollama.ai`, namespace `library`, tag `latest`.
- Each part starts with a letter, digit or '_' and holds letters, digits, '_' and '-'; the model
  and tag may also hold '.', the host '.' and ':' (a port). Host up to 350 characters, the others 80.
- The canonical form is Ollama's DisplayShortest, the name /api/tags and /api/ps list: the host and
  namespace are left out when they are the defaults (compared ignoring case), the tag is always there.
- Ollama treats names that differ only in case as the same model (EqualFold): `name_key` gives the
  form to compare with.
"""

from __future__ import annotations

import re
from typing import NamedTuple

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
_MISSING = ""  # a part promised by its separator but empty: never valid

_RULES = {
    "host": (re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$"), 350),
    "namespace": (re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$"), 80),
    "model": (re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"), 80),
    "tag": (re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"), 80),
}


class ModelName(NamedTuple):
    """A name's parts with Ollama's defaults filled in."""

    host: str
    namespace: str
    model: str
    tag: str


def _cut_last(text: str, separator: str) -> tuple[str, str | None]:
    """(before, after) the last separator; (text, None) without one."""
    before, found, after = text.rpartition(separator)
    return (before, after) if found else (text, None)


def _parse(name: str) -> tuple[ModelName, list[str]]:
    """Ollama's ParseName: the parts (defaults merged) and the names of the parts that are present but empty."""
    empty: list[str] = []
    tag = None
    if name.rfind(":") > name.rfind("/"):
        name, tag = _cut_last(name, ":")
        if tag == _MISSING:
            empty.append("tag")
    rest, model = _cut_last(name, "/")
    namespace = host = None
    if model is None:
        model, rest = rest, None
    elif rest == _MISSING:
        empty.append("namespace")
    if rest is not None:
        host_part, namespace = _cut_last(rest, "/")
        if namespace is None:
            namespace, host_part = host_part, None
        elif host_part == _MISSING:
            empty.append("host")
        if host_part is not None:
            host = host_part.split("://", 1)[1] if "://" in host_part else host_part
    parts = ModelName(DEFAULT_HOST if host is None else host, DEFAULT_NAMESPACE if namespace is None else namespace,
                      model, DEFAULT_TAG if tag is None else tag)
    return parts, empty


def _part_problem(kind: str, value: str) -> str | None:
    pattern, longest = _RULES[kind]
    if not value:
        return "has an empty %s" % kind
    if len(value) > longest:
        return "has a %s longer than %d characters" % (kind, longest)
    if not pattern.match(value):
        return "has a %s (%r) Ollama refuses" % (kind, value)
    return None


def parse_name(name: object) -> ModelName:
    """The parts of a valid name, defaults filled in; ValueError saying what is wrong otherwise."""
    problem = name_problem(name)
    if problem is not None or not isinstance(name, str):
        raise ValueError("Ollama model name %r %s" % (name, problem))
    return _parse(name)[0]


def name_problem(name: object) -> str | None:
    """Why Ollama would refuse NAME as a model name, or None when it is valid."""
    if not isinstance(name, str) or not name:
        return "is empty"
    if name != name.strip():
        return "has whitespace around it"
    if re.search(r"[\x00-\x1f\x7f]", name):
        return "holds a control character"
    parts, empty = _parse(name)
    for kind in ("host", "namespace", "model", "tag"):
        problem = "has an empty %s" % kind if kind in empty else _part_problem(kind, getattr(parts, kind))
        if problem is not None:
            return ("is not an Ollama name ([host/][namespace/]model[:tag]: letters, digits, '_', '-' and '.', "
                    "each part starting with a letter, digit or '_'): it %s" % problem)
    return None


def canonical_name(name: object) -> str:
    """The name as Ollama lists it (DisplayShortest): `mistral` -> `mistral:latest`,
    `registry.ollama.ai/library/llama3.1:8b` -> `llama3.1:8b`, `hf.co/org/m` -> `hf.co/org/m:latest`.

    ValueError (saying what is wrong) for a name Ollama refuses.
    """
    parts = parse_name(name)
    if parts.host.lower() != DEFAULT_HOST:
        prefix = "%s/%s/" % (parts.host, parts.namespace)
    elif parts.namespace.lower() != DEFAULT_NAMESPACE:
        prefix = parts.namespace + "/"
    else:
        prefix = ""
    return "%s%s:%s" % (prefix, parts.model, parts.tag)


def name_key(name: object) -> str:
    """The canonical name in lower case: two names are the same model to Ollama when their keys are equal."""
    return canonical_name(name).lower()


def same_model(first: object, second: object) -> bool:
    """Whether Ollama takes the two names for one model."""
    return name_key(first) == name_key(second)


def manifest_path(name: object) -> str:
    """Where Ollama keeps the name's manifest under its models directory's manifests/ (Go's Name.Filepath):
    `mistral` -> `registry.ollama.ai/library/mistral/latest`. ValueError for a name Ollama refuses."""
    parts = parse_name(name)
    return "/".join((parts.host, parts.namespace, parts.model, parts.tag))
