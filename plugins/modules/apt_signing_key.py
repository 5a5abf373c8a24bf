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


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "fingerprint": {"type": "str", "required": True},
            "fingerprint_variable": {"type": "str", "default": "fingerprint"},
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
    try:
        result = check_key(url, fetch(module), expected, variable)
    except ValueError as error:
        module.fail_json(msg=str(error), url=url)
    module.exit_json(changed=False, url=url, **result)


if __name__ == "__main__":
    main()
