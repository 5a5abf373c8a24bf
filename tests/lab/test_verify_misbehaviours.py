"""verify.yml against runners that misbehave in the ways an unknown runner image might (issue 14).

The session's shared converged host (conftest.py's `converged_host`: the docs' shape, RTX 4090 + RTX 2060)
is converged in the per_gpu layout with two warm LLMs: mistral:7b on GPU 0 (ollama_gpu0, llm_runner_gpu0
:8000) and llama3.1:8b on GPU 1 (ollama_gpu1, llm_runner_gpu1 :8001); both Ollamas share the model
volume, so both list both tags.
Then, for each case, only the runner containers are recreated with the runner stand-in's lab-only
misbehaviour settings (RUNNER_LAB_*, lab/standins/README.md), verify.yml runs, and the runners and
Ollamas are put back as the plan has them. To keep the lab time short, each verify run carries two
misbehaviours, one per runner, chosen so that neither disturbs what the other's checks read.

Slow: about three minutes, the switch of the shared host to per_gpu included (no host or converge of its own).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import yaml
from roles_helpers import CONVERGED_HOST, ConvergedHost, PlaybookRunner, PlayResult, ollama_api

pytestmark = pytest.mark.slow

HOST = CONVERGED_HOST
LLAMA_ID = "meta-llama/Meta-Llama-3.1-8B-Instruct"
MISTRAL_ID = "mistralai/Mistral-7B-Instruct-v0.3"
PRICED = {"price_per_unit": 0.18, "currency": "USD", "pixels_per_unit": 1000000}
PER_GPU = {
    "lpfleet_stack_layout": "per_gpu",
    "lpfleet_model_menu": [dict(PRICED, pipeline="llm", model_id=LLAMA_ID, warm=True),
                           dict(PRICED, pipeline="llm", model_id=MISTRAL_ID, warm=True)],
}
# Where the planner puts them (the 8B fits the 2060 best; one warm model per GPU).
STACKS = {
    "gpu0": {"service": "ollama-ai-runner-gpu0", "runner_port": 8000, "ollama_port": 11434, "tag": "mistral:7b",
             "model_id": MISTRAL_ID},
    "gpu1": {"service": "ollama-ai-runner-gpu1", "runner_port": 8001, "ollama_port": 11435, "tag": "llama3.1:8b",
             "model_id": LLAMA_ID},
}
PLANNED_TAGS = {"mistral:7b", "llama3.1:8b"}
PROJECT_DIR = "/opt/lpfleet/ollama-stack"
OVERRIDE = "/run/lpfleet-verify-misbehaviour.yaml"
VERIFY_FAILED = "lpfleet.ai.verify : Require every check to pass"
# A tag the lab registry serves that nothing here plans: the "own download" of a misbehaving runner.
OWN_COPY = "llama3.2:3b"

DURATIONS: dict[str, float] = {}


@pytest.fixture(scope="module")
def lab(converged_host: ConvergedHost) -> Iterator[PlaybookRunner]:
    """The shared host converged by site.yml in per_gpu (each case puts the runners back as the plan has them)."""
    started = time.monotonic()
    converged_host.converge(PER_GPU)
    DURATIONS["converge (site.yml, per_gpu, on the shared host)"] = time.monotonic() - started
    try:
        yield converged_host.runner
    finally:
        print("\nverify misbehaviours, seconds: " + json.dumps({k: round(v, 1) for k, v in DURATIONS.items()}))


# --- helpers ------------------------------------------------------------------------------------


def runner_answers(port: int) -> bool:
    script = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/version', timeout=5)"
    return HOST.exec("python3", "-c", script, check=False).returncode == 0


def wait_for_runners(timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not all(runner_answers(stack["runner_port"]) for stack in STACKS.values()):
        if time.monotonic() > deadline:
            pytest.fail(f"the runners of {HOST.name} did not answer within {timeout} s")
        time.sleep(0.5)


def recreate_runners(override: bool = False) -> None:
    """`docker compose up` of the two runners only; -t 0: the stand-in (PID 1) ignores SIGTERM, no 10 s wait."""
    files = ["-f", "compose.yaml"] + (["-f", OVERRIDE] if override else [])
    services = [stack["service"] for stack in STACKS.values()]
    HOST.shell(f"cd {PROJECT_DIR} && docker compose {' '.join(files)} up -d --no-deps --force-recreate -t 0 "
               f"{' '.join(services)}", timeout=180)


def misbehave(settings: dict[str, dict[str, str]]) -> None:
    """Recreate both runners, each with its stack's RUNNER_LAB_* settings added."""
    document = {"services": {STACKS[stack]["service"]: {"environment": env} for stack, env in settings.items()}}
    HOST.put(OVERRIDE, yaml.safe_dump(document).encode())
    recreate_runners(override=True)
    wait_for_runners()


def restore() -> None:
    """The runners as the plan has them; nothing loaded or pulled that the plan does not put there."""
    recreate_runners()
    for stack in STACKS.values():
        port = stack["ollama_port"]
        for model in ollama_api(HOST, "/api/ps", port=port)["models"]:
            if model["name"] != stack["tag"]:
                ollama_api(HOST, "/api/generate", {"model": model["name"], "keep_alive": 0}, port=port)
    for model in ollama_api(HOST, "/api/tags")["models"]:
        if model["name"] not in PLANNED_TAGS:
            ollama_api(HOST, "/api/delete", {"model": model["name"]})
    wait_for_runners()


