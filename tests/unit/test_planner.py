"""The planner (plugins/plugin_utils/planner.py) behind lpfleet.ai.plan_ai_models, and the table filters."""

import copy
import itertools
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
from ansible.errors import AnsibleFilterError
from placement_reference import check_rules

from ansible_collections.lpfleet.ai.plugins.filter.plan_ai_models import plan_ai_models
from ansible_collections.lpfleet.ai.plugins.filter.records import plan_entries
from ansible_collections.lpfleet.ai.plugins.filter.tables import gpu_table, plan_table
from ansible_collections.lpfleet.ai.plugins.module_utils.aimodels_rules import validate_entries
from ansible_collections.lpfleet.ai.plugins.plugin_utils.catalog import load_catalog

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CATALOG = load_catalog()
HEADROOM = 512


def vram(model_id):
    return CATALOG[model_id]["vram_mib"]


def gpu(index, name, total):
    return {"index": index, "uuid": f"GPU-{index}", "name": name, "memory_total_mib": total,
            "memory_free_mib": total - 300, "driver_version": "550.54.14", "cuda_version": "12.4",
            "compute_capability": "8.9"}


PROFILES = {
    "docs_4090_2060": [gpu(0, "NVIDIA GeForce RTX 4090", 24564), gpu(1, "NVIDIA GeForce RTX 2060", 8192)],
    "single_8gb": [gpu(0, "NVIDIA GeForce RTX 2060 SUPER", 8192)],
    "card_6gb": [gpu(0, "NVIDIA GeForce RTX 2060", 6144)],
    "h100_80gb": [gpu(0, "NVIDIA H100 80GB HBM3", 81559)],
    "two_24gb": [gpu(0, "NVIDIA GeForce RTX 4090", 24564), gpu(1, "NVIDIA GeForce RTX 4090", 24564)],
    "no_gpu": [],
}

T2I = {"pipeline": "text-to-image", "model_id": "SG161222/RealVisXL_V4.0_Lightning", "price_per_unit": 4768371,
       "warm": True, "optimization_flags": {"SFAST": True}}
I2I = {"pipeline": "image-to-image", "model_id": "ByteDance/SDXL-Lightning", "price_per_unit": 4768371}
WHISPER = {"pipeline": "audio-to-text", "model_id": "openai/whisper-large-v3", "price_per_unit": 12882811,
           "warm": True}
LLAMA = {"pipeline": "llm", "model_id": "meta-llama/Meta-Llama-3.1-8B-Instruct", "warm": True,
         "price_per_unit": 0.18, "currency": "USD", "pixels_per_unit": 1000000}
MISTRAL = dict(LLAMA, model_id="mistralai/Mistral-7B-Instruct-v0.3", warm=False)
GEMMA = dict(LLAMA, model_id="google/gemma-2-9b-it")
LLAMA_70B = dict(LLAMA, model_id="meta-llama/Meta-Llama-3.1-70B-Instruct")
BLIP = {"pipeline": "image-to-text", "model_id": "Salesforce/blip-image-captioning-large",
        "price_per_unit": 1192093, "warm": True}
SAM2 = {"pipeline": "segment-anything-2", "model_id": "facebook/sam2-hiera-large", "price_per_unit": 4768371}
UPSCALE = {"pipeline": "upscale", "model_id": "stabilityai/stable-diffusion-x4-upscaler", "price_per_unit": 4768371,
           "warm": True, "optimization_flags": {"SFAST": True}}

# Seed 001, "Running multiple pipelines", as an lpfleet menu (the llm entry keeps the docs' url).
DOCS_MENU = [T2I, I2I, WHISPER, dict(LLAMA, url="http://llm_runner:8000")]
MENUS = {
    "docs": DOCS_MENU,
    "llm_only": [LLAMA, MISTRAL],
    "consumer_tier": [WHISPER, BLIP, LLAMA],
    "everything": [LLAMA_70B, T2I, UPSCALE, I2I, SAM2, GEMMA, MISTRAL, WHISPER],
    "cold_only": [dict(I2I), dict(WHISPER, warm=False), dict(LLAMA, warm=False)],
}
OPTION_SETS = [
    {"layout": "shared", "runner_address": "container"},
    {"layout": "per_gpu", "runner_address": "container"},
    {"layout": "per_gpu", "runner_address": "loopback"},
    {"layout": "shared", "runner_address": "loopback"},
]


def plan(profile, menu, **options):
    return plan_ai_models(copy.deepcopy(PROFILES[profile]), copy.deepcopy(menu), host="gpu-" + profile, **options)


