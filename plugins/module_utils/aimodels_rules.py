# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""The rules an aiModels.json file must meet, and lpfleet's advice on top of them.

Pure functions, no Ansible imports: the ai_models module uses them on the target and the
planner filter on the controller. The rules come from go-livepeer's source, summarised in
shared/contracts/go-livepeer-aimodels.md: go-livepeer decodes the file with Go's encoding/json
(keys matched case-insensitively, unknown keys ignored, a wrong JSON type is fatal) and reads
prices by handing the raw JSON token to big.Rat.SetString.

Findings come in two kinds: errors (go-livepeer refuses the file, or the entry breaks at run
time) and warnings (lpfleet's advice). Every finding names the entry index, the field, the
value and the fix.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

from ansible_collections.lpfleet.ai.plugins.module_utils.secrets import MASK, mask_value, secret_values

PIPELINES = (
    "text-to-image",
    "image-to-image",
    "image-to-video",
    "upscale",
    "audio-to-text",
    "segment-anything-2",
    "llm",
    "image-to-text",
    "live-video-to-video",
    "text-to-speech",
)

# Currencies go-livepeer converts with its default price feed ("" and wei are wei, eth is x1e18).
KNOWN_CURRENCIES = ("", "wei", "eth", "usd")

KNOWN_OPTIMIZATION_FLAGS = ("SFAST", "DEEPCACHE")

# The keys go-livepeer reads, with the JSON type each must have; also the order lpfleet writes them in.
FIELD_TYPES = {
    "pipeline": "string",
    "model_id": "string",
    "warm": "bool",
    "url": "string",
    "token": "string",
    "capacity": "integer",
    "price_per_unit": "number",
    "currency": "string",
    "pixels_per_unit": "number",
    "gateway": "string",
    "optimization_flags": "object",
}

# go-livepeer's live app names: the model_id of a managed live-video-to-video entry
# (streamdiffusion has variants: streamdiffusion-sdxl, ...).
LIVE_APPS = ("comfyui", "scope", "noop", "segment_anything_2", "streamdiffusion")

# Go's int is 64 bits on the platforms go-livepeer ships for.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# Fields go-livepeer cannot read as null (the rest read null as their zero value).
NOT_NULLABLE = ("price_per_unit", "pixels_per_unit")
# Fields whose zero value ("") breaks the entry: no pipeline, no model.
REQUIRED_STRINGS = ("pipeline", "model_id")

_NUMBER_WITH_CURRENCY = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)\s*$")
_HF_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_STEP_DISTILLED = re.compile(r"lightning|turbo", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    """One problem with one entry (index None: the whole file)."""

    index: int | None
    field: str | None
    value: Any
    message: str
    fix: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "value": self.value, "message": self.message, "fix": self.fix}

    def describe(self, label: str | None = None) -> str:
        """One line: where, what was there, what is wrong, how to fix it."""
        if label is not None:
            where = label if self.field is None else "%s.%s" % (label, self.field)
        elif self.index is None:
            where = "the file" if self.field is None else "the file's %s" % self.field
        else:
            where = "entry [%d]" % self.index if self.field is None else "entry [%d].%s" % (self.index, self.field)
        if self.field is not None:
            if self.value is not None:
                where = "%s = %s" % (where, json.dumps(self.value, sort_keys=True, default=str))
        return "%s: %s Fix: %s" % (where, self.message, self.fix)


@dataclass
class Report:
    """The findings for a list of entries."""

    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)

    def error(self, index: int | None, name: str | None, value: Any, message: str, fix: str) -> None:
        self.errors.append(Finding(index, name, _masked(name, value), message, fix))

    def warn(self, index: int | None, name: str | None, value: Any, message: str, fix: str) -> None:
        self.warnings.append(Finding(index, name, _masked(name, value), message, fix))


def _masked(name: str | None, value: Any) -> Any:
    """The value as a finding may show it: secret-looking keys and URL passwords masked."""
    return mask_value(name.split(".")[-1] if name else name, value)


