"""scripts/bench's measuring parts, without the lab: the PLAY RECAP reader, the tasks-run count, and the
wrapper that reads a process tree's CPU time (os.wait4) and samples its forks' memory in /proc."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench"
MIB = 1024 * 1024


@pytest.fixture(scope="module", name="bench")
def bench_module():
    loader = importlib.machinery.SourceFileLoader("bench_script", str(SCRIPT))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    sys.modules[loader.name] = module  # dataclasses look their module up there
    loader.exec_module(module)
    yield module
    del sys.modules[loader.name]


RECAP = """\
TASK [lpfleet.ai.verify : Show the results] ************************************
ok: [bench-1]

PLAY RECAP *********************************************************************
bench-1                    : ok=21   changed=3    unreachable=0    failed=0    skipped=7    rescued=1    ignored=2
bench-2                    : ok=0    changed=0    unreachable=1    failed=0    skipped=0    rescued=0    ignored=0
localhost                  : ok=2    changed=0    unreachable=0    failed=1    skipped=0    rescued=0    ignored=0

Monday 30 November 2026  13:02:02 +0000 (0:00:00.073)       0:00:03.491 *******
===============================================================================
lpfleet.ai.preflight : Gather facts ------------------------------------- 1.20s
"""


def test_recap_reads_every_host_and_counts_tasks_run(bench):
    recap = bench.parse_recap(RECAP)

    assert sorted(recap) == ["bench-1", "bench-2", "localhost"]
    assert recap["bench-1"] == {"ok": 21, "changed": 3, "unreachable": 0, "failed": 0, "skipped": 7,
                                "rescued": 1, "ignored": 2}
    # changed and ignored results are already in ok; skipped, failed, rescued and unreachable are not.
    assert bench.tasks_run(recap["bench-1"]) == 29
    assert bench.tasks_run(recap["bench-2"]) == 1
    assert bench.tasks_run(recap["localhost"]) == 3


def test_recap_of_the_last_play_recap_only(bench):
    earlier = RECAP.replace("ok=21", "ok=99")  # e.g. a playbook that runs ansible-playbook again

    recap = bench.parse_recap(earlier + RECAP)

    assert recap["bench-1"]["ok"] == 21


def test_no_recap_is_an_error_naming_the_host(bench):
    run = bench.Run("noop", 0, 1.0, 1.0, bench.MemoryPeaks(), "PLAY RECAP ***\nbench-1 : ok=3 failed=0\n")

    assert bench.per_host_tasks(run, ["bench-1"]) == [3]
    with pytest.raises(bench.BenchError, match="noop: no PLAY RECAP line for bench-2"):
        bench.per_host_tasks(run, ["bench-1", "bench-2"])


# A parent that forks 3 workers at once; each touches 24 MiB of its own and runs a grandchild that burns
# CPU and prints its own CPU seconds. The parent's 40 MiB are shared with the workers (copy-on-write).
TREE = textwrap.dedent("""\
    import os, subprocess, sys, time
    shared = bytearray(40 * 1024 * 1024)
    workers = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            own = bytearray(24 * 1024 * 1024)
            own[::4096] = b"x" * len(own[::4096])
            burn = "import resource; sum(range(4_000_000)); u = resource.getrusage(resource.RUSAGE_SELF); " \\
                   "print('cpu', u.ru_utime + u.ru_stime)"
            subprocess.run([sys.executable, "-c", burn], check=True)
            time.sleep(1.5)
            os._exit(0)
        workers.append(pid)
    for pid in workers:
        os.waitpid(pid, 0)
""")


def test_tree_cpu_includes_grandchildren_and_forks_memory_is_their_own(bench, tmp_path):
    log = tmp_path / "tree.log"

    run = bench.run_measured("tree", [sys.executable, "-c", TREE], log, interval=0.1)

    assert run.returncode == 0, run.output
    grandchildren_cpu = sum(float(line.split()[1]) for line in run.output.splitlines() if line.startswith("cpu "))
    assert grandchildren_cpu > 0
    assert run.cpu_seconds >= grandchildren_cpu
    peaks = run.peaks
    assert peaks.forks == 3
    assert 20 * MIB <= peaks.fork_unique * 1024 < 40 * MIB  # its own 24 MiB, not the parent's shared 40
    assert 20 * MIB <= peaks.worker_unique * 1024 <= peaks.fork_unique * 1024
    assert peaks.fork_rss * 1024 >= 60 * MIB  # RSS counts the shared pages too
    assert peaks.main_rss * 1024 >= 40 * MIB
    assert peaks.tree_pss * 1024 >= 40 * MIB + 3 * 20 * MIB
    assert 0 < peaks.main_cpu < run.cpu_seconds  # the parent's own share, sampled while it ran


def test_failed_command_keeps_its_exit_status(bench, tmp_path):
    run = bench.run_measured("fails", [sys.executable, "-c", "import sys; print('no'); sys.exit(3)"],
                             tmp_path / "fails.log")

    assert run.returncode == 3
    assert run.output == "no\n"
