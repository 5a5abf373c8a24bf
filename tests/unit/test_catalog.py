"""The model catalog (catalog/models.yml) and its loader (plugins/plugin_utils/catalog.py)."""

import math
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from ansible_collections.lpfleet.ai.plugins.module_utils.aimodels_rules import PIPELINES, validate_entries
from ansible_collections.lpfleet.ai.plugins.plugin_utils import catalog as catalog_module
from ansible_collections.lpfleet.ai.plugins.plugin_utils.catalog import CatalogError, gb_to_mib, load_catalog

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# Seed 000, "Model selection for 8 GB VRAM": Ollama tag, Hugging Face id, VRAM in GB.
SEED_000_LLM_TABLE = [
    ("llama3.1:8b", "meta-llama/Meta-Llama-3.1-8B-Instruct", 8),
    ("mistral:7b", "mistralai/Mistral-7B-Instruct-v0.3", 8),
    ("gemma2:9b", "google/gemma-2-9b-it", 10),
    ("llama3.1:70b", "meta-llama/Meta-Llama-3.1-70B-Instruct", 40),
]
OLLAMA_DOWNLOAD_MB = {"llama3.1:8b": 4920, "mistral:7b": 4100, "gemma2:9b": 5400, "llama3.1:70b": 43000}
# Seed 001's default model per pipeline ("Complete field reference").
SEED_001_DEFAULTS = {
    "text-to-image": "SG161222/RealVisXL_V4.0_Lightning",
    "image-to-image": "ByteDance/SDXL-Lightning",
    "image-to-video": "stabilityai/stable-video-diffusion-img2vid-xt-1-1",
    "image-to-text": "Salesforce/blip-image-captioning-large",
    "audio-to-text": "openai/whisper-large-v3",
    "segment-anything-2": "facebook/sam2-hiera-large",
    "upscale": "stabilityai/stable-diffusion-x4-upscaler",
    "text-to-speech": "suno/bark",
}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_decimal_gigabytes_to_mib_rounded_up():
    for gigabytes in (2, 3, 8, 10, 24, 40, 0.5):
        assert gb_to_mib(gigabytes) == math.ceil(gigabytes * 10**9 / 2**20)
    assert gb_to_mib(8) == 7630 and gb_to_mib(24) == 22889  # 8e9 B = 7629.39 MiB, 24e9 B = 22888.18 MiB


def test_the_seed_000_llm_table(catalog):
    for tag, model_id, gigabytes in SEED_000_LLM_TABLE:
        item = catalog[model_id]
        assert (item["pipeline"], item["ollama_tag"], item["vram_mib"]) == ("llm", tag, gb_to_mib(gigabytes))
        assert item["download_mb"] == OLLAMA_DOWNLOAD_MB[tag]
        assert "Ollama library" in item["download_source"]


def test_the_seed_001_default_models(catalog):
    for pipeline, model_id in SEED_001_DEFAULTS.items():
        assert catalog[model_id]["pipeline"] == pipeline


def test_every_item_is_complete(catalog):
    for model_id, item in catalog.items():
        assert item["pipeline"] in PIPELINES, model_id
        assert item["vram_source"] and item["pricing_unit"], model_id
        if item["pipeline"] == "llm":
            assert item["ollama_tag"] and item["download_mb"], model_id
        else:
            assert item["ollama_tag"] is None and item["download_mb"] is None, model_id


def test_every_model_id_passes_the_aimodels_rules(catalog):
    entries = [{"pipeline": item["pipeline"], "model_id": model_id, "price_per_unit": 1,
                "url": "http://runner:8000"} for model_id, item in catalog.items()]
    report = validate_entries(entries)
    assert report.errors == [] and report.warnings == []


def test_whisper_figure_choice_is_explained(catalog):
    item = catalog["openai/whisper-large-v3"]
    assert item["vram_mib"] == gb_to_mib(3)
    assert "003" in item["vram_source"] and "12 GB" in item["vram_source"] and "001" in item["vram_source"]


def test_a_model_without_a_figure_says_so(catalog):
    assert catalog["suno/bark"]["vram_mib"] is None
    assert "vram_mib" in catalog["suno/bark"]["vram_source"]


