"""The site_cache filter: which host caches for its site, what the others copy from, and that a host
without a site, or alone in its site, behaves as without sites."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.lpfleet.ai.plugins.filter.site_cache import (
    site_cache,
    site_cache_outcome,
    site_registry_mirrors,
    with_registry_mirrors,
)

HOSTS = ["a1", "a2", "a3", "b1", "lone", "none"]
HOSTVARS = {
    "a1": {"lpfleet_site": "ams", "ansible_host": "10.0.0.1"},
    "a2": {"lpfleet_site": "ams"},
    "a3": {"lpfleet_site": "ams"},
    "b1": {"lpfleet_site": "fra"},
    "lone": {"lpfleet_site": "lon"},
    "none": {},
}


def test_the_first_host_of_a_site_caches_for_the_others():
    cache = site_cache("a1", HOSTVARS, HOSTS)
    member = site_cache("a3", HOSTVARS, HOSTS)
    assert cache["mode"] == "cache" and member["mode"] == "member"
    for part in (cache, member):
        assert part["cache_host"] == "a1" and part["members"] == ["a1", "a2", "a3"] and part["problem"] == ""
        assert part["cache_url"] == "http://10.0.0.1:11480"


@pytest.mark.parametrize("host", ["none", "lone", "b1"])
def test_no_site_or_a_site_of_one_host_is_off(host):
    part = site_cache(host, HOSTVARS, HOSTS)
    assert part["mode"] == "off" and part["cache_url"] == "" and part["problem"] == ""


def test_the_cache_host_address_and_port_can_be_set():
    hostvars = dict(HOSTVARS, a2={"lpfleet_site": "ams", "lpfleet_site_cache_host": "a3"},
                    a3={"lpfleet_site": "ams", "lpfleet_site_cache_host": "a3",
                        "lpfleet_site_cache_address": "fd00::3", "lpfleet_site_cache_port": 8080})
    assert site_cache("a2", hostvars, HOSTS)["cache_url"] == "http://[fd00::3]:8080"
    assert site_cache("a3", hostvars, HOSTS)["mode"] == "cache"


def test_a_cache_host_outside_the_site_is_a_problem_naming_the_variable():
    hostvars = dict(HOSTVARS, a2={"lpfleet_site": "ams", "lpfleet_site_cache_host": "b1"})
    part = site_cache("a2", hostvars, HOSTS)
    assert part["mode"] == "off"
    assert "lpfleet_site_cache_host='b1'" in part["problem"] and "a1, a2, a3" in part["problem"]


def test_a_site_that_is_not_a_string_fails():
    with pytest.raises(AnsibleFilterError, match="lpfleet_site"):
        site_cache("x", {"x": {"lpfleet_site": ["ams"]}}, ["x"])


def test_the_outcome_names_what_was_copied_and_what_falls_back_and_why():
    part = site_cache("a2", HOSTVARS, HOSTS)
    copies = [{"item": "llama3.1:8b", "source": "site-cache", "fallback": False, "bytes_copied": 100},
              {"item": "mistral:7b", "source": "local", "fallback": False, "bytes_copied": 0},
              {"item": "qwen2.5:7b", "source": "upstream", "fallback": True, "reason": "http://a1:11480: no answer"}]
    pulls = [{"item": "llama3.1:8b"}, {"item": "mistral:7b"},
             {"item": "qwen2.5:7b", "unreachable": True, "msg": "docker exec failed"}]
    outcome = site_cache_outcome(copies, pulls, part)
    assert outcome["copied"] == ["llama3.1:8b"] and outcome["local"] == ["mistral:7b"]
    assert outcome["bytes_copied"] == 100 and outcome["site"] == "ams" and outcome["cache_host"] == "a1"
    assert outcome["fallback"] == [{"model": "qwen2.5:7b", "reason": "the cache host could not be reached "
                                    "(docker exec failed); http://a1:11480: no answer"}]
    assert outcome["message"].startswith("qwen2.5:7b from upstream: the site ams's cache host a1 could not give")


def test_no_fallback_no_message():
    outcome = site_cache_outcome([{"item": "m", "source": "site-cache", "bytes_copied": 5}], [{"item": "m"}],
                                 site_cache("a2", HOSTVARS, HOSTS))
    assert outcome["fallback"] == [] and outcome["message"] == ""


# Images once per site: the site's pull-through registry mirror (lpfleet_site_registry_mirror).

MIRRORED = {name: dict(values, lpfleet_site_registry_mirror=True) for name, values in HOSTVARS.items()}


def test_a_site_member_uses_the_cache_hosts_registry_mirror():
    assert site_registry_mirrors("a2", MIRRORED, HOSTS) == ["http://10.0.0.1:5000"]
    hostvars = dict(MIRRORED, a1=dict(MIRRORED["a1"], lpfleet_site_cache_address="fd00::1",
                                      lpfleet_site_registry_port=5001))
    assert site_registry_mirrors("a3", hostvars, HOSTS) == ["http://[fd00::1]:5001"]


@pytest.mark.parametrize("host", ["a1", "b1", "lone", "none"])
def test_no_mirror_for_the_cache_host_a_site_of_one_or_no_site(host):
    assert site_registry_mirrors(host, MIRRORED, HOSTS) == []


def test_the_mirror_is_off_by_default_and_a_bad_flag_is_named():
    assert site_registry_mirrors("a2", HOSTVARS, HOSTS) == []
    assert site_registry_mirrors("a2", dict(MIRRORED, a2=dict(MIRRORED["a2"], lpfleet_site_registry_mirror="no")),
                                 HOSTS) == []
    with pytest.raises(AnsibleFilterError, match="lpfleet_site_registry_mirror"):
        site_registry_mirrors("a2", dict(MIRRORED, a2=dict(MIRRORED["a2"], lpfleet_site_registry_mirror="maybe")),
                              HOSTS)


def test_the_site_mirror_comes_first_in_daemon_json_and_no_mirror_changes_nothing():
    options = {"log-driver": "json-file", "registry-mirrors": ["https://mirror.example", "http://10.0.0.1:5000"]}
    assert with_registry_mirrors(options, ["http://10.0.0.1:5000"]) == {
        "log-driver": "json-file", "registry-mirrors": ["http://10.0.0.1:5000", "https://mirror.example"]}
    assert with_registry_mirrors({"log-driver": "json-file"}, []) == {"log-driver": "json-file"}
    assert "registry-mirrors" not in with_registry_mirrors({}, [])
    with pytest.raises(AnsibleFilterError, match="mirror URLs"):
        with_registry_mirrors({}, "http://10.0.0.1:5000")


def test_preflight_runs_the_site_check_and_a_wrong_cache_host_stops_each_host_of_the_site(tmp_path):
    """preflight includes site_cache's checks_host (preflight_host_checked_roles): a site naming a cache host outside
    it stops each of its hosts there, naming the host and the variable, before any role changes them."""
    import sys

    import yaml
    from test_playbooks_syntax import REPO, run_playbook, write_inventory

    defaults = yaml.safe_load((REPO / "roles" / "preflight" / "defaults" / "main.yml").read_text())
    assert "site_cache" in defaults["preflight_host_checked_roles"]
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, "lpfleet_site": "ams",
             "lpfleet_site_cache_host": "elsewhere"}
    inventory = write_inventory(tmp_path / "hosts.yml", {"a1": local, "a2": local})
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "gpu_hosts", "gather_facts": False, "tasks": [
        {"name": "The site check preflight runs", "ansible.builtin.include_role": {
            "name": "lpfleet.ai.site_cache", "tasks_from": "checks_host"}}]}]))
    done = run_playbook(tmp_path, "-i", str(inventory), str(playbook), timeout=120)
    assert done.returncode != 0
    for host in ("a1", "a2"):
        refused = f"{host}: lpfleet_site_cache_host='elsewhere' is not a host of the site 'ams'"
        assert refused in done.stdout, done.stdout
