# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""Ollama's rules for model names ([host/][namespace/]model[:tag]), as its server checks them.

Pure functions, no Ansible imports: the ollama_model module uses them on the target, the planner
may on the controller. Each part is letters, digits, '_', '-' and '.', starting with a letter or
digit (the host may also hold ':' for a port); the host is up to 350 characters, the other parts
up to 80. Anything else (a space, a control character, an empty part) Ollama refuses.
"""

from __future__ import annotations

import re

_HOST = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,349}"
_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,79}"
_NAME = re.compile(r"^(?:%s/)?(?:%s/)?%s(?::%s)?$" % (_HOST, _PART, _PART, _TAG))


def name_problem(name: object) -> str | None:
    """Why Ollama would refuse NAME as a model name, or None when it is valid."""
    if not isinstance(name, str) or not name:
        return "is empty"
    if name != name.strip():
        return "has whitespace around it"
    if re.search(r"[\x00-\x1f\x7f]", name):
        return "holds a control character"
    if not _NAME.match(name):
        return ("is not an Ollama name ([host/][namespace/]model[:tag]: letters, digits, '_', '-' and '.', "
                "each part starting with a letter or digit)")
    return None