def placed(result, model_id):
    (found,) = [p for p in result["placement"] if p["model_id"] == model_id]
    return found


def unplaced(result, model_id):
    (found,) = [u for u in result["unplaced"] if u["model_id"] == model_id]
    return found["reason"]


# --- the docs' example host -------------------------------------------------------------------


def test_docs_example_comes_out_as_far_as_the_vram_figures_allow():
    result = plan("docs_4090_2060", DOCS_MENU)
    assert placed(result, T2I["model_id"])["gpu_index"] == 0  # RTX 4090: text-to-image warm, as the docs say
    assert placed(result, WHISPER["model_id"])["gpu_index"] == 1  # RTX 2060: whisper warm, as the docs say
    # The docs put llm warm beside whisper on the 8 GB card: the catalog's figures do not fit.
    free_on_2060 = 8192 - vram(WHISPER["model_id"])
    needed = vram(LLAMA["model_id"]) + HEADROOM
    assert needed > free_on_2060
    reason = unplaced(result, LLAMA["model_id"])
    assert reason.startswith("gpu-docs_4090_2060: llm meta-llama/Meta-Llama-3.1-8B-Instruct (warm)")
    assert f"= {needed} MiB" in reason and f"{free_on_2060} MiB of 8192 MiB free" in reason
    assert f"{24564 - vram(T2I['model_id'])} MiB of 24564 MiB free" in reason
    # The docs' cold image-to-image: menu order is priority, so it comes before whisper, but with
    # text-to-image warm on the 4090 the only GPU without a container is the 8 GB 2060.
    reason = unplaced(result, I2I["model_id"])
    assert "does not fit on GPU1;" in reason and "GPU1 NVIDIA GeForce RTX 2060 has 8192 MiB of 8192" in reason
    assert result["ai_models"] == [T2I, WHISPER]
    assert result["nvidia_devices"] == "0,1" and result["stacks"] == [] and result["ollama_tags"] == []
    assert [(g["planned_mib"], g["free_after_mib"], g["warm_managed"]) for g in result["gpus"]] == [
        (vram(T2I["model_id"]), 24564 - vram(T2I["model_id"]), T2I["model_id"]),
        (vram(WHISPER["model_id"]), free_on_2060, WHISPER["model_id"])]


def test_docs_llm_entry_placed_when_whisper_is_not_warm_beside_it():
    result = plan("docs_4090_2060", [T2I, dict(LLAMA, url="http://llm_runner:8000")])
    llm = placed(result, LLAMA["model_id"])
    assert (llm["gpu_index"], llm["stack"], llm["ollama_tag"], llm["managed"]) == (1, "default", "llama3.1:8b", False)
    assert result["ai_models"][1]["url"] == "http://llm_runner:8000"
    assert result["download_mb"] == CATALOG[LLAMA["model_id"]]["download_mb"]


def test_warm_managed_order_gives_the_nvidia_device_order():
    result = plan("docs_4090_2060", [WHISPER, T2I])
    assert placed(result, WHISPER["model_id"])["gpu_index"] == 1  # best fit: the smaller card
    assert placed(result, T2I["model_id"])["gpu_index"] == 0
    # go-livepeer warms the n-th warm managed entry on the n-th -nvidia device
    assert result["nvidia_devices"] == "1,0"


# --- invariants over every profile, menu and layout ------------------------------------------


@pytest.mark.parametrize(("profile", "menu_name", "options"), [
    (p, m, o) for p, m, o in itertools.product(PROFILES, MENUS, range(len(OPTION_SETS)))])
def test_plan_invariants(profile, menu_name, options):
    menu = MENUS[menu_name]
    result = plan(profile, menu, **OPTION_SETS[options])
    gpus = {g["index"]: g for g in PROFILES[profile]}

    report = validate_entries(result["ai_models"], gpu_count=len(gpus), known_models={})
    assert report.errors == [] and report.warnings == [], [f.describe() for f in report.errors + report.warnings]
    check_rules(result, menu, PROFILES[profile])

    for reason_item in result["unplaced"]:
        reason = reason_item["reason"]
        assert reason.startswith(f"gpu-{profile}: ") and reason_item["model_id"] in reason
        assert str(vram(reason_item["model_id"])) in reason
        assert all(f"GPU{i}" in reason for i in gpus) if gpus else "no NVIDIA GPU" in reason

    llm_entries = [e for e in result["ai_models"] if e["pipeline"] == "llm"]
    stack_urls = {s["runner_url"] for s in result["stacks"]}
    assert all(e["url"] in stack_urls for e in llm_entries)
    assert sorted(m["model_id"] for s in result["stacks"] for m in s["models"]) == sorted(
        e["model_id"] for e in llm_entries)
    assert result["ollama_tags"] == sorted({m["ollama_tag"] for s in result["stacks"] for m in s["models"]})
    for stack in result["stacks"]:  # each stack reserves exactly the GPUs of its LLMs
        pools = {i for p in result["placement"] if p["stack"] == stack["name"] for i in p["gpu_pool"]}
        assert sorted(pools) == stack["gpu_indices"]


