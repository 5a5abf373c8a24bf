"""Issue 17 item 3 on the lab: models downloaded from upstream once per site.

Three fresh lab hosts (the session's lt-* hosts, no converge: the test needs only an Ollama on each)
form one site, lt-docs its cache host. Each runs the Ollama stand-in (lab/standins/ollama, the lab's
Ollama image's program, real on-disk store) on its own port, so the test never touches an lpfleet
stack. The roles run as a rollout's pre-pull runs them (tests/lab/site_cache_rollout.yml). The lab
model registry's request log (/_lab/stats) counts what each host downloaded from upstream. A cache host gone in
the middle of a copy is made deterministic by shaping the cache host's network interface (tc, lab only) so that
the copy lasts seconds, and stopping its server once each member holds a part-copied blob.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from lab_fixtures import REPO_ROOT, LabHost, lab_fixture, ports_env  # noqa: F401 - the session fixture
from roles_helpers import ModelRegistry, PlaybookRunner, PlayResult, lab_address

pytestmark = pytest.mark.slow

CACHE, MEMBERS = "lt-docs", ("lt-deb12", "lt-nogpu")
PORT = 11534  # not 11434: an lpfleet stack on the host (none on these hosts today) keeps its own
MODELS_DIR = "/var/lib/lpfleet-test-site/models"
STATUS_DIR = "/var/lib/lpfleet-test-site"  # the rollout's record (last-rollout.json), removed with the rest
UNIT = "lpfleet-test-site-ollama"
PROGRAM = "/usr/local/lib/lpfleet-test/ollama.py"
STANDIN = REPO_ROOT / "lab" / "standins" / "ollama" / "ollama.py"


def start_ollama(host: LabHost) -> None:
    host.exec("mkdir", "-p", "/usr/local/lib/lpfleet-test")
    host.put(PROGRAM, STANDIN.read_bytes())
    host.shell(f"systemctl stop {UNIT} lpfleet-site-cache 2>/dev/null || true; systemctl reset-failed {UNIT} "
               f"2>/dev/null || true; rm -rf {MODELS_DIR}; mkdir -p {MODELS_DIR}")
    host.exec("systemd-run", f"--unit={UNIT}", f"--setenv=OLLAMA_HOST=127.0.0.1:{PORT}",
              f"--setenv=OLLAMA_MODELS={MODELS_DIR}", "--setenv=OLLAMA_LAB_REGISTRY=http://ollama-registry:80",
              "--setenv=HOME=/root", "python3", PROGRAM, "serve")


def ollama_tags(host: LabHost) -> list[str]:
    script = (f"import json,urllib.request;print(json.dumps([m['name'] for m in json.load(urllib.request.urlopen("
              f"'http://127.0.0.1:{PORT}/api/tags',timeout=5))['models']]))")
    for _ in range(30):
        result = host.exec("python3", "-c", script, check=False)
        if result.returncode == 0:
            return json.loads(result.stdout)
        time.sleep(0.5)
    pytest.fail(f"the Ollama stand-in on {host.name} does not answer: {result.stderr.decode()[-500:]}")


def blob_bytes(registry: ModelRegistry, address: str, since: float) -> int:
    return sum(entry["bytes"] for entry in registry.requests_from(address, since) if entry["kind"] == "blob")


def site_models(result: PlayResult) -> dict[str, dict]:
    """Each host's ollama_models_site_outcome, from the playbook's last task (its msg, a JSON string, in the output)."""
    found = {}
    for match in re.finditer(r'"msg": ("SITE-MODELS (?:[^"\\]|\\.)*")', result.output):
        _, host, document = json.loads(match[1]).split(" ", 2)
        found[host] = json.loads(document)
    return found


@pytest.fixture(name="site")
def site_fixture(lab, tmp_path: Path):
    hosts = [lab[CACHE], *(lab[name] for name in MEMBERS)]
    for host in hosts:
        start_ollama(host)
    for host in hosts:
        assert ollama_tags(host) == []
    runner = PlaybookRunner(tmp_path, hosts)
    yield runner, {host.name: host for host in hosts}
    for host in hosts:
        host.shell(f"tc qdisc del dev eth0 root 2>/dev/null || true; "
                   f"systemctl stop {UNIT} lpfleet-site-cache 2>/dev/null || true; systemctl disable "
                   f"lpfleet-site-cache 2>/dev/null || true; rm -f /etc/systemd/system/lpfleet-site-cache.service; "
                   f"systemctl daemon-reload; systemctl reset-failed {UNIT} 2>/dev/null || true; "
                   f"rm -rf /var/lib/lpfleet-test-site", check=False)


def rollout(runner: PlaybookRunner, models: list[str], cache_address: str, serve: bool = True) -> PlayResult:
    extra = {"lpfleet_site": "lab-site-a", "lpfleet_site_cache_host": CACHE,
             "lpfleet_site_cache_address": cache_address, "site_cache_models_dir": MODELS_DIR,
             "site_cache_ollama_url": f"http://127.0.0.1:{PORT}", "site_cache_timeout": 10,
             "ollama_models_progress_interval": 0, "site_test_models": models,
             "site_test_status_dir": STATUS_DIR, "rollout_report_dir": str(runner.workdir / "reports")}
    return runner.run("../tests/lab/site_cache_rollout.yml", ",".join((CACHE, *MEMBERS)), extra, timeout=300,
                      options=() if serve else ("--skip-tags", "site_cache"))


def test_a_model_is_downloaded_once_per_site_and_a_gone_cache_falls_back(site):
    runner, hosts = site
    registry = ModelRegistry()
    addresses = {name: lab_address(host) for name, host in hosts.items()}

    # 1. llama3.2:3b to the three hosts: the cache host pulls it, the others copy it from there.
    model = registry.model("llama3.2:3b")
    since = time.time() - 1
    result = rollout(runner, ["llama3.2:3b"], addresses[CACHE])
    assert result.returncode == 0, result.describe()
    for name, host in hosts.items():
        assert ollama_tags(host) == ["llama3.2:3b"], name
    downloaded = {name: blob_bytes(registry, address, since) for name, address in addresses.items()}
    assert downloaded == {CACHE: model["size"], **{name: 0 for name in MEMBERS}}, downloaded
    outcome = site_models(result)
    for name in MEMBERS:
        assert outcome[name]["copied"] == ["llama3.2:3b"] and outcome[name]["fallback"] == [], outcome
        assert outcome[name]["bytes_copied"] == model["size"], outcome
    same_blobs = {name: host.shell(f"cd {MODELS_DIR}/blobs && sha256sum sha256-* | sort")
                  for name, host in hosts.items()}
    assert len(set(same_blobs.values())) == 1, same_blobs

    # The same run again changes nothing and downloads nothing.
    since = time.time() - 1
    again = rollout(runner, ["llama3.2:3b"], addresses[CACHE])
    assert again.returncode == 0, again.describe()
    assert {name: recap["changed"] for name, recap in again.recap.items()} == dict.fromkeys(hosts, 0), \
        again.describe()
    assert all(blob_bytes(registry, address, since) == 0 for address in addresses.values())

    # 2. The cache host's server is gone when the next rollout (which, like rollout_models.yml, does not run
    # the site_cache role) copies: each host pulls from upstream, the run says so and still succeeds.
    hosts[CACHE].exec("systemctl", "stop", "lpfleet-site-cache")
    model = registry.model("phi3:mini")
    since = time.time() - 1
    result = rollout(runner, ["phi3:mini"], addresses[CACHE], serve=False)
    assert result.returncode == 0, result.describe()
    downloaded = {name: blob_bytes(registry, address, since) for name, address in addresses.items()}
    assert downloaded == {name: model["size"] for name in hosts}, downloaded
    outcome = site_models(result)
    for name in MEMBERS:
        assert [item["model"] for item in outcome[name]["fallback"]] == ["phi3:mini"], outcome
        assert "no answer" in outcome[name]["fallback"][0]["reason"], outcome
        assert f"{name}: phi3:mini from upstream: the site lab-site-a's cache host {CACHE} could not give" \
            in result.output, result.describe()
        assert sorted(ollama_tags(hosts[name])) == ["llama3.2:3b", "phi3:mini"]
        # The rollout's record says it, on the host and on the control node (the fleet report reads them).
        on_host = json.loads(hosts[name].shell(f"cat {STATUS_DIR}/last-rollout.json"))
        on_controller = json.loads((runner.workdir / "reports" / "last-rollout" / f"{name}.json").read_text())
        for record in (on_host, on_controller):
            assert [item["model"] for item in record["site_fallback"]] == ["phi3:mini"], record
            assert "no answer" in record["site_fallback"][0]["reason"], record
    assert json.loads(hosts[CACHE].shell(f"cat {STATUS_DIR}/last-rollout.json"))["site_fallback"] == []


def stop_the_cache_once_both_members_copy(cache: LabHost, members: list[LabHost], seen: dict[str, int]) -> None:
    """Waits until each member holds a part-copied blob (site_model's `-lpfleet-partial`, not empty), then stops
    the cache host's server: the members' copies are cut in the middle. SEEN gets each member's partial size."""
    wait = (f"for i in $(seq 1200); do f=$(find {MODELS_DIR}/blobs -name '*-lpfleet-partial' -size +0 2>/dev/null "
            f"| head -n1); if [ -n \"$f\" ]; then stat -c %s \"$f\"; exit 0; fi; sleep 0.1; done; exit 1")
    for member in members:
        found = member.exec("sh", "-c", wait, check=False, timeout=150)
        if found.returncode != 0:
            break
        seen[member.name] = int(found.stdout)
    cache.exec("systemctl", "stop", "lpfleet-site-cache", check=False)


def test_a_cache_host_gone_in_the_middle_of_a_copy_makes_the_members_pull_from_upstream(site):
    """The cache host's server stops while both members are copying a model's big blob from it: each member
    drops its part copy, pulls the model from upstream, the run succeeds and says so per member."""
    runner, hosts = site
    registry = ModelRegistry()
    addresses = {name: lab_address(host) for name, host in hosts.items()}
    model = registry.model("llama3.1:70b")  # 16 MiB in one blob, the manifest's first
    # The cache host sends at 4 MB/s (lab only: its network interface is shaped), so copying the 16 MiB blob to
    # the two members takes seconds, long enough to stop the server half way.
    hosts[CACHE].exec("tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "32mbit", "burst", "64kb",
                      "latency", "400ms")
    seen: dict[str, int] = {}
    cutter = threading.Thread(target=stop_the_cache_once_both_members_copy,
                              args=(hosts[CACHE], [hosts[name] for name in MEMBERS], seen), daemon=True)
    since = time.time() - 1
    cutter.start()
    result = rollout(runner, ["llama3.1:70b"], addresses[CACHE])
    cutter.join(timeout=160)
    assert result.returncode == 0, result.describe()
    assert sorted(seen) == sorted(MEMBERS) and all(0 < size < model["model_size"] for size in seen.values()), \
        (seen, result.describe())
    outcome = site_models(result)
    print("cut mid-copy:", seen, {name: outcome[name]["fallback"] for name in MEMBERS})
    for name in MEMBERS:
        assert outcome[name]["copied"] == [] and [item["model"] for item in outcome[name]["fallback"]] == \
            ["llama3.1:70b"], outcome
        reason = outcome[name]["fallback"][0]["reason"]
        broke = re.search(r"the transfer broke|got (\d+) bytes", reason)
        assert broke and (broke[1] is None or 0 < int(broke[1]) < model["model_size"]), reason
        assert f"{name}: llama3.1:70b from upstream: the site lab-site-a's cache host {CACHE} could not give" \
            in result.output, result.describe()
        assert ollama_tags(hosts[name]) == ["llama3.1:70b"]
        assert hosts[name].shell(f"find {MODELS_DIR}/blobs -name '*-lpfleet-partial'") == ""
        # The rollout's record says it, on the host and on the control node (the fleet report reads them).
        on_host = json.loads(hosts[name].shell(f"cat {STATUS_DIR}/last-rollout.json"))
        on_controller = json.loads((runner.workdir / "reports" / "last-rollout" / f"{name}.json").read_text())
        for record in (on_host, on_controller):
            assert [item["model"] for item in record["site_fallback"]] == ["llama3.1:70b"], record
            assert record["site_fallback"][0]["reason"] == reason, record
    # Upstream served the model to the cache host (its delegated pull) and again to each member (the fallback).
    downloaded = {name: blob_bytes(registry, address, since) for name, address in addresses.items()}
    assert downloaded == {name: model["size"] for name in hosts}, downloaded


# Images: the lab registry (registry:5000, CNCF Distribution) stands in for Docker Hub as the mirror's upstream, and a
# Docker Hub name (docker.io/library/<name>:<tag>) is what a member pulls, so that its Docker asks the site's mirror.
HUB_PROBE = "lpfleet-lab-hub-probe"
MIRROR = "lpfleet-site-registry"
IMAGE_MEMBER = "lt-nogpu"  # Debian 13 like the cache host: Docker from Debian on both (lt-deb12 needs Docker's repo)
ACCESS_LINE = re.compile(r'^(\S+) \S+ \S+ \[[^]]*\] "GET /v2/library/' + HUB_PROBE
                         + r'/blobs/(sha256:[0-9a-f]{64}) HTTP/[0-9.]+" (\d+) (\d+)')


def docker(*args: str, stdin: bytes | None = None) -> str:
    return subprocess.run(["docker", *args], input=stdin, capture_output=True, check=True, timeout=120).stdout.decode()


def push_hub_probe() -> tuple[str, dict[str, int]]:
    """Pushes a new one-layer image (1 MiB of random bytes) to the lab registry as library/HUB_PROBE:<tag>, the
    path Docker Hub's official images have; returns the tag and its blobs' sizes (layer and config) by digest."""
    tag = f"t{time.time_ns()}"
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        entry = tarfile.TarInfo("probe")
        entry.size = 1 << 20
        tar.addfile(entry, io.BytesIO(os.urandom(entry.size)))
    registry = ports_env()["REGISTRY_URL"].removeprefix("http://")
    staged = f"{registry}/library/{HUB_PROBE}:{tag}"
    docker("import", "-", staged, stdin=archive.getvalue())
    try:
        docker("push", staged)
    finally:
        docker("rmi", staged)
    request = urllib.request.Request(f"http://{registry}/v2/library/{HUB_PROBE}/manifests/{tag}",
                                     headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        manifest = json.load(response)
    return tag, {blob["digest"]: blob["size"] for blob in [*manifest["layers"], manifest["config"]]}


def probe_blob_bytes(access_log: str) -> dict[str, dict[str, int]]:
    """Client address -> {blob digest: bytes sent} of the HUB_PROBE blobs an access log shows served (HTTP 200)."""
    served: dict[str, dict[str, int]] = {}
    for line in access_log.splitlines():
        found = ACCESS_LINE.match(line)
        if found and found[3] == "200":
            by_digest = served.setdefault(found[1], {})
            by_digest[found[2]] = by_digest.get(found[2], 0) + int(found[4])
    return served


def pull_from_docker_hub(host: LabHost, tag: str) -> None:
    """`docker pull HUB_PROBE:TAG` on HOST: docker.io/library/..., so Docker asks its registry-mirrors first (the lab
    cannot reach Docker Hub, so a pull that succeeds came from the mirror)."""
    pulled = host.exec("docker", "pull", f"{HUB_PROBE}:{tag}", check=False, timeout=180)
    assert pulled.returncode == 0, (host.name, pulled.stdout.decode(), pulled.stderr.decode())
    assert f"docker.io/library/{HUB_PROBE}:{tag}" in pulled.stdout.decode(), pulled.stdout.decode()


def test_an_image_is_downloaded_once_per_site_through_its_registry_mirror(site):
    """The cache host runs the site's pull-through mirror (lpfleet.ai.site_cache, registry.yml), whose upstream the
    test points at the lab registry; docker_engine gives the member the mirror first in daemon.json's
    registry-mirrors. The member pulls a docker.io-named image, removes it and pulls it again (lab time: Docker on two
    hosts, not three; the mirror serves whoever asks): the upstream registry's access log shows the image's blobs sent
    to the cache host on the first pull only, and the mirror's that it served both pulls."""
    runner, hosts = site
    cache, member = hosts[CACHE], hosts[IMAGE_MEMBER]
    address, member_address = lab_address(cache), lab_address(member)
    registry_address = cache.shell("getent ahostsv4 registry").split()[0]
    extra = {"lpfleet_site": "lab-site-a", "lpfleet_site_cache_host": CACHE,
             "lpfleet_site_cache_address": address, "site_cache_models_dir": MODELS_DIR,
             "lpfleet_site_registry_mirror": True,
             "site_cache_registry_image": "registry:5000/lab/registry:2.8.3",
             # By address: the mirror's container is on Docker's default bridge, which does not resolve the lab's names.
             "site_cache_registry_remote_url": f"http://{registry_address}:5000"}
    result = runner.run("../tests/lab/site_cache_images.yml", f"{CACHE},{IMAGE_MEMBER}", extra, timeout=600)
    print(f"docker_engine and site_cache on 2 hosts: {result.seconds:.1f} s")
    assert result.returncode == 0, result.describe()
    for host, wanted in ((cache, []), (member, [f"http://{address}:5000"])):
        mirrors = json.loads(host.shell("cat /etc/docker/daemon.json")).get("registry-mirrors", [])
        assert mirrors == wanted, (host.name, mirrors)

    tag, blobs = push_hub_probe()
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))

    def upstream_sent() -> dict[str, dict[str, int]]:
        return probe_blob_bytes(docker("logs", "--since", since, "lpfleet-lab-registry"))

    # Distribution 2.8 (the mirror's image, registry:2.8.3) fetches a blob it does not hold twice: once streamed to
    # the client, once more in the background into its store (registry/proxy/proxyblobstore.go, ServeBlob).
    twice = {address: {digest: 2 * size for digest, size in blobs.items()}}
    pull_from_docker_hub(member, tag)
    for _ in range(40):  # the background copy may end after the client's
        after_first = upstream_sent()
        if after_first == twice:
            break
        time.sleep(0.5)
    member.exec("docker", "rmi", f"{HUB_PROBE}:{tag}")
    pull_from_docker_hub(member, tag)
    after_second = upstream_sent()
    mirror = probe_blob_bytes(cache.shell(f"docker logs {MIRROR} 2>&1"))
    print(f"probe blobs {blobs}; upstream sent, after the first pull {after_first}, after the second "
          f"{after_second}; the mirror sent {mirror}")
    assert after_first == twice, (after_first, address)
    assert after_second == twice, (after_second, address)  # the second pull: nothing from upstream
    assert mirror == {member_address: {digest: 2 * size for digest, size in blobs.items()}}, (mirror, member_address)
