"""Ollama's model name rules (module_utils/ollama_names.py) and the filter roles check planned tags with."""

import pytest

from ansible_collections.lpfleet.ai.plugins.filter.ollama_name_problem import ollama_name_problem


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