@pytest.mark.parametrize("profile", list(PROFILES))
def test_same_input_same_bytes(profile):
    first = json.dumps(plan(profile, MENUS["everything"]))
    assert json.dumps(plan(profile, MENUS["everything"])) == first
    reordered = [dict(reversed(list(g.items()))) for g in reversed(PROFILES[profile])]
    again = plan_ai_models(reordered, copy.deepcopy(MENUS["everything"]), host="gpu-" + profile)
    assert json.dumps(again) == first


def test_same_bytes_across_processes_with_different_hash_seeds():
    code = textwrap.dedent("""
        import json, sys
        from ansible_collections.lpfleet.ai.plugins.filter.plan_ai_models import plan_ai_models
        gpus, menu = json.load(sys.stdin)
        sys.stdout.write(json.dumps(plan_ai_models(gpus, menu, host="h", layout="per_gpu")))
    """)
    payload = json.dumps([PROFILES["two_24gb"], MENUS["everything"]])
    outputs = set()
    for seed in ("1", "2", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=os.path.join(REPO, "collections"))
        outputs.add(subprocess.run([sys.executable, "-c", code], input=payload, env=env, check=True,
                                   capture_output=True, text=True).stdout)
    assert len(outputs) == 1 and outputs.pop().startswith('{"host": "h"')


# --- single rules ----------------------------------------------------------------------------


def test_one_warm_managed_model_per_gpu():
    result = plan("h100_80gb", [T2I, WHISPER])
    assert placed(result, T2I["model_id"])["gpu_index"] == 0
    assert "one warm managed model per GPU" in unplaced(result, WHISPER["model_id"])


def test_llm_shares_a_gpu_with_a_warm_managed_model_when_vram_allows():
    result = plan("h100_80gb", [T2I, LLAMA])
    assert placed(result, LLAMA["model_id"])["gpu_index"] == 0
    assert result["gpus"][0]["planned_mib"] == vram(T2I["model_id"]) + vram(LLAMA["model_id"])


def test_headroom_is_configurable():
    assert plan("single_8gb", [LLAMA])["unplaced"] == []  # 7630 + 512 <= 8192
    too_much = 8192 - vram(LLAMA["model_id"]) + 1
    result = plan("single_8gb", [LLAMA], headroom_mib=too_much)
    assert f"+ {too_much} MiB headroom" in unplaced(result, LLAMA["model_id"])


def test_a_6gb_card_takes_the_small_models_only():
    result = plan("card_6gb", MENUS["consumer_tier"])
    assert placed(result, WHISPER["model_id"])["gpu_index"] == 0
    assert "one warm managed model per GPU" in unplaced(result, BLIP["model_id"])
    assert "6144 MiB" in unplaced(result, LLAMA["model_id"])


def test_spread_then_best_fit_then_lower_index():
    result = plan("two_24gb", [GEMMA, LLAMA, dict(MISTRAL, warm=True)], layout="per_gpu")
    # gemma (largest) on GPU0, llama on the idle GPU1, then mistral where the least room is left
    assert [placed(result, m["model_id"])["gpu_index"] for m in (GEMMA, LLAMA, MISTRAL)] == [0, 1, 0]


def test_cold_managed_needs_a_gpu_without_a_warm_container():
    result = plan("two_24gb", [T2I, I2I])
    assert placed(result, I2I["model_id"])["gpu_index"] == 1
    result = plan("single_8gb", [BLIP, dict(WHISPER, warm=False)])
    assert "free container slot" in unplaced(result, WHISPER["model_id"])


def test_cold_managed_must_fit_whichever_free_gpu_go_livepeer_picks():
    result = plan("docs_4090_2060", [T2I, I2I])
    reason = unplaced(result, I2I["model_id"])
    assert "does not fit on GPU1;" in reason and "GPU1 NVIDIA GeForce RTX 2060 has 8192 MiB of 8192" in reason


