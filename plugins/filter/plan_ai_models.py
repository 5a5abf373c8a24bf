# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
name: plan_ai_models
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.1.0"
short_description: Place a host's model menu on its GPUs and write its aiModels.json entries
description:
  - Combines the host's GPUs (C(lpfleet_gpus) from M(lpfleet.ai.gpu_facts)), the operator's model menu
    (C(lpfleet_model_menu)) and lpfleet's model catalog (C(catalog/models.yml), extended by O(catalog_overrides))
    into a placement, the host's C(aiModels.json) entries and the Ollama + runner stacks to deploy.
  - Menu order is priority. An item is served when it and every item served before it can run together, in any
    arrangement (an exact search); an item is never left out to make room for a later one. A GPU gets at most one
    warm managed model (an entry without C(url), which go-livepeer runs in its own container, one per GPU).
    Resident VRAM (warm items) plus O(headroom_mib) must fit the GPU. Among arrangements, warm models go to GPUs
    without a warm model first, then where the least room is left (the largest GPUs stay free for cold models),
    ties to the lower index.
  - A model never gets less VRAM than its weights (its download size) plus 10% (at least 1024 MiB) for the
    context; where the catalog's figure is lower, the plan uses the larger and says so in C(vram_basis).
  - go-livepeer starts the n-th warm managed entry of C(aiModels.json) on the n-th GPU of its C(-nvidia) list, and a
    cold managed model on any listed GPU without a container. C(nvidia_devices) is the list that carries the plan,
    the warm managed models' GPUs in file order, then the GPUs where every cold managed model fits. With
    O(livepeer_nvidia) (the node's actual value) the plan is made for that list (the warm managed entries are
    ordered to match) when it serves the same items; otherwise C(nvidia_problem) names the value the plan needs.
  - C(llm) items are served by lpfleet's Ollama stack; their entries get C(url) = the runner of the stack that
    serves their GPU. Items with their own C(url) pass through unplaced on any GPU.
  - Every menu item that cannot be placed is listed under C(unplaced) with a reason naming the host, the model,
    the VRAM it needs and the VRAM each GPU has.
  - Bad menu input (unknown pipeline, an Ollama tag as C(model_id), a string price, a model the catalog lacks
    without C(vram_mib), ...) fails the task with every problem at once, each naming the host,
    C(lpfleet_model_menu[i]), the field and the fix. Entries that go-livepeer would reject or that draw one of
    lpfleet's warnings are refused, so every entry the planner emits passes M(lpfleet.ai.ai_models) cleanly.
  - A duplicated item (same pipeline and model), two planned containers with one name or one published port, or a
    port outside 1-65535 (C(per_gpu) adds the GPU index) fail the task naming the variable, the item and the fix.
    A GPU with no more memory than the headroom is left out with a message in C(warnings).
  - The same input always gives the same output, byte for byte.
positional: _input, menu
options:
  _input:
    description: The host's GPUs, C(lpfleet_gpus) (each needs C(index), C(memory_total_mib) and C(name)).
    type: list
    elements: dict
    required: true
  menu:
    description:
      - The model menu, C(lpfleet_model_menu). Each item holds C(aiModels.json) keys (C(pipeline), C(model_id),
        C(warm), C(price_per_unit), C(currency), C(pixels_per_unit), C(capacity), C(token), C(gateway),
        C(optimization_flags), C(url)) plus lpfleet's own C(vram_mib) (overrides the catalog), C(ollama_tag) and
        C(download_mb) (for C(llm) models the catalog lacks). Order is priority.
    type: list
    elements: dict
    required: true
  catalog_overrides:
    description: Catalog items that extend or replace the built-in ones, matched by C(model_id)
      (C(lpfleet_model_catalog_overrides)); keys C(model_id), C(pipeline), C(vram_gb) or C(vram_mib),
      C(vram_source), C(ollama_tag), C(download_mb), C(download_source), C(pricing_unit), C(notes).
    type: list
    elements: dict
  # BEGIN PlanOptions: written by scripts/plan-options from plugins/plugin_utils/planner.py; edit there
  host:
    type: str
    default: ""
    description: >-
      The host's name, used in messages (C(inventory_hostname)).
  headroom_mib:
    type: int
    default: 512
    description: >-
      VRAM (MiB) kept free on every GPU on top of the resident (warm) models, for inference peaks.
  layout:
    type: str
    default: shared
    choices: [shared, per_gpu]
    description: >-
      C(shared) deploys one Ollama + runner pair using all GPUs, as in the Livepeer docs; C(per_gpu) one
      pair per GPU that serves an C(llm) model, with names and ports suffixed by the GPU index.
  runner_address:
    type: str
    default: container
    choices: [container, loopback]
    description: >-
      How go-livepeer reaches the runner. C(container) uses the runner's container name on the shared
      Docker network; C(loopback) uses C(http://127.0.0.1:<port>), for go-livepeer on host networking.
  runner_name:
    type: str
    default: llm_runner
    description: >-
      The runner's container name (C(per_gpu) adds C(_gpu<index>)).
  runner_port:
    type: int
    default: 8000
    description: >-
      The runner's port, inside its container and published on the host (C(per_gpu) publishes port +
      index).
  ollama_name:
    type: str
    default: ollama
    description: >-
      Ollama's container name (C(per_gpu) adds C(_gpu<index>)).
  ollama_port:
    type: int
    default: 11434
    description: >-
      Ollama's port, inside its container and published on the host (C(per_gpu) publishes port + index).
  livepeer_nvidia:
    type: str
    description: >-
      go-livepeer's actual C(-nvidia) value (GPU indices such as C(1,0), or C(all); an empty string when
      the node runs without the flag), read from its container command or systemd unit. Omitted when
      lpfleet tells the operator which value to use.
  unplaced_action:
    type: str
    default: warn
    choices: [warn, fail]
    description: >-
      What a menu item that fits no GPU does. C(warn) lists it under C(unplaced) only (the play goes on
      without it); C(fail) also puts it under C(blocking) (stop the host). Items with C(required=true)
      always stop it.
  bind_address:
    type: str
    default: "127.0.0.1"
    description: >-
      The address the stacks' ports are published on (C(ollama_stack_bind_address)); gives the stacks'
      C(ollama_host_url) and C(runner_host_url), where the host itself reaches them (the loopback for
      C(127.0.0.1), C(0.0.0.0), C(::1) and C(::); IPv6 addresses in brackets).
  # END PlanOptions
