"""lpfleet.ai.plain_http_problem: lpfleet's one rule for repository and registry URLs (https; plain http only
when lpfleet_allow_plain_http), used by docker_engine's and nvidia_container_toolkit's checks."""

from __future__ import annotations

import pytest

from ansible_collections.lpfleet.ai.plugins.filter.plain_http_problem import plain_http_problem

VARIABLE = "docker_engine_docker_repo_url"


@pytest.mark.parametrize("url", ["https://download.docker.com/linux", "https://mirror.example:8443",
                                 "https://nvidia.github.io/libnvidia-container/"])
def test_https_passes(url):
    assert plain_http_problem(url, VARIABLE) == ""


def test_plain_http_is_refused_unless_allowed():
    problem = plain_http_problem("http://docker-repo/linux", VARIABLE)
    assert problem.startswith("docker_engine_docker_repo_url is http://docker-repo/linux, plain http")
    assert "lpfleet_allow_plain_http: true" in problem
    assert plain_http_problem("http://docker-repo/linux", VARIABLE, allow_plain_http=True) == ""


@pytest.mark.parametrize("url", ["ftp://mirror/linux", "download.docker.com/linux", "https://", "https://a b/c",
                                 "https://host/repo\n", "", None, 443])
def test_what_is_no_http_url_is_refused_even_when_http_is_allowed(url):
    problem = plain_http_problem(url, VARIABLE, allow_plain_http=True, example="https://download.docker.com/linux")
    assert "not an http(s) URL" in problem and "https://download.docker.com/linux" in problem
    assert problem.startswith(VARIABLE + " is ")
