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
# scheme://user:password@host, anywhere in a string: the password follows the userinfo's first ':'.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*:)(?P<password>[^/@\s]+)(?=@)")


def is_secret_key(name: Any) -> bool:
    """True for a key whose value must never be shown (token, Authorization, api_key, password, ...)."""
    if not isinstance(name, str):
        return False
    return bool(_SECRET_KEY.search(name)) or bool(difflib.get_close_matches(name.lower(), _SECRET_WORDS, cutoff=0.8))


def url_passwords(value: Any) -> list[str]:
    """The passwords of the URLs with userinfo in VALUE (a string)."""
    if not isinstance(value, str):
        return []
    return [match.group("password") for match in _URL_PASSWORD.finditer(value)]


def mask_url(value: str) -> str:
    """VALUE with the password of every URL in it replaced by the mask."""
    return _URL_PASSWORD.sub(lambda match: match.group("head") + MASK, value)


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
        found.extend(url_passwords(data))
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
