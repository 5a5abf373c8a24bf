"""Placement rules of issue 11: the hosts the issue measured, go-livepeer's -nvidia, bad menus and options,
GPUs without usable memory, VRAM never below the weights, the catalog parsed once."""

import copy

import pytest
from ansible.errors import AnsibleFilterError
from placement_reference import check_rules

from ansible_collections.lpfleet.ai.plugins.filter.plan_ai_models import plan_ai_models
from ansible_collections.lpfleet.ai.plugins.filter.tables import plan_table
from ansible_collections.lpfleet.ai.plugins.plugin_utils import catalog as catalog_module
from ansible_collections.lpfleet.ai.plugins.plugin_utils.catalog import load_catalog, weights_floor_mib

LLAMA_8B = {"pipeline": "llm", "model_id": "meta-llama/Meta-Llama-3.1-8B-Instruct", "warm": True,
            "price_per_unit": 0.18, "currency": "USD", "pixels_per_unit": 1000000}
LLAMA_70B = dict(LLAMA_8B, model_id="meta-llama/Meta-Llama-3.1-70B-Instruct", price_per_unit=0.9)
MISTRAL = dict(LLAMA_8B, model_id="mistralai/Mistral-7B-Instruct-v0.3")
WHISPER = {"pipeline": "audio-to-text", "model_id": "openai/whisper-large-v3", "warm": True,
           "price_per_unit": 12882811, "pixels_per_unit": 1}
BLIP = {"pipeline": "image-to-text", "model_id": "Salesforce/blip-image-captioning-large", "price_per_unit": 1192093}
T2I = {"pipeline": "text-to-image", "model_id": "SG161222/RealVisXL_V4.0_Lightning", "warm": True,
       "price_per_unit": 4768371}
I2I = {"pipeline": "image-to-image", "model_id": "ByteDance/SDXL-Lightning", "price_per_unit": 4768371}
SAM2 = {"pipeline": "segment-anything-2", "model_id": "facebook/sam2-hiera-large", "price_per_unit": 4768371}


def gpu(index, total, name="GPU"):
    return {"index": index, "name": name, "memory_total_mib": total}


H100 = 81559
DOCS_HOST = [gpu(0, 24564, "NVIDIA GeForce RTX 4090"), gpu(1, 8192, "NVIDIA GeForce RTX 2060")]


def plan(gpus, menu, **options):
    result = plan_ai_models(copy.deepcopy(gpus), copy.deepcopy(menu), host="gpu-x", **options)
    check_rules(result, menu, gpus, headroom=options.get("headroom_mib", 512))
    return result


def gpu_of(result, model_id):
    (found,) = [p for p in result["placement"] if p["model_id"] == model_id]
    return found["gpu_index"]


def served(result):
    return [p["model_id"] for p in result["placement"]]


# --- the hosts the issue measured --------------------------------------------------------------


def test_8xh100_spreads_the_warm_models_and_keeps_the_rest_for_cold_ones():
    menu = [LLAMA_70B, LLAMA_8B, WHISPER, BLIP]  # the example inventory's 80 GB menu
    result = plan([gpu(i, H100) for i in range(8)], menu, layout="per_gpu")
    warm_gpus = [gpu_of(result, m["model_id"]) for m in (LLAMA_70B, LLAMA_8B, WHISPER)]
    assert sorted(warm_gpus) == [0, 1, 2]  # one warm model per GPU while GPUs are idle
    (blip,) = [p for p in result["placement"] if p["model_id"] == BLIP["model_id"]]
    assert blip["gpu_pool"] == [1, 2, 3, 4, 5, 6, 7] and blip["gpu_index"] is None
    assert result["nvidia_devices"] == "0,1,2,3,4,5,6,7"


def test_8_and_12_gb_serve_llm_whisper_and_blip_all_warm():
    result = plan([gpu(0, 8192), gpu(1, 12288)], [LLAMA_8B, WHISPER, dict(BLIP, warm=True)], layout="per_gpu")
    assert result["unplaced"] == []
    assert gpu_of(result, LLAMA_8B["model_id"]) == 1 and gpu_of(result, BLIP["model_id"]) == 1
    assert gpu_of(result, WHISPER["model_id"]) == 0


def test_a_cold_managed_model_needs_one_gpu_without_a_container_where_it_fits():
    result = plan([gpu(0, 24564), gpu(1, 8192), gpu(2, H100)], [T2I, I2I, WHISPER])
    assert served(result) == [T2I["model_id"], I2I["model_id"], WHISPER["model_id"]]
    assert gpu_of(result, I2I["model_id"]) == 2 and result["nvidia_devices"] == "0,1,2"


