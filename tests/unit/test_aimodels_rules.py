"""go-livepeer's aiModels.json rules and lpfleet's advice (plugins/module_utils/aimodels_rules.py)."""

import json

import pytest

from ansible_collections.lpfleet.ai.plugins.module_utils import aimodels_rules as rules

T2I = {
    "pipeline": "text-to-image",
    "model_id": "SG161222/RealVisXL_V4.0_Lightning",
    "price_per_unit": 4768371,
    "warm": True,
}
LLM = {
    "pipeline": "llm",
    "model_id": "meta-llama/Meta-Llama-3.1-8B-Instruct",
    "warm": True,
    "price_per_unit": 0.18,
    "currency": "USD",
    "pixels_per_unit": 1000000,
    "url": "http://llm_runner:8000",
}


def entry(base=None, **changes):
    result = dict(base or T2I)
    for key, value in changes.items():
        if value is ...:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def findings(report_part, field=None):
    return [f for f in report_part if field is None or f.field == field]


def only_error(entries, field, **kwargs):
    report = rules.validate_entries(entries, **kwargs)
    matching = findings(report.errors, field)
    assert matching, f"expected an error on {field}, got {[f.describe() for f in report.errors]}"
    return matching[0]


def only_warning(entries, field, **kwargs):
    report = rules.validate_entries(entries, **kwargs)
    assert not report.errors, [f.describe() for f in report.errors]
    matching = findings(report.warnings, field)
    assert matching, f"expected a warning on {field}, got {[f.describe() for f in report.warnings]}"
    return matching[0]


# --- clean input ---------------------------------------------------------------------------


def test_docs_multi_pipeline_example_is_clean_apart_from_the_slot_rule():
    entries = [
        entry(optimization_flags={"SFAST": True}),
        {"pipeline": "image-to-image", "model_id": "ByteDance/SDXL-Lightning", "price_per_unit": 4768371},
        {"pipeline": "audio-to-text", "model_id": "openai/whisper-large-v3", "price_per_unit": 12882811, "warm": True},
        LLM,
    ]
    report = rules.validate_entries(entries, gpu_count=2)
    assert report.errors == [] and report.warnings == []


def test_every_pipeline_go_livepeer_knows_is_accepted():
    report = rules.validate_entries([entry(pipeline=p, warm=...) for p in rules.PIPELINES if p != "llm"])
    assert report.errors == []


# --- JSON: syntax and types ----------------------------------------------------------------


def test_trailing_comma_is_reported_with_line_and_column():
    data, report = rules.parse_document('[\n  {"pipeline": "llm"},\n]\n')
    assert data is None
    (error,) = report.errors
    assert "trailing comma" in error.message and "line 3 column 1" in error.message
    assert "remove the comma" in error.fix


def test_other_syntax_errors_name_line_and_column():
    _data, report = rules.parse_document('[{"pipeline": "llm" "model_id": "x"}]')
    (error,) = report.errors
    assert "line 1 column 21" in error.message and "line 1 column 21" in error.fix


def test_nan_is_not_json():
    _data, report = rules.parse_document('[{"price_per_unit": NaN}]')
    assert "NaN is not JSON" in report.errors[0].message


def test_top_level_must_be_an_array():
    report = rules.validate_document({"pipeline": "llm"})
    assert "array of objects" in report.errors[0].message


def test_entries_must_be_objects():
    error = only_error([["llm"]], None)
    assert error.index == 0 and "must be a JSON object" in error.message


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("warm", "true", "a boolean"),
        ("capacity", "2", "a whole number"),
        ("capacity", 2.0, "a whole number"),
        ("url", 5, "a string"),
        ("model_id", ["a/b"], "a string"),
        ("pipeline", True, "a string"),
        ("currency", 1, "a string"),
        ("gateway", {}, "a string"),
        ("pixels_per_unit", "1", "a number"),
        ("price_per_unit", True, "a number"),
        ("optimization_flags", ["SFAST"], "an object"),
    ],
)
def test_wrong_json_type_is_an_error(field, value, expected):
    error = only_error([entry(**{field: value})], field)
    assert expected in error.message and "wrong JSON type" in error.message


def test_optimization_flag_values_must_be_bool_or_string():
    error = only_error([entry(optimization_flags={"SFAST": 1})], "optimization_flags.SFAST")
    assert "EnvValue" in error.message


def test_null_reads_as_the_zero_value_and_draws_a_warning():
    for field in ("warm", "capacity", "gateway", "url", "optimization_flags"):
        warning = only_warning([entry(**{field: None})], field)
        assert "zero value" in warning.message and "leave the key out" in warning.fix