def verify(lab: PlaybookRunner, label: str) -> PlayResult:
    started = time.monotonic()
    result = lab.run("verify.yml", HOST.name, PER_GPU, timeout=600)
    DURATIONS[label] = time.monotonic() - started
    return result


def runner_failure(result: PlayResult, stack: str) -> str:
    """The part of verify's failure message about STACK's runner."""
    failure = result.the_failure_of(HOST.name)
    assert failure.task == VERIFY_FAILED, result.describe()
    prefix = f"runner llm_runner_{stack} (http://127.0.0.1:{STACKS[stack]['runner_port']}) with model " \
             f"{STACKS[stack]['model_id']}: "
    parts = [part for part in failure.msg.split(" | ") if prefix in part]
    assert len(parts) == 1, f"no single failure of llm_runner_{stack}:\n{failure.msg}"
    return parts[0]


def assert_says(text: str, *fragments: str, result: PlayResult) -> None:
    missing = [fragment for fragment in fragments if fragment not in text]
    assert not missing, f"the message lacks {missing}:\n{text}\n\n{result.describe()}"


# --- the cases ----------------------------------------------------------------------------------


def test_a_healthy_host_passes(lab: PlaybookRunner) -> None:
    result = verify(lab, "verify, healthy host")
    assert result.returncode == 0, result.describe()
    assert result.recap[HOST.name]["changed"] == 0, result.describe()


# id: ({stack: RUNNER_LAB_* settings}, {stack: what verify must say about that runner})
CASES: dict[str, tuple[dict[str, dict[str, str]], dict[str, list[str]]]] = {
    "absent-tag+other-gpus-ollama": (
        {"gpu0": {"RUNNER_LAB_ASK_TAG": "mistral:7b-instruct-q8_0"},
         "gpu1": {"RUNNER_LAB_OLLAMA_URL": "http://ollama_gpu0:11434"}},
        {"gpu0": ["runner check llm failed after 1 attempt(s)", "the runner says the model is not found (it asked for "
                  f"the tag mistral:7b-instruct-q8_0, the plan serves {MISTRAL_ID} as mistral:7b)",
                  "retrying cannot fix it", "Fix:"],
         "gpu1": ["runner check served failed", f"{LLAMA_ID} (tag llama3.1:8b) is loaded in Ollama ollama_gpu0, which "
                  "the plan does not give it; the plan serves it from Ollama ollama_gpu1: the runner talks to another "
                  "GPU's Ollama", "Fix:"]}),
    "other-present-tag+health-text": (
        {"gpu0": {"RUNNER_LAB_ASK_TAG": "llama3.1:8b"}, "gpu1": {"RUNNER_LAB_HEALTH_TEXT": "1"}},
        {"gpu0": ["runner check served failed", "Ollama ollama_gpu0 has llama3.1:8b loaded, which the plan does not "
                  f"put there (it plans mistral:7b): the runner maps {MISTRAL_ID} to another tag", "Fix:"],
         "gpu1": ["runner check health failed after 1 attempt(s)", "expected a JSON content type",
                  "content type 'text/plain; charset=utf-8'"]}),
    "ignores-model+old-protocol": (
        {"gpu0": {"RUNNER_LAB_IGNORE_MODEL": "1"}, "gpu1": {"RUNNER_LAB_PROTOCOL": "2024"}},
        {"gpu0": ["runner check llm failed after 1 attempt(s)", f"the answer's model is '{LLAMA_ID}', not the "
                  f"requested '{MISTRAL_ID}': the runner ignores the request's model"],
         "gpu1": ["runner check llm failed after 1 attempt(s)", "the runner speaks go-livepeer's pre-2025 /llm "
                  "protocol (a form with prompt and model_id", "status 422"]}),
    "ignores-token+own-pull": (
        {"gpu0": {"RUNNER_LAB_IGNORE_TOKEN": "1"}, "gpu1": {"RUNNER_LAB_ASK_TAG": OWN_COPY, "RUNNER_LAB_PULL": "1"}},
        {"gpu0": ["runner check token failed", "a request without the runner's token got HTTP 200, not 401: the "
                  "runner ignores its AUTH_TOKEN"],
         "gpu1": ["runner check served failed", f"{OWN_COPY} appeared in Ollama ollama_gpu1 during the smoke requests "
                  f"for {LLAMA_ID}; the plan pulled llama3.1:8b: the runner pulls its own copy", "Fix:"]}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_verify_names_each_misbehaving_runner(lab: PlaybookRunner, case: str) -> None:
    settings, expected = CASES[case]
    misbehave(settings)
    try:
        result = verify(lab, f"verify, {case}")
    finally:
        restore()

    assert result.returncode != 0, f"verify passed with {settings}:\n{result.describe()}"
    assert result.recap[HOST.name]["changed"] == 0, result.describe()
    assert result.the_failure_of(HOST.name).msg.startswith(f"{HOST.name}: 2 check(s) failed: "), result.describe()
    for stack, fragments in expected.items():
        assert_says(runner_failure(result, stack), *fragments, result=result)
    print(f"\n{case}: {result.the_failure_of(HOST.name).msg}")

