#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
module: ollama_info
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.3.0"
short_description: The models an Ollama server holds and which are loaded
description:
  - Reads an Ollama server's C(GET /api/tags) (the models in its store, with digests and sizes) and C(GET /api/ps)
    (the models loaded now, with the memory they hold and when they unload). Changes nothing; runs in check mode too.
  - With O(names), says for each name whether the model is present and whether it is loaded, matching names as
    Ollama does - a name without a tag means C(:latest), C(registry.ollama.ai/library/) may be written or not, case
    does not matter (C(mistral) is C(mistral:latest) is C(registry.ollama.ai/library/Mistral:latest)); and lists the
    models the server holds or has loaded that O(names) does not name.
  - Ollama's naming rules live in the collection's C(module_utils/ollama_names.py), the one place lpfleet reads them;
    the filter P(lpfleet.ai.ollama_canonical#filter) gives the same canonical name in a template.
  - A request that gets no answer, or an HTTP 5xx or 429, is retried (O(retries), O(retry_delay)) within O(timeout);
    the task then fails with the URL, the status and the start of the body.
options:
  url:
    description: The Ollama server's base URL.
    type: str
    default: http://127.0.0.1:11434
  names:
    description:
      - Model names to look up, e.g. the tags a plan puts in this Ollama. Each must be a name Ollama accepts
        (C([host/][namespace/]model[:tag])); the task fails before any request naming the one it refuses.
    type: list
    elements: str
    default: []
  retries:
    description: How many times to retry a request that failed in a way that may pass (no answer, 5xx, 429).
    type: int
    default: 2
  retry_delay:
    description: Seconds before the first retry; doubled before each next one.
    type: float
    default: 1
  timeout:
    description: Overall seconds the task may take, retries included (each request is given at most 30 s).
    type: float
    default: 30
attributes:
  check_mode:
    support: full
    description: Only reads; the same answer in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
notes:
  - Runs on the host that can reach O(url); lpfleet's roles publish Ollama on the host's loopback and call it there.
seealso:
  - module: lpfleet.ai.ollama_model
  - plugin: lpfleet.ai.ollama_canonical
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Read what the Ollama on this host holds and runs
  lpfleet.ai.ollama_info:
  register: ollama

- name: Show the loaded models and when they unload
  ansible.builtin.debug:
    msg: "{{ ollama.loaded | map(attribute='canonical') | list }}"

- name: Are the planned models there? (mistral matches mistral:latest)
  lpfleet.ai.ollama_info:
    url: http://127.0.0.1:11435
    names: [llama3.1:8b, mistral]
  register: planned

- name: Stop when one is missing
  ansible.builtin.assert:
    that: planned.missing | length == 0
    fail_msg: "not in Ollama: {{ planned.missing | join(', ') }}"

- name: Delete the models the plan does not name
  lpfleet.ai.ollama_model:
    name: "{{ item }}"
    state: absent
  loop: "{{ planned.unnamed }}"
"""

RETURN = r"""
url:
  description: The base URL that was read.
  returned: always
  type: str
  sample: http://127.0.0.1:11434
models:
  description: The models the server holds (C(/api/tags)), in its order.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The name as Ollama lists it.
      type: str
      sample: mistral:latest
    canonical:
      description: The canonical name (Ollama's shortest form, tag always written); what O(names) are matched on.
      type: str
      sample: mistral:latest
    digest:
      description: The manifest digest.
      type: str
    size:
      description: Bytes on disk.
      type: int
    modified_at:
      description: When the model was last pulled or created (RFC 3339).
      type: str
loaded:
  description: The models loaded now (C(/api/ps)).
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The name as Ollama lists it.
      type: str
    canonical:
      description: The canonical name.
      type: str
    digest:
      description: The manifest digest.
      type: str
    size:
      description: Bytes of memory the loaded model holds in all.
      type: int
    size_vram:
      description: Bytes of it in GPU memory.
      type: int
    expires_at:
      description: When Ollama unloads it (RFC 3339; centuries away for keep_alive -1).
      type: str
wanted:
  description: One item per O(names), in order.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The name as given.
      type: str
    canonical:
      description: Its canonical name.
      type: str
    present:
      description: Whether the server holds it.
      type: bool
    loaded:
      description: Whether it is loaded.
      type: bool
    digest:
      description: Its digest when present, else null.
      type: str
missing:
  description: The O(names) the server does not hold, as given.
  returned: success
  type: list
  elements: str
  sample: [mistral]
not_loaded:
  description: The O(names) that are not loaded, as given.
  returned: success
  type: list
  elements: str
unnamed:
  description: Canonical names of the models the server holds that O(names) does not name, sorted.
  returned: success
  type: list
  elements: str
  sample: [phi3:mini]
unnamed_loaded:
  description: Canonical names of the loaded models that O(names) does not name, sorted.
  returned: success
  type: list
  elements: str
status_code:
  description: On failure, the HTTP status of the answer that failed (null when none came).
  returned: failure
  type: int
request_url:
  description: On failure, the URL of the request that failed.
  returned: failure
  type: str
  sample: http://127.0.0.1:11434/api/ps
content_type:
  description: On failure, the content type of the answer that failed.
  returned: failure
  type: str
body_head:
  description: On failure, the first 200 bytes of that answer's body.
  returned: failure
  type: str
detail:
  description: On failure, what went wrong.
  returned: failure
  type: str
attempts:
  description: On failure, how many times the failing request was sent.
  returned: failure
  type: int
"""

import math
from typing import Any, Optional

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lpfleet.ai.plugins.module_utils.http import CLOCK, RequestFailed, backoff_delays, base_url
from ansible_collections.lpfleet.ai.plugins.module_utils.ollama_names import canonical_name, name_key, name_problem
from ansible_collections.lpfleet.ai.plugins.module_utils.ollama_state import (
    OllamaClient,
    listed_key,
    loaded_record,
    model_record,
)

NUMBER_RANGES = {
    "retries": (0, 100, "retries"),
    "retry_delay": (0, 3600, "seconds"),
    "timeout": (1e-3, 24 * 3600, "seconds"),
}


def bad_input(params: dict[str, Any]) -> Optional[str]:
    """The first invalid option, said with its fix; None when all are valid."""
    for index, name in enumerate(params["names"]):
        problem = name_problem(name)
        if problem:
            return "names[%d]=%r %s; give one such as llama3.1:8b" % (index, name, problem)
    for option, (low, high, unit) in NUMBER_RANGES.items():
        value = params[option]
        if not math.isfinite(value) or not low <= value <= high:
            return "%s=%s must be a finite number from %s to %s (%s)" % (option, value, low, high, unit)
    try:
        base_url(params["url"])
    except ValueError as err:
        return str(err)
    return None


def lookup(names: list[str], models: list[dict[str, Any]], loaded: list[dict[str, Any]]) -> dict[str, Any]:
    """What the server holds and runs, set against NAMES."""
    held = {listed_key(model["name"]): model for model in models}
    running = {listed_key(model["name"]) for model in loaded}
    named = {name_key(name) for name in names}
    wanted = [{"name": name, "canonical": canonical_name(name), "present": name_key(name) in held,
               "loaded": name_key(name) in running, "digest": (held.get(name_key(name)) or {}).get("digest")}
              for name in names]
    return {
        "wanted": wanted,
        "missing": [item["name"] for item in wanted if not item["present"]],
        "not_loaded": [item["name"] for item in wanted if not item["loaded"]],
        "unnamed": sorted({model["canonical"] for model in models if listed_key(model["name"]) not in named}),
        "unnamed_loaded": sorted({model["canonical"] for model in loaded if listed_key(model["name"]) not in named}),
    }


def read(client: OllamaClient, names: list[str]) -> dict[str, Any]:
    models = [model_record(entry) for entry in client.models()]
    loaded = [loaded_record(entry) for entry in client.loaded()]
    return dict({"models": models, "loaded": loaded}, **lookup(names, models, loaded))


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", default="http://127.0.0.1:11434"),
            names=dict(type="list", elements="str", default=[]),
            retries=dict(type="int", default=2),
            retry_delay=dict(type="float", default=1),
            timeout=dict(type="float", default=30),
        ),
        supports_check_mode=True,
    )
    params = module.params
    problem = bad_input(params)
    if problem:
        module.fail_json(msg=problem)
    url = base_url(params["url"])
    client = OllamaClient(url, CLOCK.monotonic() + params["timeout"],
                          backoff_delays(params["retry_delay"], params["retries"]))
    try:
        result = read(client, params["names"])
    except RequestFailed as failure:
        details = failure.as_dict()
        details.update(url=url, request_url=failure.url, attempts=failure.attempts)
        module.fail_json(msg="cannot read Ollama at %s: %s" % (url, failure), **details)
    module.exit_json(changed=False, url=url, **result)


if __name__ == "__main__":
    main()