@pytest.mark.parametrize("field", ["price_per_unit", "pixels_per_unit", "pipeline", "model_id"])
def test_null_is_refused_where_go_livepeer_stops(field):
    error = only_error([entry(LLM, **{field: None})], field)
    assert "null" in error.message and "stops" in error.message


def test_a_null_entry_is_refused_and_a_null_file_is_no_entries():
    error = rules.validate_entries([None]).errors[0]
    assert error.index == 0 and "no pipeline" in error.message
    report = rules.validate_document(None)
    assert report.errors == [] and "no entries" in report.warnings[0].message


# --- keys: case-insensitive, duplicates, unknown --------------------------------------------


def test_keys_match_case_insensitively_like_go():
    report = rules.validate_entries([{"Pipeline": "llm", "MODEL_ID": LLM["model_id"], "Price_Per_Unit": 1,
                                      "URL": "http://llm_runner:8000"}])
    assert report.errors == [] and report.warnings == []


def test_duplicate_keys_with_valid_values_draw_a_warning():
    warning = only_warning([entry(Pipeline="image-to-image")], "Pipeline")
    assert "2 times" in warning.message and "uses the last one" in warning.message


def test_exact_duplicate_keys_in_a_file_draw_a_warning():
    data, _ = rules.parse_document('[{"pipeline": "llm", "pipeline": "llm", "model_id": "a/b", '
                                   '"price_per_unit": 1, "url": "http://r:1"}]')
    report = rules.validate_document(data)
    assert report.errors == [] and [f.field for f in report.warnings] == ["pipeline"]


@pytest.mark.parametrize("first", ['"1"', "true", "null"])
def test_duplicate_key_whose_earlier_value_go_cannot_decode_is_an_error(first):
    data, _ = rules.parse_document('[{"pipeline": "llm", "model_id": "a/b", "price_per_unit": ' + first
                                   + ', "Price_Per_Unit": 1, "url": "http://r:1"}]')
    report = rules.validate_document(data)
    assert [f.field for f in report.errors] == ["Price_Per_Unit"]
    assert "earlier value" in report.errors[0].message and "stops the node" in report.errors[0].message


def test_unknown_key_is_a_warning_with_a_suggestion():
    warning = only_warning([entry(prce_per_unit=1)], "prce_per_unit")
    assert "rename it to 'price_per_unit'" in warning.fix


# --- pipeline, model_id ---------------------------------------------------------------------


def test_pipeline_names_are_case_sensitive():
    error = only_error([entry(LLM, pipeline="LLM")], "pipeline")
    assert error.value == "LLM" and "write 'llm'" in error.fix


def test_unknown_pipeline_suggests_the_closest():
    error = only_error([entry(pipeline="text-to-imag")], "pipeline")
    assert "write 'text-to-image'" in error.fix


@pytest.mark.parametrize("missing", ["pipeline", "model_id", "price_per_unit"])
def test_required_keys(missing):
    error = only_error([entry(**{missing: ...})], missing)
    assert "is missing" in error.message


def test_ollama_tag_as_model_id_is_an_error_naming_the_hf_id_when_known():
    known = {"meta-llama/Meta-Llama-3.1-8B-Instruct": "llama3.1:8b"}
    error = only_error([entry(LLM, model_id="llama3.1:8b")], "model_id", known_models=known)
    assert "Ollama tag" in error.message and "meta-llama/Meta-Llama-3.1-8B-Instruct" in error.fix


def test_model_id_without_organisation_is_an_error():
    error = only_error([entry(model_id="RealVisXL_V4.0_Lightning")], "model_id")
    assert "organisation prefix" in error.message


def test_model_id_with_spaces_is_an_error():
    error = only_error([entry(model_id="SG161222/RealVisXL V4")], "model_id")
    assert "not a Hugging Face id" in error.message


def test_model_id_in_the_wrong_case_is_an_error_when_the_model_is_known():
    known = {"SG161222/RealVisXL_V4.0_Lightning": None}
    error = only_error([entry(model_id="sg161222/realvisxl_v4.0_lightning")], "model_id", known_models=known)
    assert 'write "SG161222/RealVisXL_V4.0_Lightning"' in error.fix


# --- prices -------------------------------------------------------------------------------


