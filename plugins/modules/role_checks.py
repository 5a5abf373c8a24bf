#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
module: role_checks
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.3.0"
short_description: Check the variables of several lpfleet roles in one task, changing nothing
description:
  - For each role in O(roles), reads its variables as the play sees them (its role defaults underneath), validates
    them against the C(checks) entry point of its C(meta/argument_specs.yml) (Ansible's own validator, for types and
    choices), then runs the role's rules in C(plugins/plugin_utils/role_checks.py) (ranges, names Docker and compose
    accept, plain http only when allowed, the runner token, the bind address, and so on).
  - Fails listing every problem of every role at once, each line naming the host, the variable and the fix; a token
    is never shown. What a role's rules warn about becomes an Ansible warning.
  - What must be read on the host (repository keys, installed packages, aiModels.json) is not checked here; the
    roles' C(checks_host) entry points check it.
  - Runs on the controller only (an action plugin; this file holds its documentation), changes nothing, and runs
    the same in check mode.
options:
  roles:
    description: The lpfleet roles whose variables to check, by short name (C(docker_engine), C(ollama_stack), ...;
      C(preflight) for preflight's own numbers).
    type: list
    elements: str
    required: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: all
"""

EXAMPLES = r"""
- name: Check every role's variables before any role changes the host
  lpfleet.ai.role_checks:
    roles: [docker_engine, nvidia_container_toolkit, livepeer_network, ollama_stack, ollama_models, ai_models, verify]
"""

RETURN = r"""
roles:
  description: The roles checked.
  returned: always
  type: list
  elements: str
problems:
  description: What is wrong, one line per problem, each starting with the host's name.
  returned: always
  type: list
  elements: str
"""
