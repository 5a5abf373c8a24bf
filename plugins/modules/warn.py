#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
module: warn
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.2.0"
short_description: Emit an Ansible warning
description:
  - Shows O(msg) as an Ansible warning (C([WARNING]:) on the console, a warning in the task's result for callbacks
    and AWX), unlike M(ansible.builtin.debug), whose message is ordinary output.
  - Runs on the controller only (an action plugin; this file holds its documentation), changes nothing, and runs
    the same in check mode.
options:
  msg:
    description: The warning.
    type: str
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
- name: Warn that Ollama is published beyond the loopback
  lpfleet.ai.warn:
    msg: "gpu-a01: Ollama (port 11434, no authentication) and the runner (port 8000) listen on 0.0.0.0."
  when: ollama_stack_bind_address != '127.0.0.1'
"""

RETURN = r"""
msg:
  description: The warning.
  returned: success
  type: str
"""