class _JSONObject(dict):
    """A decoded JSON object that remembers its key/value pairs in document order (duplicates too)."""

    pairs: list[tuple[str, Any]]

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, Any]]) -> _JSONObject:
        obj = cls(pairs)
        obj.pairs = list(pairs)
        return obj


class _NotJSONConstant(ValueError):
    pass


def _reject_constant(name: str) -> None:
    raise _NotJSONConstant(name)


def parse_document(text: str) -> tuple[Any, Report]:
    """Decode the text of an aiModels.json file. On a syntax error the data is None and the report says where."""
    report = Report()
    try:
        data = json.loads(text, object_pairs_hook=_JSONObject.from_pairs, parse_constant=_reject_constant)
    except _NotJSONConstant as exc:
        report.error(
            None, None, None,
            "%s is not JSON; go-livepeer stops with a parse error." % exc,
            "write a JSON number instead of %s." % exc,
        )
        return None, report
    except json.JSONDecodeError as exc:
        report.error(None, None, None, *_syntax_problem(text, exc))
        return None, report
    return data, report


def _syntax_problem(text: str, exc: json.JSONDecodeError) -> tuple[str, str]:
    where = "line %d column %d" % (exc.lineno, exc.colno)
    closing = text[exc.pos:exc.pos + 1]
    if closing in ("]", "}") and text[:exc.pos].rstrip().endswith(","):
        return ("not valid JSON: a trailing comma before '%s' at %s; go-livepeer stops with 'Error parsing "
                "-aiModels: invalid character '%s' ...'." % (closing, where, closing),
                "remove the comma before '%s' at %s." % (closing, where))
    return ("not valid JSON: %s at %s; go-livepeer stops with 'Error parsing -aiModels'." % (exc.msg, where),
            "correct the JSON at %s." % where)


def validate_document(
    data: Any,
    gpu_count: int | None = None,
    containers_per_gpu: int = 1,
    known_models: Mapping[str, str | None] | None = None,
) -> Report:
    """Check decoded JSON: it must be an array of objects; then every entry is checked."""
    if data is None:
        report = Report()
        report.warn(None, None, None, "the file is null; go-livepeer reads it as no entries and serves no AI model.",
                    "write [] for no models, or the entries in [ ... ].")
        return report
    if not isinstance(data, list):
        report = Report()
        report.error(
            None, None, type(data).__name__,
            "the file must hold a JSON array of objects; go-livepeer cannot decode a %s into its model list."
            % _json_type_name(data),
            "wrap the entries in [ ... ].",
        )
        return report
    return validate_entries(data, gpu_count, containers_per_gpu, known_models)


def validate_entries(
    entries: list[Any],
    gpu_count: int | None = None,
    containers_per_gpu: int = 1,
    known_models: Mapping[str, str | None] | None = None,
) -> Report:
    """Check every entry and the rules across entries; report every finding at once.

    gpu_count enables the warm-slot rule. known_models (Hugging Face id -> Ollama tag or None)
    lets the checks suggest the right id for an Ollama tag and catch ids in the wrong case.
    """
    report = Report()
    views: list[dict[str, tuple[str, Any]] | None] = []
    for index, entry in enumerate(entries):
        view = _check_entry(report, index, entry, known_models or {})
        views.append(view)
    _check_warm_and_cold(report, views)
    if gpu_count is not None:
        _check_warm_slots(report, views, gpu_count, containers_per_gpu)
    report.errors.sort(key=_by_index)
    report.warnings.sort(key=_by_index)
    return report


def _by_index(finding: Finding) -> int:
    return -1 if finding.index is None else finding.index


