"""The shared converged lab host: one host converged by site.yml once per test session (CI time).

A full converge of a fresh lab host costs about two minutes; the lab tests that need a converged host
share this one instead of booting and converging their own. Use the session fixture `converged_host`
(no import needed: pytest finds it here) and ask it for the state you need:

    @pytest.fixture(scope="module")
    def host(converged_host: ConvergedHost) -> Iterator[LabHost]:
        yield converged_host.converge()            # site.yml with the lab inventory's settings
        converged_host.spoil()                     # when your tests leave the host otherwise

    converged_host.converge({"lpfleet_stack_layout": "per_gpu", ...})   # another plan: site.yml again
    converged_host.runner.run("verify.yml", converged_host.name)        # any playbook against it

`converge(extra_vars)` runs site.yml only when the host is not already converged with exactly those
extra vars (a second call with the same vars costs nothing); a test that changes the host behind
that (other vars, a deleted volume, a stopped service it does not restart) calls `spoil()`, so that
the next `converge()` runs site.yml again and repairs it. Tests with playbook runners of their own
can name `CONVERGED_HOST` (roles_helpers, with the class `ConvergedHost`) in their inventory.

The host is created fresh when the session first asks for it (a leftover of an earlier session is
removed first) and removed at the end. LPFLEET_LAB_KEEP_CONVERGED=1 keeps it between sessions and
reuses it (the first converge() still runs site.yml once): for developers re-running one test, not CI.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from lab_fixtures import LABCTL, lab_hosts, labctl_up, require_docker, run
from roles_helpers import CONVERGED_HOST, ConvergedHost, PlaybookRunner

KEEP_VARIABLE = "LPFLEET_LAB_KEEP_CONVERGED"


@pytest.fixture(scope="session")
def converged_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConvergedHost]:
    """The shared lab host (CONVERGED_HOST), up; converged on the first converge() call."""
    require_docker()
    host = CONVERGED_HOST
    keep = os.environ.get(KEEP_VARIABLE) == "1"
    if host.name in lab_hosts() and not keep:
        run([str(LABCTL), "rm-host", host.name], timeout=300)
    shared: ConvergedHost | None = None
    try:
        labctl_up({host.name: (host.profile_name, host.debian)})
        shared = ConvergedHost(host, PlaybookRunner(tmp_path_factory.mktemp("converged-host"), [host]))
        yield shared
    finally:
        if not keep:
            run([str(LABCTL), "rm-host", host.name], timeout=300, check=False)
        if shared is not None and shared.runs:
            print(f"\nshared converged host {host.name}, site.yml runs (seconds): "
                  + json.dumps([[label, round(seconds, 1)] for label, seconds in shared.runs]))
