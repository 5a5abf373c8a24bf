"""The plan is what runs (issue 11, item 1): go-livepeer puts each warm managed model on the GPU the plan gives it.

On the default lab host gpu-docs (RTX 4090 as GPU0, RTX 2060 as GPU1), in ai_models_livepeer_mode container,
with go-livepeer's stand-in as the node (it applies go-livepeer's rule: warm managed containers in file order,
each on the first free device of its -nvidia list, and reports which GPU each got). The menu puts whisper
first and text-to-image second; the best plan gives whisper the 8 GB card (GPU1) and text-to-image the 24 GB
card (GPU0), so it needs the non-identity order -nvidia 1,0:

- node started with -nvidia 1,0: lpfleet reads it, writes whisper then text-to-image, restarts the node, and
  the node starts whisper on GPU1 and text-to-image on GPU0;
- node started with -nvidia 0,1: lpfleet plans for it by file order (text-to-image first), and the node
  again starts each model on its planned GPU;
- node started with -nvidia 0: the plan cannot run there; the play stops in planning (role plan, before any
  change), naming the host and
  -nvidia 1,0, and aiModels.json is not touched.

Slow: about a minute and a half on a host whose Docker engine is installed (more on a fresh one).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from lab_fixtures import LabHost, group_vars, lab_hosts, require_docker
from roles_helpers import PlaybookRunner, PlayResult

pytestmark = pytest.mark.slow

HOST = LabHost("gpu-docs", "docs-4090-2060", "13")
AI_MODELS_JSON = "/root/.lpData/aiModels.json"
NODE = "livepeer"
WHISPER = "openai/whisper-large-v3"
TEXT_TO_IMAGE = "SG161222/RealVisXL_V4.0_Lightning"
MENU = [
    {"pipeline": "audio-to-text", "model_id": WHISPER, "warm": True, "price_per_unit": 12882811,
     "pixels_per_unit": 1},
    {"pipeline": "text-to-image", "model_id": TEXT_TO_IMAGE, "warm": True, "price_per_unit": 4768371},
]
# The stand-in node starts in under a second: 5 s of watching after lpfleet's restart is plenty here.
EXTRA_VARS = {"lpfleet_model_menu": MENU, "ai_models_livepeer_mode": "container",
              "ai_models_livepeer_container": NODE, "ai_models_node_settle_seconds": 5}
STATUS = ("import urllib.request; "
          "print(urllib.request.urlopen('http://127.0.0.1:8935/status', timeout=5).read().decode())")


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlaybookRunner]:
    """gpu-docs with its Docker engine; its previous aiModels.json is put back and the node removed at the end."""
    require_docker()
    if HOST.name not in lab_hosts():
        pytest.skip(f"the default lab host {HOST.name} is not up (make lab-up)")
    saved = HOST.exec("cat", AI_MODELS_JSON, check=False)
    HOST.exec("rm", "-f", AI_MODELS_JSON)  # so that the first converge writes it and restarts the node
    runner = PlaybookRunner(tmp_path_factory.mktemp("placement-order"), [HOST])
    result = runner.run("site.yml", HOST.name, dict(EXTRA_VARS, ai_models_livepeer_mode="none"),
                        options=["--tags", "docker_engine"], timeout=900)
    assert result.returncode == 0, result.describe()
    try:
        yield runner
    finally:
        HOST.exec("docker", "rm", "-f", NODE, check=False)
        if saved.returncode == 0:
            HOST.put(AI_MODELS_JSON, saved.stdout)
        else:
            HOST.exec("rm", "-f", AI_MODELS_JSON)


def start_node(nvidia: str) -> None:
    """go-livepeer's stand-in as the container NODE, reading the host's aiModels.json, with -nvidia NVIDIA."""
    HOST.exec("docker", "rm", "-f", NODE, check=False)
    HOST.exec("docker", "pull", "-q", group_vars()["ai_models_livepeer_image"], timeout=180)
    HOST.exec("docker", "run", "-d", "--name", NODE, "-v", "/root/.lpData:/root/.lpData",
              group_vars()["ai_models_livepeer_image"], "serve", "-aiModels", AI_MODELS_JSON, "-nvidia", nvidia,
              "-network", "offchain", "-httpAddr", "127.0.0.1:8935", "-stayUp", timeout=180)


def started_at() -> str:
    return HOST.exec("docker", "inspect", "-f", "{{.State.StartedAt}}", NODE).stdout.decode().strip()


def node_status_after_restart(first_start: str) -> dict[str, Any]:
    """The node's start-up report, once lpfleet's handler has restarted it (its start time is no longer FIRST_START)."""
    deadline = time.monotonic() + 60
    while True:
        answer = HOST.exec("docker", "exec", NODE, "python3", "-c", STATUS, check=False)
        if answer.returncode == 0 and started_at() != first_start:
            return json.loads(answer.stdout)
        assert time.monotonic() < deadline, f"the node was not restarted, or does not answer: {answer.stderr!r}"
        time.sleep(1)


def converge(runner: PlaybookRunner) -> PlayResult:
    return runner.run("site.yml", HOST.name, EXTRA_VARS, options=["--tags", "ai_models"], timeout=600)


def written_order() -> list[str]:
    return [entry["model_id"] for entry in json.loads(HOST.exec("cat", AI_MODELS_JSON).stdout)]


def warm_gpus(status: dict[str, Any]) -> dict[str, str]:
    assert status["ok"], status
    return {warm["model_id"]: warm["gpu"] for warm in status["warm_gpus"]}


@pytest.mark.parametrize(("nvidia", "file_order"), [
    ("1,0", [WHISPER, TEXT_TO_IMAGE]),  # the order the plan needs
    ("0,1", [TEXT_TO_IMAGE, WHISPER]),  # planned for by file order
])
def test_each_warm_model_starts_on_the_gpu_the_plan_gives_it(runner, nvidia, file_order):
    start_node(nvidia)
    first_start = started_at()
    result = converge(runner)
    assert result.returncode == 0 and result.recap[HOST.name]["failed"] == 0, result.describe()
    assert written_order() == file_order
    assert warm_gpus(node_status_after_restart(first_start)) == {WHISPER: "1", TEXT_TO_IMAGE: "0"}


def test_a_node_nvidia_that_cannot_carry_the_plan_stops_before_anything_is_written(runner):
    start_node("0")
    before = HOST.exec("sha256sum", AI_MODELS_JSON, check=False).stdout
    result = converge(runner)
    assert result.returncode != 0, result.describe()
    failure = result.the_failure_of(HOST.name)
    assert failure.task == "lpfleet.ai.plan : Stop when go-livepeer's -nvidia cannot carry the plan", result.describe()
    for fragment in ("gpu-docs: go-livepeer runs with -nvidia 0", "The plan needs -nvidia 1,0",
                     "Fix: start go-livepeer with -nvidia 1,0"):
        assert fragment in failure.msg, failure.msg
    assert HOST.exec("sha256sum", AI_MODELS_JSON, check=False).stdout == before
