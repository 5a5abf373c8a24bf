# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
name: stack_endpoints
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.3.0"
short_description: Where the host reaches lpfleet's running Ollama and runner containers
description:
  - Takes the results of C(community.docker.docker_host_info) looped over C([ollama, runner]) (each listing the
    containers with that C(io.lpfleet.service) label) and gives C({ollama, runners}), each a list of
    C({container, url}) sorted by name - the URL of the container's first published port as the host reaches it
    (the loopback for a port published on C(0.0.0.0), C(127.0.0.1), C(::) or C(::1); IPv6 addresses in brackets),
    the same rule the planner's C(ollama_host_url) and C(runner_host_url) follow.
  - A container that publishes no port is left out.
positional: _input
options:
  _input:
    description: The registered loop's C(results).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Record where each container answers
  ansible.builtin.set_fact:
    ollama_stack_endpoints: "{{ found.results | lpfleet.ai.stack_endpoints }}"
"""

RETURN = r"""
_value:
  description: C(ollama) and C(runners), lists of C({container, url}).
  type: dict
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.lpfleet.ai.plugins.plugin_utils.stack_endpoints import endpoints


def stack_endpoints(results: Any) -> dict[str, list[dict[str, str]]]:
    """The filter: see DOCUMENTATION."""
    try:
        return endpoints(results)
    except (TypeError, KeyError, ValueError, IndexError) as exc:
        raise AnsibleFilterError("stack_endpoints: cannot read docker_host_info's results: %r" % exc) from exc


class FilterModule:
    """lpfleet's running containers."""

    def filters(self) -> dict[str, Any]:
        return {"stack_endpoints": stack_endpoints}