def test_string_price_from_the_docs_gets_the_number_and_currency_fix():
    error = only_error([entry(price_per_unit="0.5e-3USD", currency="USD")], "price_per_unit")
    assert "value is not a number" in error.message
    assert error.fix == 'write a JSON number and currency: "price_per_unit": 0.0005, "currency": "USD".'


def test_string_price_without_currency_uses_the_entry_currency():
    error = only_error([entry(price_per_unit="0.18", currency="USD")], "price_per_unit")
    assert '"price_per_unit": 0.18, "currency": "USD"' in error.fix


def test_string_price_that_is_no_number_still_says_what_to_write():
    error = only_error([entry(price_per_unit="cheap")], "price_per_unit")
    assert "write a JSON number" in error.fix


def test_negative_price_is_an_error():
    assert "negative" in only_error([entry(price_per_unit=-1)], "price_per_unit").message


def test_zero_price_is_allowed():
    assert rules.validate_entries([entry(price_per_unit=0)]).errors == []


@pytest.mark.parametrize("pixels", [0, -5, 1.5])
def test_pixels_per_unit_must_be_a_positive_whole_number(pixels):
    assert "positive whole number" in only_error([entry(pixels_per_unit=pixels)], "pixels_per_unit").message


def test_pixels_per_unit_written_as_1e6_is_a_whole_number():
    data, _ = rules.parse_document('[{"pipeline": "text-to-image", "model_id": "a/b", "price_per_unit": 1, '
                                   '"pixels_per_unit": 1e6}]')
    assert rules.validate_document(data).errors == []


def test_unknown_currency_is_a_warning_and_known_ones_any_case_are_fine():
    assert "price feed" in only_warning([entry(currency="EUR")], "currency").message
    for currency in ("", "wei", "ETH", "usd"):
        assert rules.validate_entries([entry(currency=currency)]).warnings == []


# --- warm and cold, slots, capacity ----------------------------------------------------------


def test_same_model_warm_and_cold_is_an_error():
    error = only_error([entry(), entry(warm=False)], "model_id")
    assert error.index == 1 and "[0] and [1]" in error.message


def test_same_model_in_two_pipelines_with_different_warmth_is_allowed():
    report = rules.validate_entries([entry(model_id="ByteDance/SDXL-Lightning"),
                                     entry(pipeline="image-to-image", model_id="ByteDance/SDXL-Lightning", warm=...)])
    assert report.errors == []


def test_warm_managed_entries_beyond_the_gpu_slots_are_errors():
    entries = [entry(), entry(pipeline="audio-to-text", model_id="openai/whisper-large-v3"), LLM]
    report = rules.validate_entries(entries, gpu_count=1)
    assert [(f.index, f.field) for f in report.errors] == [(1, "warm")]
    assert "slot 2" in report.errors[0].message and "has 1" in report.errors[0].message
    assert rules.validate_entries(entries, gpu_count=1, containers_per_gpu=2).errors == []
    assert rules.validate_entries(entries).errors == []  # GPU count unknown: no slot rule


def test_capacity_on_a_managed_entry_uses_that_many_slots():
    report = rules.validate_entries([entry(capacity=2)], gpu_count=1)
    assert [f.field for f in report.errors] == ["warm"]
    assert "starts 2 containers" in findings(report.warnings, "capacity")[0].message


def test_capacity_on_an_external_entry_is_concurrency_not_slots():
    assert rules.validate_entries([entry(LLM, capacity=4)], gpu_count=1).warnings == []


def test_negative_capacity_is_an_error_and_zero_a_warning():
    assert "negative" in only_error([entry(capacity=-1)], "capacity").message
    assert "reads 0 as 1" in only_warning([entry(capacity=0)], "capacity").message


# --- url and token --------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["llm_runner:8000", "ftp://runner/", "http://", "http://runner:99999", "http://a b"])
def test_url_must_be_http(url):
    assert "not an http(s) URL" in only_error([entry(LLM, url=url)], "url").message


def test_empty_url_is_a_warning():
    assert "managed container" in only_warning([entry(url="")], "url").message


def test_llm_without_url_is_a_warning():
    assert "Ollama runner" in only_warning([entry(LLM, url=...)], "url").message


def test_token_without_url_is_a_warning_and_its_value_is_masked():
    warning = only_warning([entry(token="s3cret")], "token")
    assert warning.value == rules.MASK and "s3cret" not in warning.describe()


def test_token_type_error_masks_the_value():
    error = only_error([entry(LLM, token=12345)], "token")
    assert error.value == rules.MASK


# --- optimization flags ---------------------------------------------------------------------


