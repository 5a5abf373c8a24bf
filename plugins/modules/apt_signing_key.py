#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
module: apt_signing_key
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.2.0"
short_description: Fetch an apt repository's signing key and check it against a pinned fingerprint
description:
  - Downloads the key at O(url) (ASCII-armoured or binary) on the host, as apt would reach it, and reads the
    fingerprints of its primary keys without gpg.
  - Fails, naming both fingerprints and O(fingerprint_variable), unless the key holds exactly the pinned primary
    key. A rotated or substituted key therefore stops the play before apt trusts it.
  - Returns the key ASCII-armoured, ready for M(ansible.builtin.deb822_repository)'s C(signed_by).
  - With O(installed), a key already installed in that deb822 source (its C(Signed-By), inline or a keyring file)
    that holds exactly the pinned primary key is returned from there, with no download. A vendor's rotated key is
    then noticed by apt itself (its next C(apt-get update) of that source fails on the new signature) or by
    changing the pinned fingerprint (the installed key no longer matches, so the key is downloaded and checked).
  - Reads only; runs the same in check mode.
options:
  url:
    description: Where the repository publishes its key.
    type: str
    required: true
  fingerprint:
    description: The fingerprint the key must have, 40 (v4) or 64 (v6) hex digits; spaces and case are ignored.
    type: str
    required: true
  fingerprint_variable:
    description: The variable that sets O(fingerprint), named in the failure message.
    type: str
    default: fingerprint
  installed:
    description:
      - A deb822 source file (C(/etc/apt/sources.list.d/NAME.sources)) whose C(Signed-By) may already hold the key.
      - When it holds exactly the pinned primary key, that key is returned and nothing is downloaded; otherwise
        (no file, no C(Signed-By), another key) the key is downloaded from O(url) as without this option.
    type: path
  timeout:
    description: Seconds to wait for the download.
    type: int
    default: 30
  validate_certs:
    description: Check the server's TLS certificate.
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Docker publishes its key's fingerprint, C(9DC8 5822 9FC7 DD38 854A E2D8 8D81 803C 0EBF CD88), in its
    install guide.
"""

EXAMPLES = r"""
- name: Fetch Docker's key and check its fingerprint
  lpfleet.ai.apt_signing_key:
    url: https://download.docker.com/linux/debian/gpg
    fingerprint: 9DC8 5822 9FC7 DD38 854A E2D8 8D81 803C 0EBF CD88
    fingerprint_variable: docker_engine_docker_repo_key_fingerprint
  register: docker_key

- name: Add Docker's repository, trusting that key only
  ansible.builtin.deb822_repository:
    name: docker
    uris: https://download.docker.com/linux/debian
    suites: bookworm
    components: stable
    signed_by: "{{ docker_key.key }}"
"""

RETURN = r"""
key:
  description: The key, ASCII-armoured (a binary key is armoured).
  returned: success
  type: str
fingerprints:
  description: The fingerprints of the primary keys the download holds, upper-case hex without spaces.
  returned: success
  type: list
  elements: str
  sample: [9DC858229FC7DD38854AE2D88D81803C0EBFCD88]
downloaded:
  description: Whether the key was downloaded from O(url) (false when O(installed) already held the pinned key).
  returned: success
  type: bool
"""

from typing import Any, Dict, List

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.lpfleet.ai.plugins.module_utils.openpgp import (
    NotAKey,
    armor,
    is_fingerprint,
    normalise_fingerprint,
    primary_fingerprints,
)

MAX_KEY_BYTES = 1024 * 1024


def mismatch_message(url: str, found: List[str], expected: str, variable: str) -> str:
    """What a key other than the pinned one means, and what to do."""
    return (
        "%s serves a key with fingerprint %s, but %s pins %s: apt would trust whoever holds that key. "
        "Fix: if the vendor rotated its key, check the new fingerprint against the vendor's published one and set "
        "%s to it; otherwise find out who answers at %s."
        % (url, " and ".join(found), variable, expected, variable, url))


def fetch(module: AnsibleModule) -> bytes:
    url = module.params["url"]
    try:
        response = open_url(url, timeout=module.params["timeout"], validate_certs=module.params["validate_certs"])
        data = response.read(MAX_KEY_BYTES + 1)
    except Exception as error:  # pylint: disable=broad-except  # open_url raises many kinds; all mean "no key"
        module.fail_json(msg="Could not download the repository key %s: %s. Fix: check that the host reaches it."
                         % (url, error), url=url)
    if len(data) > MAX_KEY_BYTES:
        module.fail_json(msg="%s is larger than %d bytes: not a repository key." % (url, MAX_KEY_BYTES), url=url)
    return data


def check_key(url: str, data: bytes, expected: str, variable: str) -> Dict[str, Any]:
    """The module's result for the downloaded DATA; raises ValueError with the message to fail with."""
    try:
        found = primary_fingerprints(data)
    except NotAKey as error:
        raise ValueError("%s did not give an OpenPGP public key: %s." % (url, error)) from None
    if found != [expected]:
        raise ValueError(mismatch_message(url, found, expected, variable))
    return {"key": armor(data), "fingerprints": found}


def signed_by(source: str) -> bytes | None:
    """The key in the Signed-By field of the deb822 file SOURCE (inline, or the keyring file it names); None when
    there is no such file, field or keyring."""
    try:
        with open(source, "r", encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for index, line in enumerate(lines):
        if line.lower().startswith("signed-by:"):
            value = [line.split(":", 1)[1].strip()]
            for continuation in lines[index + 1:]:
                if not continuation[:1].isspace():
                    break
                value.append("" if continuation.strip() == "." else continuation.strip())
            text = "\n".join(value).strip()
            if "\n" in text:
                return text.encode("ascii", "replace")
            return read_keyring(text)
    return None


def read_keyring(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_KEY_BYTES)
    except OSError:
        return None


def installed_result(source: str | None, expected: str, variable: str) -> Dict[str, Any] | None:
    """The module's result from the key installed in SOURCE, when it is exactly the pinned one; else None."""
    data = signed_by(source) if source else None
    if data is None:
        return None
    try:
        return check_key(source, data, expected, variable)
    except ValueError:
        return None


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "fingerprint": {"type": "str", "required": True},
            "fingerprint_variable": {"type": "str", "default": "fingerprint"},
            "installed": {"type": "path"},
            "timeout": {"type": "int", "default": 30},
            "validate_certs": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    url = module.params["url"]
    variable = module.params["fingerprint_variable"]
    if not is_fingerprint(module.params["fingerprint"]):
        module.fail_json(msg="%s is %r, not a key fingerprint (40 or 64 hex digits, spaces allowed)."
                         % (variable, module.params["fingerprint"]))
    expected = normalise_fingerprint(module.params["fingerprint"])
    result = installed_result(module.params["installed"], expected, variable)
    if result is not None:
        module.exit_json(changed=False, url=url, downloaded=False, **result)
    try:
        result = check_key(url, fetch(module), expected, variable)
    except ValueError as error:
        module.fail_json(msg=str(error), url=url)
    module.exit_json(changed=False, url=url, downloaded=True, **result)


if __name__ == "__main__":
    main()