def test_cold_llm_must_fit_a_gpu_alone_and_prefers_room_beside_the_warm_ones():
    result = plan("two_24gb", [T2I, MISTRAL])
    assert placed(result, MISTRAL["model_id"])["gpu_index"] == 1
    result = plan("single_8gb", [LLAMA, MISTRAL])  # Ollama unloads its own idle llama to load mistral
    assert placed(result, MISTRAL["model_id"])["gpu_index"] == 0
    result = plan("single_8gb", [BLIP, MISTRAL])  # but it cannot unload go-livepeer's BLIP container
    reason = unplaced(result, MISTRAL["model_id"])
    assert "when Ollama loads it on request" in reason
    room = 8192 - vram(BLIP["model_id"])
    assert f"has {room} MiB of 8192 MiB not held by go-livepeer's warm containers" in reason


def test_no_gpu_places_nothing_and_says_why():
    result = plan("no_gpu", DOCS_MENU)
    assert result["placement"] == [] and result["ai_models"] == [] and result["nvidia_devices"] == ""
    assert all("has no NVIDIA GPU (lpfleet_gpus is empty)" in u["reason"] for u in result["unplaced"])


def test_external_containers_pass_through():
    byoc = dict(WHISPER, url="http://my-whisper-container:8000", token="t0k", capacity=2)
    result = plan("docs_4090_2060", [byoc])
    assert placed(result, WHISPER["model_id"])["gpu_index"] is None
    assert result["ai_models"] == [{"pipeline": "audio-to-text", "model_id": "openai/whisper-large-v3", "warm": True,
                                    "url": "http://my-whisper-container:8000", "token": "t0k", "capacity": 2,
                                    "price_per_unit": 12882811}]
    assert result["gpus"][0]["planned_mib"] == 0
    other_llm = dict(LLAMA, url="https://llm.example.invalid")
    assert plan("no_gpu", [other_llm])["ai_models"][0]["url"] == "https://llm.example.invalid"


def test_models_outside_the_catalog_with_their_figures():
    custom_llm = dict(LLAMA, model_id="Qwen/Qwen2.5-7B-Instruct", ollama_tag="qwen2.5:7b", vram_mib=6000,
                      download_mb=4700)
    custom = dict(BLIP, model_id="acme/captioner", vram_mib=1500)
    result = plan("two_24gb", [custom_llm, custom])
    assert placed(result, "Qwen/Qwen2.5-7B-Instruct")["ollama_tag"] == "qwen2.5:7b"
    assert placed(result, "acme/captioner")["vram_mib"] == 1500
    assert result["download_mb"] == 4700
    assert all("vram_mib" not in e and "ollama_tag" not in e and "download_mb" not in e for e in result["ai_models"])


def test_catalog_overrides_are_used():
    overrides = [{"model_id": "openai/whisper-large-v3", "vram_gb": 12}]
    result = plan("docs_4090_2060", DOCS_MENU, catalog_overrides=overrides)
    assert "11445 MiB" in unplaced(result, WHISPER["model_id"])  # 12 GB = 11444.09 MiB, rounded up
    assert placed(result, LLAMA["model_id"])["gpu_index"] == 1


def test_vram_mib_in_the_menu_overrides_the_catalog():
    result = plan("single_8gb", [dict(LLAMA, vram_mib=9000)])
    assert "needs 9000 MiB" in unplaced(result, LLAMA["model_id"])


# --- stacks and urls -------------------------------------------------------------------------


def test_shared_layout_one_stack_reserving_the_gpus_of_its_llms():
    result = plan("two_24gb", [T2I, LLAMA, MISTRAL])
    assert result["stacks"] == [{
        "name": "default", "ollama_container": "ollama", "runner_container": "llm_runner", "ollama_port": 11434,
        "runner_port": 8000, "gpu_indices": [1], "ollama_url": "http://ollama:11434",
        "runner_url": "http://llm_runner:8000",
        "ollama_host_url": "http://127.0.0.1:11434", "runner_host_url": "http://127.0.0.1:8000",
        "models": [{"ollama_tag": "llama3.1:8b", "model_id": LLAMA["model_id"], "warm": True, "download_mb": 4920},
                   {"ollama_tag": "mistral:7b", "model_id": MISTRAL["model_id"], "warm": False, "download_mb": 4100}]}]
    assert result["ollama_tags"] == ["llama3.1:8b", "mistral:7b"]
    assert result["download_mb"] == sum(CATALOG[m["model_id"]]["download_mb"] for m in (LLAMA, MISTRAL))