def _json_type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _pairs(entry: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return list(getattr(entry, "pairs", None) or entry.items())


def _fold_keys(report: Report, index: int, entry: dict) -> dict[str, tuple[str, Any]]:
    """Go's view of an entry: canonical key -> (key as written, value), later keys winning, as in Go."""
    view: dict[str, tuple[str, Any]] = {}
    written: dict[str, list[str]] = {}
    for key, value in _pairs(entry):
        folded = key.lower() if isinstance(key, str) else str(key)
        written.setdefault(folded, []).append(key)
        view[folded] = (key, value)
    values: dict[str, list[Any]] = {}
    for key, value in _pairs(entry):
        values.setdefault(key.lower() if isinstance(key, str) else str(key), []).append(value)
    for folded, keys in written.items():
        if len(keys) > 1:
            _check_duplicate(report, index, folded, keys, values[folded])
    for folded, (key, value) in view.items():
        if folded not in FIELD_TYPES:
            close = difflib.get_close_matches(folded, list(FIELD_TYPES), n=1)
            hint = "rename it to '%s'" % close[0] if close else "remove it"
            report.warn(
                index, key, value,
                "go-livepeer does not know this key and ignores it.",
                "%s (known keys: %s)." % (hint, ", ".join(FIELD_TYPES)),
            )
    return view


def _check_duplicate(report: Report, index: int, folded: str, keys: list[str], values: list[Any]) -> None:
    """go-livepeer decodes every occurrence in order: an earlier value it cannot decode stops the node."""
    given = "the key is given %d times (%s); go-livepeer matches keys case-insensitively" % (
        len(keys), ", ".join(repr(k) for k in keys))
    fix = "keep one '%s' key." % (folded if folded in FIELD_TYPES else keys[-1])
    broken = [value for value in values[:-1] if folded in FIELD_TYPES and not go_decodes(folded, value)]
    if broken:
        report.error(index, keys[-1], None,
                     "%s and decodes each in turn: the earlier value %s stops the node although the last one "
                     "is valid." % (given, json.dumps(_masked(folded, broken[0]), default=str)), fix)
    else:
        report.warn(index, keys[-1], None, "%s and uses the last one." % given, fix)


def go_decodes(name: str, value: Any) -> bool:
    """Whether Go's encoding/json (and big.Rat for prices) reads VALUE into go-livepeer's field NAME."""
    if value is None:
        return name not in NOT_NULLABLE
    if not _has_type(value, FIELD_TYPES[name]):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    if FIELD_TYPES[name] == "integer":
        return INT64_MIN <= value <= INT64_MAX
    return True


def _check_entry(
    report: Report, index: int, entry: Any, known_models: Mapping[str, str | None]
) -> dict[str, tuple[str, Any]] | None:
    if not isinstance(entry, dict):
        consequence = (" go-livepeer reads null as an empty entry, which has no pipeline, and stops."
                       if entry is None else "")
        report.error(
            index, None, entry,
            "each entry must be a JSON object, not a %s.%s" % (_json_type_name(entry), consequence),
            'write {"pipeline": ..., "model_id": ..., "price_per_unit": ...}.',
        )
        return None
    view = _fold_keys(report, index, entry)
    currency = view.get("currency", (None, None))[1]
    typed_ok = {name: _check_type(report, index, name, key, value, currency) for name, (key, value) in view.items()
                if name in FIELD_TYPES}

    def value_of(name: str) -> Any:
        return view[name][1] if typed_ok.get(name) else None

    _check_required(report, index, view)
    pipeline = _check_pipeline(report, index, view, value_of("pipeline"))
    if pipeline == "live-video-to-video" and not value_of("url"):
        _check_live_app(report, index, view, value_of("model_id"))
    else:
        _check_model_id(report, index, view, value_of("model_id"), known_models)
    _check_prices(report, index, view, value_of("price_per_unit"), value_of("pixels_per_unit"))
    _check_url_and_token(report, index, view, value_of("url"), pipeline)
    _check_capacity(report, index, view, value_of("capacity"), value_of("url"))
    _check_currency(report, index, view, value_of("currency"))
    _check_optimization_flags(report, index, view, value_of("optimization_flags"))
    return view


_TYPE_NAME = {"string": "a string", "bool": "a boolean", "integer": "a whole number", "number": "a number",
              "object": "an object"}

_TYPE_FIX = {
    "string": 'a JSON string in double quotes, e.g. "text-to-image"',
    "bool": "true or false without quotes",
    "integer": "a whole JSON number without quotes, e.g. 1",
    "number": "a JSON number without quotes, e.g. 4768371 or 0.18",
    "object": 'a JSON object of string or true/false values, e.g. {"SFAST": true}',
}


def _has_type(value: Any, expected: str) -> bool:
    if expected == "string":
        return isinstance(value, str)
    if expected == "bool":
        return isinstance(value, bool)
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, dict)