def test_sfast_with_deepcache_is_an_error():
    error = only_error([entry(model_id="stabilityai/stable-diffusion-xl-base-1.0",
                              optimization_flags={"SFAST": True, "DEEPCACHE": "true"})], "optimization_flags")
    assert "cannot be combined" in error.message


def test_a_flag_set_false_does_not_count():
    report = rules.validate_entries([entry(model_id="stabilityai/stable-diffusion-xl-base-1.0",
                                           optimization_flags={"SFAST": True, "DEEPCACHE": False})])
    assert report.errors == [] and report.warnings == []


@pytest.mark.parametrize("model_id", ["SG161222/RealVisXL_V4.0_Lightning", "stabilityai/sdxl-turbo"])
def test_deepcache_on_lightning_or_turbo_is_a_warning(model_id):
    warning = only_warning([entry(model_id=model_id, optimization_flags={"DEEPCACHE": True})], "optimization_flags")
    assert "Lightning or Turbo" in warning.message


def test_optimization_flags_without_warm_is_a_warning():
    warning = only_warning([entry(warm=..., optimization_flags={"SFAST": True})], "optimization_flags")
    assert "only used for warm" in warning.message


def test_optimization_flags_on_an_external_container_is_a_warning():
    warning = only_warning([entry(url="http://byoc:9000", optimization_flags={"SFAST": True})], "optimization_flags")
    assert "never sees them" in warning.message


def test_unknown_optimization_flag_is_a_warning_with_the_right_name():
    warning = only_warning([entry(optimization_flags={"sfast": True})], "optimization_flags.sfast")
    assert "write SFAST" in warning.fix


# --- every finding at once, and what they say ------------------------------------------------


def test_every_finding_is_reported_at_once_in_entry_order():
    entries = [
        entry(LLM, pipeline="LLM", price_per_unit="0.5e-3USD"),
        entry(model_id="llama3.1:8b", url="runner:8000"),
        entry(pixels_per_unit=0, currency="EUR"),
    ]
    report = rules.validate_entries(entries)
    assert [(f.index, f.field) for f in report.errors] == [
        (0, "price_per_unit"), (0, "pipeline"), (1, "model_id"), (1, "url"), (2, "pixels_per_unit")]
    assert [(f.index, f.field) for f in report.warnings] == [(2, "currency")]


def test_a_finding_describes_where_what_and_the_fix():
    error = only_error([entry(price_per_unit="0.5e-3USD")], "price_per_unit")
    line = error.describe()
    assert line.startswith('entry [0].price_per_unit = "0.5e-3USD": ') and "Fix: " in line
    assert error.describe("lpfleet_model_menu[3]").startswith("lpfleet_model_menu[3].price_per_unit")
    assert set(error.as_dict()) == {"index", "field", "value", "message", "fix"}


# --- rendering ------------------------------------------------------------------------------


def test_render_is_canonical_indented_and_ends_with_a_newline():
    text = rules.render([{"URL": "http://r:1", "price_per_unit": 0.18, "Pipeline": "llm", "model_id": "a/b",
                          "optimization_flags": {"b": True, "A": True}}])
    assert text.endswith("}\n]\n")
    assert list(json.loads(text)[0]) == ["pipeline", "model_id", "url", "price_per_unit", "optimization_flags"]
    assert list(json.loads(text)[0]["optimization_flags"]) == ["A", "b"]
    assert '\n  {\n    "pipeline": "llm",' in text


def test_render_document_normalises_formatting_only():
    data, _ = rules.parse_document('[{"model_id":"a/b","pipeline":"llm","price_per_unit":1}]')
    assert rules.render_document(data) == rules.render([{"pipeline": "llm", "model_id": "a/b", "price_per_unit": 1}])
    assert rules.render_document({"not": "a list"}) is None


def test_tokens_in_finds_tokens_under_any_key_case():
    assert rules.tokens_in([{"Token": "a"}, {"token": ""}, "x", {"url": "b"}]) == ["a"]


# --- issue 12: numbers, clean strings, go-livepeer's lookup, live apps, secrets ---------------


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
@pytest.mark.parametrize("field", ["price_per_unit", "pixels_per_unit"])
def test_non_finite_numbers_are_refused(field, value):
    error = only_error([entry(LLM, **{field: value})], field)
    assert "not a finite number" in error.message and "Infinity" in error.message


def test_the_writer_cannot_emit_non_finite_numbers():
    with pytest.raises(ValueError):
        rules.render([entry(price_per_unit=float("nan"))])