def test_per_gpu_layout_one_stack_per_gpu_serving_an_llm():
    result = plan("two_24gb", [GEMMA, LLAMA, dict(MISTRAL, warm=True)], layout="per_gpu")
    assert [(s["name"], s["ollama_container"], s["runner_container"], s["ollama_port"], s["runner_port"],
             s["gpu_indices"], s["runner_url"], s["ollama_url"]) for s in result["stacks"]] == [
        ("gpu0", "ollama_gpu0", "llm_runner_gpu0", 11434, 8000, [0], "http://llm_runner_gpu0:8000",
         "http://ollama_gpu0:11434"),
        ("gpu1", "ollama_gpu1", "llm_runner_gpu1", 11435, 8001, [1], "http://llm_runner_gpu1:8000",
         "http://ollama_gpu1:11434")]
    urls = {e["model_id"]: e["url"] for e in result["ai_models"]}
    assert urls[LLAMA["model_id"]] == "http://llm_runner_gpu1:8000"
    assert urls[GEMMA["model_id"]] == urls[MISTRAL["model_id"]] == "http://llm_runner_gpu0:8000"


def test_loopback_runner_address():
    result = plan("two_24gb", [T2I, LLAMA], layout="per_gpu", runner_address="loopback")
    assert result["ai_models"][1]["url"] == "http://127.0.0.1:8001"
    result = plan("two_24gb", [T2I, LLAMA], runner_address="loopback", runner_port=9000)
    assert result["ai_models"][1]["url"] == "http://127.0.0.1:9000"


def test_the_docs_url_on_an_llm_item_is_replaced_by_the_planned_runner():
    result = plan("two_24gb", [T2I, dict(LLAMA, url="http://llm_runner:8000")], layout="per_gpu")
    assert placed(result, LLAMA["model_id"])["stack"] == "gpu1"
    assert result["ai_models"][1]["url"] == "http://llm_runner_gpu1:8000"


def test_custom_names():
    result = plan("single_8gb", [LLAMA], runner_name="runner", ollama_name="llm_ollama", ollama_port=11500)
    stack = result["stacks"][0]
    assert (stack["runner_url"], stack["ollama_url"]) == ("http://runner:8000", "http://llm_ollama:11500")


# --- bad input -------------------------------------------------------------------------------


def problems_of(menu, profile="docs_4090_2060", **options):
    with pytest.raises(AnsibleFilterError) as raised:
        plan(profile, menu, **options)
    return str(raised.value)


def test_unknown_pipeline():
    message = problems_of([dict(LLAMA, pipeline="LLM")])
    assert "gpu-docs_4090_2060" in message and 'lpfleet_model_menu[0].pipeline = "LLM"' in message
    assert "write 'llm'" in message


def test_ollama_tag_as_model_id_names_the_hugging_face_id():
    message = problems_of([dict(LLAMA, model_id="llama3.1:8b")])
    assert 'lpfleet_model_menu[0].model_id = "llama3.1:8b"' in message
    assert 'write "meta-llama/Meta-Llama-3.1-8B-Instruct"' in message


def test_string_price():
    message = problems_of([T2I, dict(LLAMA, price_per_unit="0.5e-3USD")])
    assert 'lpfleet_model_menu[1].price_per_unit = "0.5e-3USD"' in message
    assert '"price_per_unit": 0.0005, "currency": "USD"' in message


def test_unknown_llm_without_tag_or_vram():
    message = problems_of([dict(LLAMA, model_id="Qwen/Qwen2.5-7B-Instruct")])
    assert "lpfleet_model_menu[0].model_id = Qwen/Qwen2.5-7B-Instruct: not in the model catalog" in message
    assert "add vram_mib and ollama_tag" in message


def test_unknown_llm_with_vram_but_no_tag():
    message = problems_of([dict(LLAMA, model_id="Qwen/Qwen2.5-7B-Instruct", vram_mib=6000)])
    assert "does not know its Ollama tag" in message and "add ollama_tag" in message


def test_unknown_model_without_vram():
    assert "add vram_mib to the item" in problems_of([dict(BLIP, model_id="acme/captioner")])


def test_catalog_model_without_a_vram_figure():
    tts = {"pipeline": "text-to-speech", "model_id": "suno/bark", "price_per_unit": 5960465}
    assert "the catalog has no VRAM figure for it" in problems_of([tts])
    assert plan("h100_80gb", [dict(tts, vram_mib=12000)])["placement"][0]["vram_mib"] == 12000