def _check_null(report: Report, index: int, name: str, key: str) -> None:
    fix = "leave the key out, or write %s." % _TYPE_FIX[FIELD_TYPES[name]]
    if name in NOT_NULLABLE:
        report.error(index, key, None, "is null; go-livepeer cannot read null as a price and stops.", fix)
    elif name in REQUIRED_STRINGS:
        report.error(index, key, None, "is null, which go-livepeer reads as an empty string: the entry has no %s "
                     "and the node stops." % name.replace("_", " "), fix)
    else:
        report.warn(index, key, None, "is null; go-livepeer reads it as the zero value (false, \"\", 0 or none), "
                    "lpfleet would leave the key out.", fix)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_UNCLEAN_CONSEQUENCE = {
    "url": "Go's url.Parse refuses it, every start-up health poll fails and the node stops after 2 minutes",
    "token": "it is not a valid HTTP header value, every start-up health poll fails and the node stops after "
             "2 minutes",
    "pipeline": "go-livepeer finds no such capability and panics",
}


def _check_clean(report: Report, index: int, name: str, key: str, value: str) -> bool:
    """Strings go-livepeer compares or sends as they are: no control character, no surrounding whitespace."""
    if _CONTROL.search(value):
        problem = "holds a control character (%r)" % _CONTROL.search(value).group(0)
    elif value != value.strip():
        problem = "has whitespace around it"
    else:
        return True
    consequence = _UNCLEAN_CONSEQUENCE.get(
        name, "go-livepeer uses it exactly as written, so it would never match what gateways and runners send")
    report.error(index, key, value, "%s; %s." % (problem, consequence),
                 "remove the control characters and the surrounding whitespace (a stray newline or tab from "
                 "a copy and paste, or a YAML block scalar without '-').")
    return False


def _check_type(report: Report, index: int, name: str, key: str, value: Any, currency: Any) -> bool:
    expected = FIELD_TYPES[name]
    if value is None:
        _check_null(report, index, name, key)
        return False
    if name == "price_per_unit" and isinstance(value, str):
        report.error(index, key, value, *_string_price_problem(value, currency))
        return False
    if not _has_type(value, expected):
        report.error(
            index, key, value,
            "must be %s, not a %s; go-livepeer stops at start-up on a value of the wrong JSON type."
            % (_TYPE_NAME[expected], _json_type_name(value)),
            "write %s." % _TYPE_FIX[expected],
        )
        return False
    if isinstance(value, float) and not math.isfinite(value):
        report.error(index, key, value,
                     "is not a finite number; JSON has no Infinity or NaN, so go-livepeer could not parse the file.",
                     "write a finite JSON number, e.g. 4768371 or 0.18.")
        return False
    if expected == "integer" and not INT64_MIN <= value <= INT64_MAX:
        report.error(index, key, value, "does not fit go-livepeer's 64-bit integer; the node stops reading the file.",
                     "write a whole number between 1 and %d." % INT64_MAX)
        return False
    if isinstance(value, str):
        return _check_clean(report, index, name, key, value)
    if name == "optimization_flags":
        return _check_flag_types(report, index, key, value)
    return True