@pytest.mark.parametrize("capacity", [2**63, -(2**63) - 1, 10**30])
def test_capacity_beyond_int64_is_refused(capacity):
    error = only_error([entry(LLM, capacity=capacity)], "capacity")
    assert "64-bit" in error.message


def test_capacity_at_int64_max_fits():
    report = rules.validate_entries([entry(LLM, capacity=2**63 - 1)])
    assert not [f for f in report.errors if f.field == "capacity"]


@pytest.mark.parametrize("field, value, says", [
    ("model_id", "meta-llama/Meta-Llama-3.1-8B-Instruct\n", "control character"),
    ("model_id", " meta-llama/Meta-Llama-3.1-8B-Instruct", "whitespace"),
    ("url", "http://llm_runner:8000\t", "url.Parse"),
    ("url", " http://llm_runner:8000", "url.Parse"),
    ("token", "abc\ndef", "header value"),
    ("token", "abc ", "header value"),
    ("pipeline", "llm\n", "panics"),
    ("gateway", "default\x7f", "control character"),
    ("currency", "USD ", "whitespace"),
])
def test_control_characters_and_surrounding_whitespace_are_refused(field, value, says):
    error = only_error([entry(LLM, **{field: value})], field)
    assert says in error.message and "Fix" in error.describe()
    if field == "token":
        assert "abc" not in error.describe()


@pytest.mark.parametrize("pipeline", ["Llm", "Text-to-image", "text to image"])
def test_pipeline_variants_go_livepeer_finds_draw_a_warning_when_cold_or_external(pipeline):
    base = LLM if pipeline == "Llm" else entry(warm=False)
    warning = only_warning([entry(base, pipeline=pipeline)], "pipeline")
    assert "lpfleet writes the exact name" in warning.message


def test_pipeline_variant_on_a_warm_managed_entry_crashes_the_node():
    error = only_error([entry(pipeline="Text-to-image")], "pipeline")
    assert "slice bounds out of range" in error.message and "write 'text-to-image'" in error.fix


def test_pipeline_variant_counts_as_its_pipeline_for_later_rules():
    report = rules.validate_entries([entry(LLM, pipeline="Llm", url=...)])
    assert any(f.field == "url" and "managed LLM container" in f.message for f in report.warnings)


@pytest.mark.parametrize("app", ["comfyui", "scope", "noop", "segment_anything_2", "streamdiffusion",
                                 "streamdiffusion-sdxl"])
def test_live_video_to_video_takes_live_app_names(app):
    report = rules.validate_entries([entry(pipeline="live-video-to-video", model_id=app)])
    assert report.errors == [] and report.warnings == []


def test_unknown_live_app_stops_a_warm_entry_and_warns_on_a_cold_one():
    error = only_error([entry(pipeline="live-video-to-video", model_id="myapp")], "model_id")
    assert "stops the node" in error.message and "comfyui" in error.fix
    warning = only_warning([entry(pipeline="live-video-to-video", model_id="myapp", warm=False)], "model_id")
    assert "only logs" in warning.message


def test_live_video_to_video_hugging_face_id_on_a_managed_entry_is_not_an_app():
    error = only_error([entry(pipeline="live-video-to-video", model_id="stabilityai/sd-turbo")], "model_id")
    assert "live app" in error.message


def test_without_gpus_go_livepeer_has_one_emulated_slot():
    assert rules.validate_entries([entry()], gpu_count=0).errors == []
    error = only_error([entry(), entry(pipeline="image-to-image", model_id="ByteDance/SDXL-Lightning")],
                       "warm", gpu_count=0)
    assert "without -nvidia" in error.message


@pytest.mark.parametrize("key", ["tokne", "Authorization", "api_key", "password", "client_secret"])
def test_values_of_secret_looking_unknown_keys_are_masked(key):
    warning = only_warning([entry(**{key: "Bearer s3cr3t-value"})], key)
    assert warning.value == rules.MASK and "s3cr3t" not in warning.describe()


def test_url_passwords_are_masked_in_findings_and_found_as_secrets():
    url = "http://user:pa55word@llm_runner:8000"
    report = rules.validate_entries([entry(LLM, url=url, pipeline="Llm")])
    shown = " ".join(f.describe() for f in report.errors + report.warnings)
    assert "pa55word" not in shown
    assert set(rules.secrets_in([entry(LLM, url=url, token="tok")])) == {"pa55word", "tok"}
    error = only_error([entry(LLM, url=url + "\n")], "url")
    assert "pa55word" not in error.describe() and "user:********@" in error.describe()