def test_missing_model_id():
    message = problems_of([T2I, {"pipeline": "llm", "price_per_unit": 1}])
    assert "lpfleet_model_menu[1].model_id: is missing" in message


def test_catalog_pipeline_mismatch():
    assert "the catalog lists meta-llama/Meta-Llama-3.1-8B-Instruct as a llm model" in problems_of(
        [dict(T2I, model_id=LLAMA["model_id"])])


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (dict(LLAMA, vram_mib="8G"), "lpfleet_model_menu[0].vram_mib = '8G': must be a positive whole number of MiB"),
        (dict(LLAMA, download_mb=0), "lpfleet_model_menu[0].download_mb = 0"),
        (dict(LLAMA, ollama_tag="llama 3"), "lpfleet_model_menu[0].ollama_tag = 'llama 3' is not an Ollama name"),
        (dict(LLAMA, ollama_tag="llama3.1:8b\n"), "ollama_tag = 'llama3.1:8b\\n' has whitespace around it"),
        (dict(LLAMA, ollama_tag="-llama:8b"), "ollama_tag = '-llama:8b' is not an Ollama name"),
        (dict(WHISPER, ollama_tag="whisper"), "only llm items served by lpfleet's Ollama stack use it"),
        (dict(LLAMA, url="http://elsewhere:8000", ollama_tag="llama3.1:8b"), "this item has an external url"),
    ],
)
def test_bad_lpfleet_keys(item, expected):
    assert expected in problems_of([item])


def test_menu_items_that_would_draw_warnings_are_refused():
    message = problems_of([dict(T2I, optimization_flags={"DEEPCACHE": True})])
    assert "Lightning or Turbo" in message


def test_every_problem_is_listed_at_once():
    message = problems_of([dict(LLAMA, pipeline="LLM"), dict(T2I, price_per_unit="0.5e-3USD"), "not a mapping"])
    assert "has 3 problem(s)" in message
    assert [line.split(".")[0].split(":")[0] for line in message.splitlines()[1:]] == [
        "- lpfleet_model_menu[0]", "- lpfleet_model_menu[1]", "- lpfleet_model_menu[2]"]


def test_menu_must_be_a_list():
    with pytest.raises(AnsibleFilterError, match="lpfleet_model_menu must be a list"):
        plan_ai_models([], {"pipeline": "llm"}, host="h")
    assert plan_ai_models([], None, host="h")["placement"] == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"layout": "per-gpu"}, "lpfleet_stack_layout (layout) must be one of shared, per_gpu"),
        ({"runner_address": "host"}, "lpfleet_runner_address (runner_address) must be one of container, loopback"),
        ({"headroom_mib": -1}, "lpfleet_vram_headroom_mib (headroom_mib) must be a whole number"),
        ({"runner_port": "8000"}, "lpfleet_runner_port (runner_port) must be a TCP port"),
        ({"runner_name": "llm runner"}, "lpfleet_runner_name (runner_name) must be a Docker container name"),
    ],
)
def test_bad_arguments(options, expected):
    with pytest.raises(AnsibleFilterError) as raised:
        plan("single_8gb", [LLAMA], **options)
    assert expected in str(raised.value) and "gpu-single_8gb" in str(raised.value)


@pytest.mark.parametrize(
    ("gpus", "expected"),
    [
        ({"index": 0}, "lpfleet_gpus must be a list"),
        ([{"index": 0, "name": "x"}], "lpfleet_gpus[0].memory_total_mib must be a whole number of MiB, 0 or more"),
        ([{"index": "0", "memory_total_mib": 1}], "lpfleet_gpus[0].index must be a whole number"),
        ([{"index": 0, "memory_total_mib": 1}, {"index": 0, "memory_total_mib": 1}], "index 0 appears twice"),
        (["GPU0"], "lpfleet_gpus[0] must be a mapping"),
    ],
)
def test_bad_gpus(gpus, expected):
    with pytest.raises(AnsibleFilterError) as raised:
        plan_ai_models(gpus, [LLAMA], host="gpu-x")
    assert expected in str(raised.value) and "gpu-x" in str(raised.value)


def test_bad_catalog_overrides_name_the_host():
    with pytest.raises(AnsibleFilterError, match="gpu-x: lpfleet_model_catalog_overrides must be a list"):
        plan_ai_models([], [LLAMA], host="gpu-x", catalog_overrides={"model_id": "a/b"})


# --- tables ----------------------------------------------------------------------------------


