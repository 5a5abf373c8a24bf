# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
name: plain_http_problem
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.2.0"
short_description: Say why a repository or registry URL is refused (not http(s), or plain http not allowed)
description:
  - lpfleet's one rule for the URLs it downloads packages and images from. An C(https://) URL passes. A plain
    C(http://) URL passes only when the play allows plain http (C(lpfleet_allow_plain_http)), because anyone on
    the path can then serve other content (apt still checks signatures against the pinned key, but sees what a
    man in the middle chooses, and a registry over http has no such check). Anything else, with spaces, or
    without a host is refused.
  - Returns an empty string for an accepted URL, else the sentence to fail with, naming the variable and the fix.
positional: _input
options:
  _input:
    description: The URL.
    type: raw
    required: true
  variable:
    description: The variable that holds the URL, named in the message.
    type: str
    required: true
  allow_plain_http:
    description: Whether plain C(http://) is allowed (C(lpfleet_allow_plain_http)).
    type: bool
    default: false
  example:
    description: A good value, shown in the fix.
    type: str
    default: https://example.com/repo
"""

EXAMPLES = r"""
- name: Require an https URL for Docker's repository (http only when allowed)
  ansible.builtin.assert:
    that:
      - __problem == ''
    fail_msg: "{{ inventory_hostname }}: {{ __problem }}"
  vars:
    __problem: >-
      {{ docker_engine_docker_repo_url | lpfleet.ai.plain_http_problem('docker_engine_docker_repo_url',
         lpfleet_allow_plain_http | default(false), 'https://download.docker.com/linux') }}
"""

RETURN = r"""
_value:
  description: The problem, or an empty string.
  type: str
"""

import json
import re
from typing import Any

URL = re.compile(r"(?P<scheme>https?)://[^\s/]+(/\S*)?")


def plain_http_problem(url: Any, variable: str, allow_plain_http: Any = False,
                       example: str = "https://example.com/repo") -> str:
    """Why URL is refused, or '' when it may be used."""
    found = URL.fullmatch(url) if isinstance(url, str) else None
    if found is None:
        return "%s is %s, not an http(s) URL. Fix: write a URL such as %s (no spaces, no trailing newline)." % (
            variable, json.dumps(url), example)
    if found.group("scheme") == "http" and not allow_plain_http:
        return ("%s is %s, plain http: anyone on the path can change what is downloaded. Fix: use https (such as %s), "
                "or set lpfleet_allow_plain_http: true if this network is trusted (a lab, a local mirror)."
                % (variable, url, example))
    return ""


class FilterModule:
    """lpfleet's rule for repository and registry URLs."""

    def filters(self) -> dict[str, Any]:
        return {"plain_http_problem": plain_http_problem}