def _string_price_problem(value: str, currency: Any) -> tuple[str, str]:
    message = ("is a JSON string; go-livepeer reads only JSON numbers here and stops with "
               "'value is not a number: \"%s\"'." % value)
    match = _NUMBER_WITH_CURRENCY.match(value)
    if not match:
        return message, 'write a JSON number and a currency, e.g. "price_per_unit": 0.0005, "currency": "USD".'
    try:
        number = format(Decimal(match.group(1)).normalize(), "f")
    except InvalidOperation:  # pragma: no cover - the pattern only lets numbers through
        number = match.group(1)
    unit = match.group(2) or (currency if isinstance(currency, str) else "")
    if unit:
        return message, 'write a JSON number and currency: "price_per_unit": %s, "currency": "%s".' % (number, unit)
    return message, 'write a JSON number: "price_per_unit": %s.' % number


def _check_flag_types(report: Report, index: int, key: str, flags: dict) -> bool:
    ok = True
    for flag, flag_value in flags.items():
        if not isinstance(flag_value, (str, bool)):
            report.error(
                index, "%s.%s" % (key, flag), flag_value,
                "optimization flag values must be true/false or strings; go-livepeer stops on a %s "
                "('invalid value for EnvValue')." % _json_type_name(flag_value),
                "write true or false.",
            )
            ok = False
    return ok


def _check_required(report: Report, index: int, view: Mapping[str, tuple[str, Any]]) -> None:
    if "pipeline" not in view:
        report.error(index, "pipeline", None, "is missing; go-livepeer panics ('Pipeline is not valid capability').",
                     "add \"pipeline\": one of %s." % ", ".join(PIPELINES))
    if "model_id" not in view:
        report.error(index, "model_id", None, "is missing; go-livepeer cannot serve a model without its id.",
                     'add "model_id": the Hugging Face id, e.g. "SG161222/RealVisXL_V4.0_Lightning".')
    if "price_per_unit" not in view:
        report.error(index, "price_per_unit", None,
                     "is missing; go-livepeer panics at start-up ('pricePerUnit' must be set for model ...) unless "
                     "the node runs offchain or with -pricePerUnit.",
                     'add "price_per_unit": a JSON number (wei, or with "currency": "USD").')


def _capability_name(pipeline: str) -> str:
    """go-livepeer's lookup key: first letter upper case, '-' read as a space."""
    return (pipeline[:1].upper() + pipeline[1:]).replace("-", " ")


_PIPELINE_BY_CAPABILITY = {_capability_name(name): name for name in PIPELINES}


def _check_pipeline(report: Report, index: int, view: Mapping[str, tuple[str, Any]], pipeline: Any) -> Any:
    """Reports the pipeline's problems; returns the AI pipeline it names (None when it names none)."""
    if pipeline is None or pipeline in PIPELINES:
        return pipeline
    key = view["pipeline"][0]
    canonical = _PIPELINE_BY_CAPABILITY.get(_capability_name(pipeline))
    if canonical is not None:
        if _view_is_warm_managed(view):
            report.error(index, key, pipeline,
                         "go-livepeer finds the capability, but a warm managed entry needs the exact name to find "
                         "its container port and crashes the node ('slice bounds out of range').",
                         "write '%s'." % canonical)
        else:
            report.warn(index, key, pipeline,
                        "go-livepeer reads it as '%s' (it upper-cases the first letter and reads '-' as a space); "
                        "lpfleet writes the exact name." % canonical, "write '%s'." % canonical)
        return canonical
    if pipeline.lower() in PIPELINES:
        fix = "write '%s' (pipeline names are lower case)." % pipeline.lower()
    else:
        close = difflib.get_close_matches(pipeline.lower(), PIPELINES, n=1)
        fix = ("write '%s'." % close[0]) if close else "use one of %s." % ", ".join(PIPELINES)
    report.error(index, key, pipeline,
                 "is not a pipeline go-livepeer knows; it panics with 'Pipeline is not valid capability'.", fix)
    return None


def _view_is_warm_managed(view: Mapping[str, tuple[str, Any]]) -> bool:
    return is_warm_managed({name: value for name, (_key, value) in view.items()})


def _is_live_app(model_id: str) -> bool:
    return model_id in LIVE_APPS or model_id.startswith("streamdiffusion")