def test_menu_order_is_priority_an_item_is_never_left_out_for_a_later_one():
    # whisper first: it must be served even though sam2 (later) would like the only free GPU.
    result = plan([gpu(0, 24564)], [dict(WHISPER, warm=True), dict(SAM2, warm=True)])
    assert served(result) == [WHISPER["model_id"]]
    assert "one warm managed model per GPU" in result["unplaced"][0]["reason"]


# --- go-livepeer's -nvidia ----------------------------------------------------------------------


def test_the_plan_names_the_nvidia_order_its_placement_needs():
    result = plan(DOCS_HOST, [WHISPER, T2I])
    assert (gpu_of(result, WHISPER["model_id"]), gpu_of(result, T2I["model_id"])) == (1, 0)
    assert result["nvidia_devices"] == "1,0" and result["nvidia_problem"] is None


def test_the_node_s_nvidia_is_planned_for_by_file_order():
    result = plan(DOCS_HOST, [WHISPER, T2I], livepeer_nvidia="0,1")
    assert [e["model_id"] for e in result["ai_models"]] == [T2I["model_id"], WHISPER["model_id"]]
    assert result["nvidia_devices"] == "0,1" and result["nvidia_problem"] is None
    assert (gpu_of(result, WHISPER["model_id"]), gpu_of(result, T2I["model_id"])) == (1, 0)
    result = plan(DOCS_HOST, [WHISPER, T2I], livepeer_nvidia="1,0")
    assert [e["model_id"] for e in result["ai_models"]] == [WHISPER["model_id"], T2I["model_id"]]
    assert plan(DOCS_HOST, [WHISPER, T2I], livepeer_nvidia=" all ")["nvidia_devices"] == "0,1"


@pytest.mark.parametrize(("value", "says"), [
    ("0", "with it, lpfleet_model_menu[1] (text-to-image SG161222/RealVisXL_V4.0_Lightning) would be left out"),
    ("", "runs without -nvidia"),
    ("0,2", "the host has no GPU 2"),
    ("GPU-967f", "a list of distinct GPU indices"),
    ("0,0", "a list of distinct GPU indices"),
])
def test_a_node_nvidia_that_cannot_carry_the_plan_is_a_problem_naming_the_value_needed(value, says):
    result = plan(DOCS_HOST, [WHISPER, T2I], livepeer_nvidia=value)
    problem = result["nvidia_problem"]
    assert problem.startswith("gpu-x: go-livepeer runs with -nvidia ") and says in problem
    assert "The plan needs -nvidia 1,0" in problem and "Fix: start go-livepeer with -nvidia 1,0" in problem
    assert result["nvidia_devices"] == "1,0"  # the plan shown is the one the fix gives


def test_without_managed_models_any_node_nvidia_will_do():
    result = plan(DOCS_HOST, [LLAMA_8B], livepeer_nvidia="")
    assert result["nvidia_problem"] is None and result["nvidia_devices"] == ""


def test_a_cold_model_must_fit_every_free_gpu_the_node_lists():
    result = plan([gpu(0, 8192), gpu(1, 24564)], [I2I], livepeer_nvidia="0,1")
    problem = result["nvidia_problem"]
    assert "The plan needs -nvidia 1" in problem
    result = plan([gpu(0, 8192), gpu(1, 24564)], [I2I, WHISPER], livepeer_nvidia="0,1")
    # whisper warm takes GPU0, the first listed; the cold image-to-image fits the 24 GB GPU1 that is left.
    assert result["nvidia_problem"] is None and served(result) == [I2I["model_id"], WHISPER["model_id"]]


def test_a_refused_cold_model_names_the_listed_gpu_that_is_too_small():
    result = plan([gpu(0, 24564), gpu(1, 8192)], [T2I, I2I])
    reason = result["unplaced"][0]["reason"]
    assert "does not fit on GPU1;" in reason and "without a warm container" in reason


# --- layouts: only what is enforced is named ------------------------------------------------------


def test_shared_layout_reserves_the_llm_gpus_and_names_a_pool_not_a_gpu():
    result = plan([gpu(0, 8192), gpu(1, 8192)], [LLAMA_8B, MISTRAL])
    (stack,) = result["stacks"]
    assert stack["gpu_indices"] == [0, 1]
    assert [(p["gpu_index"], p["gpu_pool"]) for p in result["placement"]] == [(None, [0, 1]), (None, [0, 1])]
    assert "one Ollama reserves GPUs 0,1" in result["notes"][0]
    assert "GPUs 0,1 (where on them is decided at run time)" in plan_table(result)


