#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
module: site_model
author:
  - lpfleet developers (!UNKNOWN)
version_added: "0.4.0"
short_description: Copy an Ollama model from the site's cache host into this host's model store
description:
  - Copies the model O(name) from the site cache at O(cache_url) (the C(lpfleet-site-cache) server that
    P(lpfleet.ai.site_cache#role) runs on the site's cache host, which serves its Ollama store read-only) into the
    Ollama store at O(models_dir), so that the model is downloaded from upstream once per site.
  - Reads the model's manifest from the cache, copies each blob this host lacks under a temporary name, checks its
    sha256 digest and size against the manifest, renames it into place, and writes the manifest last. Ollama lists a
    model once its manifest is in the store (it reads the manifests from disk on every list); no restart is needed.
  - A model whose manifest and blobs are already in the store is left as it is (C(changed=false)).
  - When the cache cannot give the model whole and verified (no answer, an HTTP error, a manifest that is not one, a
    blob whose digest or size differs), nothing is written but the blobs already checked, and the task does not fail
    - it returns RV(fallback=true) and the RV(reason), and the caller pulls the model from upstream as without a cache.
    A failure on this host's side (a full disk, permissions) fails the task.
  - Ollama's store layout and naming rules live in the collection's C(module_utils/site_cache.py) and
    C(module_utils/ollama_names.py).
options:
  name:
    description: The Ollama model name (C(llama3.1:8b), C(registry.ollama.ai/library/llama3.1:8b)).
    type: str
    required: true
  models_dir:
    description:
      - Ollama's models directory on this host (it holds C(manifests/) and C(blobs/)); for lpfleet's stack, C(models)
        under the mount point of the Ollama volume.
    type: path
    required: true
  cache_url:
    description: The site cache's base URL, C(http://<cache host address>:<port>).
    type: str
    required: true
  timeout:
    description: Seconds without an answer (or without a byte of a transfer) before the cache counts as gone.
    type: int
    default: 60
attributes:
  check_mode:
    support: full
    description: Reads the cache's manifest and says what it would copy; writes nothing.
  diff_mode:
    support: none
    description: No diff; RV(blobs_copied) and RV(bytes_copied) say what is copied.
"""

EXAMPLES = r"""
- name: Copy llama3.1:8b from the site's cache host
  lpfleet.ai.site_model:
    name: llama3.1:8b
    models_dir: /var/lib/docker/volumes/ollama/_data/models
    cache_url: http://10.0.0.5:11480
  register: copied

- name: Pull from upstream when the cache could not give it
  lpfleet.ai.ollama_model:
    name: llama3.1:8b
    state: present
  when: copied.fallback
"""

RETURN = r"""
source:
  description: C(local) (already in the store), C(site-cache) (copied now) or C(upstream) (the cache failed; pull it).
  type: str
  returned: always
fallback:
  description: Whether the cache could not give the model and the caller must pull it from upstream.
  type: bool
  returned: always
reason:
  description: Why the cache could not give the model (empty unless RV(fallback)).
  type: str
  returned: always
manifest:
  description: The manifest's path under C(manifests/).
  type: str
  returned: always
  sample: registry.ollama.ai/library/llama3.1/8b
blobs_copied:
  description: Digests of the blobs copied from the cache (or that would be, in check mode).
  type: list
  elements: str
  returned: always
bytes_copied:
  description: Bytes copied from the cache.
  type: int
  returned: always
blobs_present:
  description: Digests of the blobs this host already held.
  type: list
  elements: str
  returned: always
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lpfleet.ai.plugins.module_utils.http import base_url
from ansible_collections.lpfleet.ai.plugins.module_utils.ollama_names import manifest_path, name_problem
from ansible_collections.lpfleet.ai.plugins.module_utils.site_cache import CacheUnavailable, copy_model


def run(module: AnsibleModule) -> dict[str, Any]:
    """The module's work: copy, or say why the caller must pull from upstream."""
    params = module.params
    problem = name_problem(params["name"])
    if problem:
        module.fail_json(msg="name=%r: %s" % (params["name"], problem))
    try:
        cache_url = base_url(params["cache_url"], "cache_url")
    except ValueError as err:
        module.fail_json(msg=str(err))
    try:
        result = copy_model(params["name"], params["models_dir"], cache_url, float(params["timeout"]),
                            check_mode=module.check_mode)
    except CacheUnavailable as err:
        return {"changed": False, "source": "upstream", "fallback": True, "reason": str(err),
                "manifest": manifest_path(params["name"]), "blobs_copied": [], "bytes_copied": 0,
                "blobs_present": []}
    except OSError as err:
        module.fail_json(msg="copying %s from the site cache %s into %s failed on this host: %s"
                         % (params["name"], cache_url, params["models_dir"], err))
    source = "site-cache" if result.changed else "local"
    return dict(result.as_dict(), changed=result.changed, source=source, fallback=False, reason="")


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "models_dir": {"type": "path", "required": True},
            "cache_url": {"type": "str", "required": True},
            "timeout": {"type": "int", "default": 60},
        },
        supports_check_mode=True,
    )
    result = run(module)
    result.pop("manifest_written", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
