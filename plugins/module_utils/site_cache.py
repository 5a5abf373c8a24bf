# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""A model copied from the site's cache host into this host's Ollama store, each blob checked by its sha256.

Ollama's store is content-addressed (`manifests/<host>/<namespace>/<model>/<tag>` and
`blobs/sha256-<hex>`) and a model moves between hosts by copying its manifest and the blobs it
names (docs/internals.md, "Models and images once per site", has the evidence from Ollama's
source). The cache host serves its store read-only (roles/site_cache's `lpfleet-site-cache.py`):

    GET /manifests/<manifest path>   the manifest file
    GET /blobs/sha256-<hex>          a complete blob

`copy_model` writes each missing blob under a temporary name, checks its sha256 and size against
the manifest, renames it into place, and writes the manifest last: Ollama lists a model once its
manifest is there (its list handler reads the manifests from disk on every call), and by then every
blob it names is complete. A failure on the cache's side (no answer, an HTTP error, a manifest
Ollama could not read, a blob whose digest or size differs) raises `CacheUnavailable`: the caller
then pulls from upstream as without a cache. A failure on this host's side (disk full, permissions)
raises `OSError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import urllib.error
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ansible.module_utils.urls import open_url

from ansible_collections.lpfleet.ai.plugins.module_utils.ollama_names import manifest_path

DIGEST_RE = re.compile(r"^sha256:([0-9a-f]{64})$")
CHUNK = 1024 * 1024
PARTIAL_SUFFIX = "-lpfleet-partial"


class CacheUnavailable(Exception):
    """The cache host could not give this model, whole and verified: pull from upstream instead."""


@dataclass
class CopyResult:
    """What `copy_model` did: blobs copied (and their bytes) and blobs this host already held."""

    manifest: str
    copied: list[str] = field(default_factory=list)
    copied_bytes: int = 0
    present: list[str] = field(default_factory=list)
    manifest_written: bool = False

    @property
    def changed(self) -> bool:
        return self.manifest_written

    def as_dict(self) -> dict[str, Any]:
        return {"manifest": self.manifest, "blobs_copied": self.copied, "bytes_copied": self.copied_bytes,
                "blobs_present": self.present, "manifest_written": self.manifest_written}


def blob_name(digest: str) -> str:
    """`sha256:<hex>` -> `sha256-<hex>` (the blob's file name); ValueError for anything else."""
    match = DIGEST_RE.match(digest or "")
    if not match:
        raise ValueError("%r is not a sha256 digest (sha256:<64 hex digits>)" % (digest,))
    return "sha256-" + match.group(1)


def manifest_blobs(document: Any) -> list[tuple[str, int]]:
    """(digest, size) of every layer and of the config of an Ollama manifest; ValueError if it is not one."""
    if not isinstance(document, dict):
        raise ValueError("the manifest is not a JSON object")
    entries = list(document.get("layers") or [])
    if document.get("config"):
        entries.append(document["config"])
    if not entries:
        raise ValueError("the manifest names no layer")
    blobs = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("size"), int) or entry["size"] < 0:
            raise ValueError("a manifest entry has no valid size: %r" % (entry,))
        blob_name(entry.get("digest", ""))
        if (entry["digest"], entry["size"]) not in blobs:
            blobs.append((entry["digest"], entry["size"]))
    return blobs


Opener = Callable[[str, float], Any]


def _open(url: str, timeout: float) -> Any:
    """GET url; CacheUnavailable on any failure or any status but 200."""
    try:
        response = open_url(url, method="GET", timeout=timeout, use_netrc=False, http_agent="lpfleet",
                            follow_redirects="none")
    except urllib.error.HTTPError as err:
        raise CacheUnavailable("%s answered HTTP %s" % (url, err.code)) from None
    except (urllib.error.URLError, OSError, socket.timeout) as err:
        raise CacheUnavailable("%s: no answer (%s)" % (url, getattr(err, "reason", err))) from None
    except Exception as err:  # noqa: BLE001 - open_url's own ConnectionError (TLS, proxy) and the like
        raise CacheUnavailable("%s: %s" % (url, err)) from None
    return response


def _read(response: Any, url: str, size: int) -> bytes:
    try:
        return response.read(size)
    except (OSError, socket.timeout, ValueError) as err:
        raise CacheUnavailable("%s: the transfer broke (%s)" % (url, err)) from None


def local_blobs_complete(models_dir: str, blobs: list[tuple[str, int]]) -> bool:
    """Whether every blob is in the store with its size (Ollama trusts a blob file that exists)."""
    for digest, size in blobs:
        path = os.path.join(models_dir, "blobs", blob_name(digest))
        if not os.path.isfile(path) or os.path.getsize(path) != size:
            return False
    return True


def installed(models_dir: str, name: str) -> bool:
    """Whether the store holds the model's manifest and every blob it names."""
    path = os.path.join(models_dir, "manifests", manifest_path(name))
    try:
        with open(path, "rb") as handle:
            blobs = manifest_blobs(json.loads(handle.read()))
    except (OSError, ValueError):
        return False
    return local_blobs_complete(models_dir, blobs)


def _download_blob(cache_url: str, models_dir: str, digest: str, size: int, timeout: float,
                   opener: Opener) -> None:
    """Copy one blob under a temporary name, check it, rename it into place."""
    name = blob_name(digest)
    target = os.path.join(models_dir, "blobs", name)
    partial = target + PARTIAL_SUFFIX
    url = "%s/blobs/%s" % (cache_url, name)
    hasher = hashlib.sha256()
    received = 0
    response = opener(url, timeout)
    try:
        with response, open(partial, "wb") as handle:
            while True:
                chunk = _read(response, url, CHUNK)
                if not chunk:
                    break
                received += len(chunk)
                if received > size:
                    raise CacheUnavailable("%s: more than the manifest's %d bytes" % (url, size))
                hasher.update(chunk)
                handle.write(chunk)
        got = "sha256:" + hasher.hexdigest()
        if received != size or got != digest:
            raise CacheUnavailable("%s: got %d bytes with digest %s, the manifest says %d bytes, %s"
                                   % (url, received, got, size, digest))
        os.chmod(partial, 0o644)
        os.replace(partial, target)
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise


def _write_atomically(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = path + PARTIAL_SUFFIX
    with open(temporary, "wb") as handle:
        handle.write(data)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def copy_model(name: str, models_dir: str, cache_url: str, timeout: float = 60.0,
               opener: Optional[Opener] = None, check_mode: bool = False) -> CopyResult:
    """Put the model `name` into the store at models_dir from the cache at cache_url (see the module doc)."""
    opener = opener or _open
    relative = manifest_path(name)
    result = CopyResult(manifest=relative)
    if installed(models_dir, name):
        return result
    url = "%s/manifests/%s" % (cache_url.rstrip("/"), relative)
    with opener(url, timeout) as response:
        raw = _read(response, url, -1)
    try:
        blobs = manifest_blobs(json.loads(raw))
    except ValueError as err:
        raise CacheUnavailable("%s: not an Ollama manifest (%s)" % (url, err)) from None
    for digest, size in blobs:
        if local_blobs_complete(models_dir, [(digest, size)]):
            result.present.append(digest)
            continue
        if not check_mode:
            os.makedirs(os.path.join(models_dir, "blobs"), exist_ok=True)
            _download_blob(cache_url.rstrip("/"), models_dir, digest, size, timeout, opener)
        result.copied.append(digest)
        result.copied_bytes += size
    if not check_mode:
        _write_atomically(os.path.join(models_dir, "manifests", relative), raw)
    result.manifest_written = True
    return result
