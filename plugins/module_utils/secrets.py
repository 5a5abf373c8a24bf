# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""What counts as a secret in lpfleet's data, and how it is kept out of every output.

Pure functions, no Ansible imports: modules use them on the target (to fill no_log_values),
filters on the controller (to scrub reports). A secret is the value of a key that looks like one
(token, auth, key, password, secret, credential), and the password in a URL (http://user:pw@host).
Each secret is also hidden in its JSON-escaped forms, as a JSON file or a diff shows it.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any, Iterable

MASK = "********"

_SECRET_KEY = re.compile(r"token|auth|key|passw|secret|credential", re.IGNORECASE)
# A mistyped secret key is still a secret (tokne, pasword, secert).
_SECRET_WORDS = ("token", "auth", "password", "secret", "credential", "authorization")
# scheme://user:password@host: the password is what follows the first ':' of the userinfo.
_URL_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*:)(?P<password>[^/@\s]*)(?P<tail>@.*)$",
                           re.DOTALL)


def is_secret_key(name: Any) -> bool:
    """True for a key whose value must never be shown (token, Authorization, api_key, password, ...)."""
    if not isinstance(name, str):
        return False
    return bool(_SECRET_KEY.search(name)) or bool(difflib.get_close_matches(name.lower(), _SECRET_WORDS, cutoff=0.8))


def url_password(value: Any) -> str | None:
    """The password of a URL with userinfo, or None."""
    if not isinstance(value, str):
        return None
    match = _URL_PASSWORD.match(value.strip())
    if not match or not match.group("password"):
        return None
    return match.group("password")


def mask_url(value: str) -> str:
    """The URL with its password replaced by the mask."""
    match = _URL_PASSWORD.match(value)
    if not match or not match.group("password"):
        return value
    return match.group("head") + MASK + match.group("tail")


def mask_value(name: Any, value: Any) -> Any:
    """VALUE as it may be shown under the key NAME."""
    if value is None:
        return None
    if is_secret_key(name):
        return MASK
    if isinstance(value, str):
        return mask_url(value)
    return scrub(value)


def scrub(data: Any) -> Any:
    """A copy of DATA (mappings, lists, strings) with every secret masked."""
    if isinstance(data, dict):
        return {key: mask_value(key, value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [scrub(item) for item in data]
    if isinstance(data, str):
        return mask_url(data)
    return data


def secret_values(data: Any) -> list[str]:
    """Every secret in DATA: values of secret-looking keys (strings, or every string inside them)
    and URL passwords, at any depth."""
    found: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if is_secret_key(key):
                found.extend(_strings(value))
            else:
                found.extend(secret_values(value))
    elif isinstance(data, (list, tuple)):
        for item in data:
            found.extend(secret_values(item))
    else:
        password = url_password(data)
        if password:
            found.append(password)
    return [value for value in dict.fromkeys(found) if value]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, (list, tuple)):
        return [text for item in value for text in _strings(item)]
    return []


def shown_forms(secrets: Iterable[str]) -> set[str]:
    """Each secret as it may appear in output: as is, and JSON-escaped (ASCII and not)."""
    forms: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        forms.add(secret)
        forms.add(json.dumps(secret)[1:-1])
        forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    return forms
