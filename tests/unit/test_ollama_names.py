"""Ollama's model name rules (module_utils/ollama_names.py) and the filter roles check planned tags with."""

import pytest

from ansible_collections.lpfleet.ai.plugins.filter.ollama_name_filters import ollama_name_problem


@pytest.mark.parametrize("name", ["llama3.1:8b", "mistral", "qwen2.5:7b-instruct-q4_K_M", "library/llama3:latest",
                                  "registry.ollama.ai/library/llama3.1:8b", "hf.co/bartowski/Llama-3.2-1B-GGUF:Q4_K_M",
                                  "registry:5000/lab/phi3:mini"])
def test_valid_names_pass(name):
    assert ollama_name_problem(name) == ""


@pytest.mark.parametrize("name, says", [
    ("", "is empty"), (None, "is empty"), (5, "is empty"),
    ("llama3.1:8b\n", "whitespace"), (" llama3.1:8b", "whitespace"),
    ("llama3.1:8\tb", "control character"), ("llama3.1:8b\x00", "control character"),
    ("llama 3.1:8b", "is not an Ollama name"), ("llama3.1::8b", "is not an Ollama name"),
    ("/llama3", "is not an Ollama name"), ("llama3:", "is not an Ollama name"),
    ("a/b/c/d", "is not an Ollama name"), ("llama3:" + "x" * 81, "is not an Ollama name"),
    ("-llama3", "is not an Ollama name"),
])
def test_names_ollama_refuses_say_why(name, says):
    assert says in ollama_name_problem(name)


# The canonical name (Ollama's DisplayShortest) and the comparison key ------------------------------

from ansible_collections.lpfleet.ai.plugins.module_utils.ollama_names import (  # noqa: E402
    canonical_name,
    name_key,
    parse_name,
    same_model,
)


@pytest.mark.parametrize("name, canonical", [
    ("mistral", "mistral:latest"),
    ("llama3.1:8b", "llama3.1:8b"),
    ("library/llama3", "llama3:latest"),
    ("registry.ollama.ai/library/llama3.1:8b", "llama3.1:8b"),
    ("REGISTRY.OLLAMA.AI/Library/qwen2.5", "qwen2.5:latest"),  # the defaults are recognised whatever their case
    ("https://registry.ollama.ai/library/phi3:mini", "phi3:mini"),  # a scheme is not part of the name
    ("registry.ollama.ai/someone/model", "someone/model:latest"),  # another namespace is kept
    ("registry:5000/lab/llama3.1", "registry:5000/lab/llama3.1:latest"),  # another host keeps its namespace
    ("hf.co/bartowski/Llama-3.2-1B-GGUF:Q4_K_M", "hf.co/bartowski/Llama-3.2-1B-GGUF:Q4_K_M"),
    ("_private:v1", "_private:v1"),  # Ollama allows a leading underscore
])
def test_canonical_name_is_what_ollama_lists(name, canonical):
    assert canonical_name(name) == canonical


def test_parse_name_fills_in_the_defaults():
    assert tuple(parse_name("mistral")) == ("registry.ollama.ai", "library", "mistral", "latest")
    assert tuple(parse_name("hf.co/org/m:q4")) == ("hf.co", "org", "m", "q4")


@pytest.mark.parametrize("first, second", [
    ("mistral", "mistral:latest"), ("Mistral:Latest", "mistral"), ("registry.ollama.ai/library/llama3:8B", "llama3:8b"),
    ("HF.co/Org/M:Q4", "hf.co/org/m:q4"),
])
def test_names_ollama_takes_for_one_model_have_one_key(first, second):
    assert same_model(first, second) and name_key(first) == name_key(second)


@pytest.mark.parametrize("first, second", [
    ("mistral", "mistral:7b"), ("someone/mistral", "mistral"), ("hf.co/org/m", "org/m"), ("llama3", "llama3.1"),
])
def test_different_models_differ(first, second):
    assert not same_model(first, second)


@pytest.mark.parametrize("name, says", [
    ("", "is empty"), (None, "is empty"), (["mistral"], "is empty"), (" mistral", "whitespace"),
    ("mis\ttral", "control character"), ("mistral:", "empty tag"), ("/mistral", "empty namespace"),
    ("/ns/mistral", "empty host"), ("a/b/c/d", "host ('a/b')"), ("my.ns/model", "namespace ('my.ns')"),
    ("localhost:5000/model", "namespace ('localhost:5000')"), ("mistral::7b", "model ('mistral:')"),
    ("m" * 81, "model longer than 80"), ("mistral:" + "t" * 81, "tag longer than 80"), ("mïstral", "model"),
])
def test_canonical_name_refuses_what_ollama_refuses(name, says):
    with pytest.raises(ValueError) as raised:
        canonical_name(name)
    assert says in str(raised.value) and repr(name) in str(raised.value)


# The filter templates use ---------------------------------------------------------------------------

from ansible.errors import AnsibleFilterError  # noqa: E402

from ansible_collections.lpfleet.ai.plugins.filter.ollama_name_filters import ollama_canonical  # noqa: E402


def test_the_filter_takes_a_name_or_a_list():
    assert ollama_canonical("mistral") == "mistral:latest"
    assert ollama_canonical(["Mistral", "registry.ollama.ai/library/llama3.1:8b"]) == ["Mistral:latest", "llama3.1:8b"]
    assert ollama_canonical(["Mistral"], fold=True) == ["mistral:latest"]


@pytest.mark.parametrize("names", ["llama 3", ["mistral", "x:"], None])
def test_the_filter_fails_on_a_name_ollama_refuses(names):
    with pytest.raises(AnsibleFilterError, match="ollama_canonical: Ollama model name"):
        ollama_canonical(names)