def _check_live_app(report: Report, index: int, view: Mapping[str, tuple[str, Any]], model_id: Any) -> None:
    """A managed live-video-to-video entry names a live app, not a Hugging Face id."""
    if model_id is None or _is_live_app(model_id):
        return
    key = view["model_id"][0]
    message = ("is not a live app go-livepeer knows (%s); for live-video-to-video the model_id names the app"
               % ", ".join(LIVE_APPS))
    fix = ("write one of %s, or give the app an image in go-livepeer's -aiRunnerImageOverrides 'live' and "
           "leave warm off." % ", ".join(LIVE_APPS))
    if _view_is_warm_managed(view):
        report.error(index, key, model_id, message + ": a warm entry stops the node.", fix)
    else:
        report.warn(index, key, model_id, message + ": go-livepeer only logs it for a cold entry, unless "
                    "-aiRunnerImageOverrides gives it an image.", fix)


def _check_model_id(
    report: Report,
    index: int,
    view: Mapping[str, tuple[str, Any]],
    model_id: Any,
    known_models: Mapping[str, str | None],
) -> None:
    if model_id is None:
        return
    key = view["model_id"][0]
    if not model_id.strip():
        report.error(index, key, model_id, "is empty.", "write the model's Hugging Face id.")
        return
    if ":" in model_id:
        by_tag = {tag: hf_id for hf_id, tag in known_models.items() if tag}
        suggestion = by_tag.get(model_id)
        report.error(
            index, key, model_id,
            "looks like an Ollama tag; go-livepeer matches requests against the Hugging Face id, so no request "
            "would ever reach this entry.",
            ('write "%s" (the Hugging Face id of %s); the Ollama tag goes in ollama_tag.' % (suggestion, model_id))
            if suggestion else "write the Hugging Face id (organisation/model); keep the Ollama tag in ollama_tag.",
        )
        return
    if "/" not in model_id:
        report.error(
            index, key, model_id,
            "has no organisation prefix; the model fails to load (managed) or no request matches it.",
            "write the full Hugging Face id, organisation/model (e.g. SG161222/RealVisXL_V4.0_Lightning).",
        )
        return
    if not _HF_ID.match(model_id):
        report.error(index, key, model_id, "is not a Hugging Face id (organisation/model, no spaces).",
                     "copy the id from the model's Hugging Face page.")
        return
    by_folded = {hf_id.lower(): hf_id for hf_id in known_models}
    canonical = by_folded.get(model_id.lower())
    if canonical is not None and canonical != model_id:
        report.error(index, key, model_id,
                     "differs from the known id %s only in case; Hugging Face ids are case-sensitive." % canonical,
                     'write "%s".' % canonical)


def _check_prices(
    report: Report, index: int, view: Mapping[str, tuple[str, Any]], price: Any, pixels: Any
) -> None:
    if price is not None and price < 0:
        report.error(index, view["price_per_unit"][0], price,
                     "is negative; go-livepeer panics ('must be a valid positive number').",
                     "write a price of 0 or more.")
    if pixels is not None and (pixels <= 0 or not float(pixels).is_integer()):
        report.error(index, view["pixels_per_unit"][0], pixels,
                     "must be a positive whole number; go-livepeer panics otherwise.",
                     "write a whole number of 1 or more (e.g. 1000000 for a price per million tokens).")


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in url


def _check_url_and_token(
    report: Report, index: int, view: Mapping[str, tuple[str, Any]], url: Any, pipeline: Any
) -> None:
    if url is not None and url == "":
        report.warn(index, view["url"][0], url,
                    "is empty; go-livepeer treats the entry as a managed container.",
                    "remove the key, or give the runner's address (http://host:port).")
    elif url is not None and not _is_http_url(url):
        report.error(index, view["url"][0], url,
                     "is not an http(s) URL; go-livepeer's start-up health check (GET {url}/health) cannot reach it "
                     "and the node exits after 2 minutes.",
                     "write http://host:port, e.g. http://llm_runner:8000.")
    has_url = bool(url)
    if "token" in view and not has_url:
        report.warn(index, view["token"][0], MASK,
                    "is only sent to an external container (url); without url it is unused.",
                    "remove token, or add the url it belongs to.")
    if pipeline == "llm" and "url" not in view:
        report.warn(index, "url", None,
                    "an llm entry without url makes go-livepeer start its own managed LLM container, not the "
                    "Ollama runner lpfleet deploys.",
                    "set url to the runner, e.g. http://llm_runner:8000 (the planner does this).")