"""

EXAMPLES = r"""
- name: Plan this host's models
  ansible.builtin.set_fact:
    lpfleet_plan: >-
      {{ lpfleet_gpus | lpfleet.ai.plan_ai_models(lpfleet_model_menu,
           host=inventory_hostname, catalog_overrides=lpfleet_model_catalog_overrides,
           headroom_mib=512, layout='shared', runner_address='container') }}

- name: Show what could not be placed
  ansible.builtin.debug:
    msg: "{{ lpfleet_plan.unplaced | map(attribute='reason') | list }}"
"""

RETURN = r"""
_value:
  description:
    - The plan. Keys C(host), C(layout), C(gpus) (per GPU C(index), C(name), C(memory_total_mib), C(planned_mib),
      C(free_after_mib), C(warm_managed)), C(placement) (placed items in menu order, with C(menu_index), C(pipeline),
      C(model_id), C(gpu_index) (only where one GPU is enforced), C(gpu_pool) (the GPUs it may run on), C(warm),
      C(vram_mib), C(vram_basis), C(managed), C(ollama_tag), C(stack)), C(ai_models) (the C(aiModels.json)
      entries, file order), C(nvidia_devices) (the C(-nvidia) value that makes go-livepeer put each warm managed
      model on its planned GPU), C(livepeer_nvidia) and C(nvidia_problem), C(stacks) (C(name), C(ollama_container),
      C(runner_container), C(ollama_port), C(runner_port), C(gpu_indices) (the GPUs its Ollama reserves),
      C(ollama_url), C(runner_url) (as the containers reach them), C(ollama_host_url), C(runner_host_url) (as the
      host reaches them), C(models)), C(ollama_tags), C(download_mb), C(notes), C(warnings), C(unplaced)
      (C(menu_index), C(pipeline), C(model_id), C(required), C(reason)), C(blocking) (the unplaced items that stop
      the host) and C(blocking_problem) (the message saying so, or null).
    - See docs/internals.md in the collection for the full shape.
  type: dict
"""

from dataclasses import fields
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.lpfleet.ai.plugins.plugin_utils.planner import PlanError, PlanOptions, plan


def plan_ai_models(gpus: Any, menu: Any, catalog_overrides: Any = None, **options: Any) -> dict[str, Any]:
    """The filter: see DOCUMENTATION. Every other option is a field of planner.PlanOptions."""
    unknown = sorted(set(options) - {option.name for option in fields(PlanOptions)})
    if unknown:
        raise AnsibleFilterError("plan_ai_models: unknown option(s) %s; the options are %s"
                                 % (", ".join(unknown), ", ".join(option.name for option in fields(PlanOptions))))
    try:
        return plan(gpus, menu, catalog_overrides, PlanOptions(**options))
    except PlanError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    """lpfleet's placement planner."""

    def filters(self) -> dict[str, Any]:
        return {"plan_ai_models": plan_ai_models}