def test_gpu_table_is_fixed_width():
    lines = gpu_table(PROFILES["docs_4090_2060"]).splitlines()
    assert lines[0].split() == ["IDX", "NAME", "TOTAL", "MiB", "FREE", "MiB", "DRIVER", "CUDA", "CC", "UUID"]
    assert len({line.index("550.54.14") for line in lines[1:]}) == 1
    assert lines[1].split()[:6] == ["0", "NVIDIA", "GeForce", "RTX", "4090", "24564"]
    assert gpu_table([]) == "no NVIDIA GPU found"
    assert gpu_table([{"index": 0, "name": "x", "memory_total_mib": 1}]).splitlines()[1].endswith("-")
    with pytest.raises(AnsibleFilterError):
        gpu_table("nvidia")


def test_plan_table_shows_each_gpu_then_what_is_not_placed():
    text = plan_table(plan("docs_4090_2060", DOCS_MENU))
    lines = text.splitlines()
    assert lines[0] == "host gpu-docs_4090_2060, layout shared"
    assert lines[1].startswith(f"GPU0 NVIDIA GeForce RTX 4090: {vram(T2I['model_id'])} of 24564 MiB")
    assert lines[3].split()[:3] == ["warm", "text-to-image", T2I["model_id"]]
    assert "not placed:" in lines and lines[-1].startswith("  [3] gpu-docs_4090_2060: llm")
    byoc = plan_table(plan("single_8gb", [dict(WHISPER, url="http://w:1")]))
    assert "external containers (url given in the menu):" in byoc and "(nothing placed)" in byoc
    with pytest.raises(AnsibleFilterError):
        plan_table({"host": "x"})


def test_plan_table_warnings_only_shows_what_the_plan_leaves_out_and_nothing_on_a_clean_plan():
    left_out = plan_table(plan("docs_4090_2060", DOCS_MENU), warnings_only=True).splitlines()
    assert left_out[0] == "not placed:" and "lpfleet_unplaced_action: fail" in left_out[1]
    assert left_out[-1].startswith("  [3] gpu-docs_4090_2060: llm")
    assert not any(line.startswith(("host ", "GPU")) for line in left_out)
    assert plan_table(plan("single_8gb", [dict(WHISPER, url="http://w:1")]), warnings_only=True) == ""


# --- through Ansible ---------------------------------------------------------------------------


def test_the_filters_work_in_a_playbook(tmp_path):
    """The FQCN filters resolve from the checkout (ansible.cfg collections_path) and fail as Ansible errors."""
    playbook = tmp_path / "plan.yml"
    playbook.write_text(textwrap.dedent("""\
        - name: Plan
          hosts: localhost
          gather_facts: false
          vars:
            lpfleet_gpus: GPUS
            lpfleet_model_menu: MENU
          tasks:
            - name: Plan and show
              ansible.builtin.debug:
                msg: "{{ (lpfleet_gpus | lpfleet.ai.plan_ai_models(lpfleet_model_menu, host=inventory_hostname)
                          | lpfleet.ai.plan_table).splitlines() + (lpfleet_gpus | lpfleet.ai.gpu_table).splitlines() }}"
            - name: A bad menu fails
              ansible.builtin.debug:
                msg: "{{ lpfleet_gpus | lpfleet.ai.plan_ai_models([{'pipeline': 'LLM'}], host=inventory_hostname) }}"
        """).replace("GPUS", json.dumps(PROFILES["docs_4090_2060"])).replace("MENU", json.dumps(DOCS_MENU)))
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
               ANSIBLE_NOCOLOR="1")
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                           "-c", "local", str(playbook)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "GPU0 NVIDIA GeForce RTX 4090" in output and "not placed:" in output and "IDX" in output
    assert "lpfleet_model_menu[0].pipeline" in output and "write 'llm'" in output


def test_required_is_lpfleet_s_own_key_and_stays_out_of_ai_models():
    result = plan("single_8gb", [dict(LLAMA, required=True)])
    assert "required" not in result["ai_models"][0]
    assert placed(result, LLAMA["model_id"])["gpu_index"] == 0


# --- logic the roles left to the planner: required, blocking items, host-side URLs, entries with the token -----


@pytest.mark.parametrize("value", ["yes", "true", 1, None])
def test_required_must_be_a_boolean(value):
    with pytest.raises(AnsibleFilterError) as raised:
        plan("single_8gb", [LLAMA, dict(MISTRAL, required=value)])
    assert (f"lpfleet_model_menu[1].required = {value!r} is not a boolean. Fix: write required: true or "
            "required: false") in str(raised.value) and "gpu-single_8gb" in str(raised.value)