def _check_capacity(
    report: Report, index: int, view: Mapping[str, tuple[str, Any]], capacity: Any, url: Any
) -> None:
    if capacity is None:
        return
    key = view["capacity"][0]
    if capacity < 0:
        report.error(index, key, capacity,
                     "is negative; a managed entry starts no container and an external one advertises no capacity.",
                     "write 1 or more, or leave it out (default 1).")
    elif capacity == 0:
        report.warn(index, key, capacity, "go-livepeer reads 0 as 1.", "write 1 or leave it out.")
    elif capacity > 1 and not url:
        report.warn(index, key, capacity,
                    "on a managed entry (no url) go-livepeer starts %d containers, each taking a GPU slot." % capacity,
                    "leave capacity out for one container per model, or serve the model through url.")


def _check_currency(report: Report, index: int, view: Mapping[str, tuple[str, Any]], currency: Any) -> None:
    if currency is not None and currency.lower() not in KNOWN_CURRENCIES:
        report.warn(index, view["currency"][0], currency,
                    "is not a currency go-livepeer's default price feed converts (\"\", wei, eth, USD).",
                    "use USD, wei or eth, unless your node runs a price feed that knows %s." % currency)


def _flag_enabled(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _check_optimization_flags(report: Report, index: int, view: Mapping[str, tuple[str, Any]], flags: Any) -> None:
    if not flags:
        return
    key = view["optimization_flags"][0]
    enabled = sorted(name for name, value in flags.items() if _flag_enabled(value))
    if "SFAST" in enabled and "DEEPCACHE" in enabled:
        report.error(index, key, flags, "SFAST and DEEPCACHE cannot be combined; the runner fails to load the model.",
                     "keep one of them.")
    model_id = view.get("model_id", (None, None))[1]
    if "DEEPCACHE" in enabled and isinstance(model_id, str) and _STEP_DISTILLED.search(model_id):
        report.warn(index, key, flags,
                    "DEEPCACHE on a Lightning or Turbo model lowers quality without speeding it up.",
                    "remove DEEPCACHE (SFAST is fine).")
    for name in sorted(flags):
        if name not in KNOWN_OPTIMIZATION_FLAGS:
            close = difflib.get_close_matches(name.upper(), KNOWN_OPTIMIZATION_FLAGS, n=1)
            report.warn(index, "%s.%s" % (key, name), flags[name],
                        "is not an optimization flag the ai-runner documents; it is passed on as an environment "
                        "variable and most likely ignored.",
                        ("write %s (flag names are upper case)." % close[0]) if close
                        else "use SFAST or DEEPCACHE.")
    if view.get("warm", (None, False))[1] is not True:
        report.warn(index, key, flags, "optimization flags are only used for warm containers.",
                    "set warm: true, or remove optimization_flags.")
    if view.get("url", (None, None))[1]:
        report.warn(index, key, flags,
                    "optimization flags only reach containers go-livepeer manages; an external container (url) "
                    "never sees them.",
                    "remove optimization_flags and configure the external container itself.")


def _check_warm_and_cold(report: Report, views: list[dict[str, tuple[str, Any]] | None]) -> None:
    first_seen: dict[tuple[Any, Any], tuple[int, bool]] = {}
    for index, view in enumerate(views):
        if view is None or "model_id" not in view:
            continue
        pipeline = view.get("pipeline", (None, None))[1]
        model_id = view["model_id"][1]
        if not isinstance(model_id, str) or not isinstance(pipeline, str):
            continue
        warm = view.get("warm", (None, False))[1] is True
        key = (pipeline, model_id)
        if key not in first_seen:
            first_seen[key] = (index, warm)
            continue
        other_index, other_warm = first_seen[key]
        if other_warm != warm:
            report.error(index, view["model_id"][0], model_id,
                         "is listed warm in one entry and cold in another (entries [%d] and [%d]); go-livepeer panics "
                         "('Cannot have same model_id ... as cold and warm')." % (other_index, index),
                         "give both entries the same warm value, or keep one entry.")


def is_warm_managed(entry: Mapping[str, Any]) -> bool:
    """True when go-livepeer starts and keeps a container for this entry at start-up (warm, no url)."""
    folded = {str(k).lower(): v for k, v in entry.items()}
    return folded.get("warm") is True and not folded.get("url")


def _check_warm_slots(
    report: Report, views: list[dict[str, tuple[str, Any]] | None], gpu_count: int, containers_per_gpu: int
) -> None:
    # Without GPUs go-livepeer runs without -nvidia and has one emulated slot.
    slots = gpu_count * max(containers_per_gpu, 1) if gpu_count > 0 else 1
    used = 0
    for index, view in enumerate(views):
        if view is None or not is_warm_managed({name: value for name, (_key, value) in view.items()}):
            continue
        capacity = view.get("capacity", (None, 1))[1]
        used += capacity if isinstance(capacity, int) and not isinstance(capacity, bool) and capacity > 1 else 1
        if used > slots:
            report.error(
                index, view.get("warm", ("warm", None))[0], True,
                "this warm managed entry needs container slot %d, but the host has %d (%s); go-livepeer stops with "
                "'insufficient capacity'." % (used, slots, _slots_said(gpu_count, containers_per_gpu)),
                "set warm: false, serve the model through url, or give the node more GPUs "
                "(-aiRunnerContainersPerGPU only helps when the models fit in VRAM together).",
            )


def _slots_said(gpu_count: int, containers_per_gpu: int) -> str:
    if gpu_count > 0:
        return "%d GPU(s) x %d container(s) per GPU" % (gpu_count, containers_per_gpu)
    return "no GPU: go-livepeer runs without -nvidia, with one emulated slot"


def canonical_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The entry with go-livepeer's key names, in lpfleet's key order (unknown keys last, sorted)."""
    folded: dict[str, Any] = {}
    for key, value in _pairs(entry):
        folded[key.lower() if key.lower() in FIELD_TYPES else key] = value
    ordered = {name: folded[name] for name in FIELD_TYPES if name in folded}
    for key in sorted(k for k in folded if k not in FIELD_TYPES):
        ordered[key] = folded[key]
    flags = ordered.get("optimization_flags")
    if isinstance(flags, dict):
        ordered["optimization_flags"] = {name: flags[name] for name in sorted(flags)}
    return ordered


def render(entries: Iterable[Mapping[str, Any]]) -> str:
    """lpfleet's canonical aiModels.json text: 2-space indent, stable key order, trailing newline."""
    # allow_nan=False: a value JSON cannot hold (Infinity, NaN) raises instead of being written.
    return json.dumps([canonical_entry(entry) for entry in entries], indent=2, ensure_ascii=False,
                      allow_nan=False) + "\n"


def render_document(data: Any) -> str | None:
    """The canonical text of decoded JSON, or None when it is not an array of objects."""
    if not isinstance(data, list) or not all(isinstance(entry, dict) for entry in data):
        return None
    return render(data)


def secrets_in(data: Any) -> list[str]:
    """Every secret in decoded entries: tokens, values of secret-looking keys, URL passwords."""
    return secret_values(data)


def tokens_in(data: Any) -> list[str]:
    """Every runner token in decoded entries (to keep them out of logs and diffs)."""
    found: list[str] = []
    if isinstance(data, list):
        for entry in data:
            if isinstance(entry, dict):
                found.extend(v for k, v in entry.items() if str(k).lower() == "token" and isinstance(v, str) and v)
    return found