def test_the_file_keeps_gigabytes_as_the_docs_print_them():
    with open(catalog_module.CATALOG_PATH, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)["models"]
    assert all("vram_mib" not in item and "vram_gb" in item for item in raw)


# --- overrides -----------------------------------------------------------------------------


def test_override_adds_a_model():
    catalog = load_catalog([{"model_id": "Qwen/Qwen2.5-7B-Instruct", "pipeline": "llm", "ollama_tag": "qwen2.5:7b",
                             "vram_gb": 6, "download_mb": 4700}])
    item = catalog["Qwen/Qwen2.5-7B-Instruct"]
    assert (item["vram_mib"], item["ollama_tag"], item["download_mb"]) == (gb_to_mib(6), "qwen2.5:7b", 4700)


def test_override_replaces_fields_of_a_known_model_and_records_the_source():
    catalog = load_catalog([{"model_id": "openai/whisper-large-v3", "vram_mib": 10000}])
    item = catalog["openai/whisper-large-v3"]
    assert item["vram_mib"] == 10000 and item["vram_gb"] is None
    assert item["pipeline"] == "audio-to-text"
    assert "lpfleet_model_catalog_overrides[0]" in item["vram_source"]


def test_override_keeps_fields_it_does_not_name():
    catalog = load_catalog([{"model_id": "meta-llama/Meta-Llama-3.1-8B-Instruct", "ollama_tag": "llama3.1:8b-q8"}])
    item = catalog["meta-llama/Meta-Llama-3.1-8B-Instruct"]
    assert item["ollama_tag"] == "llama3.1:8b-q8" and item["vram_mib"] == gb_to_mib(8)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"model_id": "a/b"}, "must be a list"),
        (["a/b"], "lpfleet_model_catalog_overrides[0] must be a mapping"),
        ([{"pipeline": "llm"}], "lpfleet_model_catalog_overrides[0].model_id is missing"),
        ([{"model_id": "new/model", "vram_gb": 4}], "pipeline is missing for new/model"),
        ([{"model_id": "openai/whisper-large-v3", "vram_gb": 3, "vram_mib": 3000}], "both vram_gb and vram_mib"),
        ([{"model_id": "openai/whisper-large-v3", "vram": 3}], "unknown key(s) vram"),
        ([{"model_id": "openai/whisper-large-v3", "vram_mib": "3000"}], "vram_mib must be a positive whole number"),
        ([{"model_id": "openai/whisper-large-v3", "vram_gb": -1}], "vram_gb must be a positive number"),
        ([{"model_id": "openai/whisper-large-v3", "ollama_tag": 8}], "ollama_tag must be a string"),
    ],
)
def test_bad_overrides_are_refused_naming_the_item(overrides, expected):
    with pytest.raises(CatalogError) as raised:
        load_catalog(overrides)
    assert expected in str(raised.value)


def test_a_duplicate_model_in_the_file_is_refused(tmp_path):
    path = tmp_path / "models.yml"
    path.write_text("models:\n  - {model_id: a/b, pipeline: llm, vram_gb: 1}\n  - {model_id: a/b, pipeline: llm}\n")
    with pytest.raises(CatalogError, match="listed twice"):
        load_catalog(path=path)


def test_a_broken_file_is_named(tmp_path):
    path = tmp_path / "models.yml"
    path.write_text("models: [\n")
    with pytest.raises(CatalogError, match="not valid YAML"):
        load_catalog(path=path)
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(path=tmp_path / "absent.yml")


def test_the_catalog_loads_in_an_installed_collection_layout(tmp_path):
    """Copy plugins/ and catalog/ the way ansible-galaxy installs them and load the catalog from there."""
    root = tmp_path / "ansible_collections" / "lpfleet" / "ai"
    shutil.copytree(os.path.join(REPO, "plugins"), root / "plugins",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(os.path.join(REPO, "catalog"), root / "catalog")
    code = ("from ansible_collections.lpfleet.ai.plugins.plugin_utils import catalog as c; "
            "print(c.CATALOG_PATH); print(len(c.load_catalog()))")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True).stdout
    path, count = out.split()
    assert path == str(root / "catalog" / "models.yml") and int(count) == len(load_catalog())