def test_shared_layout_with_one_llm_gpu_names_it():
    result = plan(DOCS_HOST, [T2I, LLAMA_8B])
    assert result["stacks"][0]["gpu_indices"] == [1] and gpu_of(result, LLAMA_8B["model_id"]) == 1
    assert result["notes"] == []


def test_per_gpu_layout_pins_each_llm_to_its_gpu():
    result = plan([gpu(0, 8192), gpu(1, 8192)], [LLAMA_8B, MISTRAL], layout="per_gpu")
    assert [s["gpu_indices"] for s in result["stacks"]] == [[0], [1]]
    assert [p["gpu_index"] for p in result["placement"]] == [0, 1]


# --- bad menus and options -------------------------------------------------------------------------


def test_the_same_llm_twice_is_refused():
    with pytest.raises(AnsibleFilterError) as raised:
        plan_ai_models(DOCS_HOST, [LLAMA_8B, WHISPER, dict(LLAMA_8B, warm=True)], host="gpu-x")
    message = str(raised.value)
    assert "gpu-x" in message and "lpfleet_model_menu[2] repeats lpfleet_model_menu[0]" in message
    assert "Fix: keep one item" in message


def test_per_gpu_ports_that_collide_are_refused():
    gpus = [gpu(0, 8192), gpu(1, 8192)]
    with pytest.raises(AnsibleFilterError) as raised:
        plan_ai_models(gpus, [LLAMA_8B, MISTRAL], host="gpu-x", layout="per_gpu", runner_port=11433)
    message = str(raised.value)
    assert "lpfleet_runner_port" in message and "port 11434" in message and "ollama_gpu0" in message
    assert "lpfleet_model_menu[1]" in message and "Fix:" in message


def test_ports_beyond_65535_are_refused():
    gpus = [gpu(0, 8192), gpu(9999, 8192)]
    with pytest.raises(AnsibleFilterError) as raised:
        plan_ai_models(gpus, [LLAMA_8B, MISTRAL], host="gpu-x", layout="per_gpu", runner_port=60000)
    assert "would publish port 69999, outside 1-65535" in str(raised.value)


def test_two_containers_with_one_name_are_refused():
    with pytest.raises(AnsibleFilterError) as raised:
        plan_ai_models(DOCS_HOST, [LLAMA_8B], host="gpu-x", runner_name="ollama")
    assert "lpfleet_runner_name" in str(raised.value) and "has the name of the ollama container" in str(raised.value)


def test_a_gpu_without_usable_memory_is_planned_around_with_a_warning():
    result = plan([gpu(0, 0, "broken"), gpu(1, 8192)], [LLAMA_8B, WHISPER])
    assert gpu_of(result, LLAMA_8B["model_id"]) == 1 and result["gpus"][0]["usable"] is False
    assert result["warnings"][0].startswith("gpu-x: GPU0 broken reports 0 MiB of memory")
    assert "warning: gpu-x: GPU0 broken" in plan_table(result)


# --- VRAM never below the weights ------------------------------------------------------------------


def test_the_70b_model_gets_at_least_its_weights_plus_the_margin():
    download_mb = load_catalog()[LLAMA_70B["model_id"]]["download_mb"]
    weights_mib = -(-download_mb * 10**6 // 2**20)
    assert weights_floor_mib(download_mb) == weights_mib + weights_mib // 10 + 1  # 10%, rounded up
    result = plan([gpu(0, H100)], [LLAMA_70B])
    (placed,) = result["placement"]
    assert placed["vram_mib"] == weights_floor_mib(download_mb) > load_catalog()[LLAMA_70B["model_id"]]["vram_mib"]
    assert "43000 MB download" in placed["vram_basis"] and "38147 MiB" in placed["vram_basis"]
    refused = plan([gpu(0, 45000)], [LLAMA_70B])["unplaced"][0]["reason"]
    assert "43000 MB download" in refused


def test_a_menu_vram_below_the_weights_is_raised_too():
    result = plan([gpu(0, 24564)], [dict(LLAMA_8B, vram_mib=1000)])
    assert result["placement"][0]["vram_mib"] == weights_floor_mib(4920) == 5717


# --- speed: the catalog is parsed once per process ----------------------------------------------


def test_the_catalog_file_is_parsed_once_per_process():
    load_catalog()
    before = catalog_module._parsed_catalog.cache_info()
    for _ in range(5):
        plan_ai_models(DOCS_HOST, [LLAMA_8B], host="gpu-x")
    after = catalog_module._parsed_catalog.cache_info()
    assert after.misses == before.misses and after.hits >= before.hits + 5