def test_an_unplaced_required_item_blocks_the_host():
    result = plan("single_8gb", [LLAMA, dict(MISTRAL, vram_mib=9000, required=True), dict(GEMMA, vram_mib=9000)])
    assert [(item["menu_index"], item["required"]) for item in result["unplaced"]] == [(1, True), (2, False)]
    assert [item["menu_index"] for item in result["blocking"]] == [1]
    problem = result["blocking_problem"]
    assert problem.startswith("gpu-single_8gb: 1 menu item(s) cannot be placed and they are marked required: true: "
                              "lpfleet_model_menu[1]: ")
    assert "needs 9000 MiB" in problem and "lpfleet_model_menu[2]" not in problem
    assert "set lpfleet_unplaced_action: warn" in problem


def test_unplaced_action_fail_makes_every_unplaced_item_block():
    result = plan("single_8gb", [LLAMA, dict(GEMMA, vram_mib=9000)], unplaced_action="fail")
    assert [item["menu_index"] for item in result["blocking"]] == [1]
    assert "cannot be placed and lpfleet_unplaced_action is fail: lpfleet_model_menu[1]" in result["blocking_problem"]


def test_nothing_blocks_when_unplaced_items_may_be_left_out():
    result = plan("single_8gb", [LLAMA, dict(GEMMA, vram_mib=9000)])
    assert result["unplaced"] and result["blocking"] == [] and result["blocking_problem"] is None


@pytest.mark.parametrize("bind_address, host", [
    ("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("", "127.0.0.1"), ("::1", "[::1]"), ("::", "[::1]"),
    ("10.0.0.5", "10.0.0.5"), ("fd00::5", "[fd00::5]"),
])
def test_stacks_carry_the_urls_the_host_reaches_them_on(bind_address, host):
    result = plan("two_24gb", [LLAMA, dict(MISTRAL, warm=True)], layout="per_gpu", bind_address=bind_address)
    assert [(stack["ollama_host_url"], stack["runner_host_url"]) for stack in result["stacks"]] == [
        (f"http://{host}:{11434 + stack['gpu_indices'][0]}", f"http://{host}:{8000 + stack['gpu_indices'][0]}")
        for stack in result["stacks"]]
    assert len(result["stacks"]) == 2


@pytest.mark.parametrize(("options", "expected"), [
    ({"bind_address": "localhost"}, "bind_address (ollama_stack_bind_address) must be an IP address"),
    ({"bind_address": 5}, "bind_address (ollama_stack_bind_address) must be an IP address"),
    ({"unplaced_action": "stop"}, "lpfleet_unplaced_action (unplaced_action) must be one of warn, fail"),
])
def test_bad_new_options_name_their_variable(options, expected):
    with pytest.raises(AnsibleFilterError, match=re.escape(expected)):
        plan("single_8gb", [LLAMA], **options)


def test_an_unknown_option_is_refused_naming_the_options():
    with pytest.raises(AnsibleFilterError, match="unknown option.s. runner_nmae; the options are host, "):
        plan("single_8gb", [LLAMA], runner_nmae="x")


def test_entries_get_the_runner_token_only_where_a_planned_runner_serves_them():
    external = dict(MISTRAL, url="http://10.0.0.9:9000", token="theirs")
    result = plan("two_24gb", [T2I, LLAMA, external])
    entries = plan_entries(result, token="s3cret")
    by_model = {entry["model_id"]: entry for entry in entries}
    assert by_model[LLAMA["model_id"]]["token"] == "s3cret"
    assert "token" not in by_model[T2I["model_id"]]                    # managed by go-livepeer
    assert by_model[MISTRAL["model_id"]]["token"] == "theirs"          # someone else's runner
    assert [entry["model_id"] for entry in entries] == [entry["model_id"] for entry in result["ai_models"]]
    planned_llama = [entry for entry in result["ai_models"] if entry["model_id"] == LLAMA["model_id"]]
    assert "token" not in planned_llama[0]                             # the plan itself is untouched
    assert plan_entries(result) == result["ai_models"]


@pytest.mark.parametrize(("plan_value", "token", "expected"), [
    ({"placement": []}, "t", "expected a plan"), (None, "t", "expected a plan"),
    ({"ai_models": [], "stacks": []}, "", "the runner token (lpfleet_runner_token) is empty"),
])
def test_plan_entries_refuses_bad_input(plan_value, token, expected):
    with pytest.raises(AnsibleFilterError, match=re.escape(expected)):
        plan_entries(plan_value, token=token)
