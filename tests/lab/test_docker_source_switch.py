"""Switching a Debian 12 host from Debian's docker.io to Docker CE (issue 16), on the lab.

The host (switch-deb12, created here and removed at the end) first runs what many servers run
before lpfleet comes: Debian 12's own docker.io (20.10), an Ollama container on the livepeer-ai
network with the model llama3.1:8b in the `ollama` volume. Then:

- site.yml with docker_engine_source: docker stops in preflight, naming the packages it would
  replace, what it would install from where, the running containers and the variable that allows
  the switch; nothing on the host changes and the container keeps running;
- with docker_engine_allow_source_switch: true, docker_engine removes Debian's packages and installs
  docker-ce, docker-ce-cli, containerd.io and the two plugins from the lab's Docker repository
  stand-in; Docker and the Ollama container start again on the same /var/lib/docker, and the
  volume, its model files and the model list are the ones from before (nothing pulled again);
- a second run changes nothing;
- going back to Debian's packages, even allowed, stops before any change: Debian 12 packages no
  compose v2, and the switch would remove Docker CE's.

Slow: about two minutes (two apt installs and three short plays: --tags docker_engine).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from lab_fixtures import LABCTL, LabHost, group_vars, lab_hosts, labctl_up, require_docker, run
from roles_helpers import (
    ModelRegistry,
    PlaybookRunner,
    host_changes_since_mark,
    lab_address,
    mark_host,
    ollama_api,
)

pytestmark = pytest.mark.slow

HOST = LabHost("switch-deb12", "single-8gb", "12")
MODEL = "llama3.1:8b"
VOLUME = "ollama"
NETWORK = "livepeer-ai"
DOCKER_CE = ("docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin", "docker-compose-plugin")
DEBIAN_DOCKER = ("docker.io", "containerd", "runc")
DOCKER_SOURCE = {"docker_engine_source": "docker"}
SWITCH = {**DOCKER_SOURCE, "docker_engine_allow_source_switch": True}
ONLY_DOCKER_ENGINE = ("--tags", "docker_engine")
REFUSAL_TASK = "lpfleet.ai.docker_engine : Refuse to switch Docker's source unless allowed"


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlaybookRunner]:
    """HOST, fresh, running Debian's Docker with a model in its volume; removed at the end."""
    require_docker()
    if HOST.name in lab_hosts():
        run([str(LABCTL), "rm-host", HOST.name], timeout=300)
    try:
        labctl_up({HOST.name: (HOST.profile_name, HOST.debian)})
        run_debian_docker_with_a_model(HOST)
        yield PlaybookRunner(tmp_path_factory.mktemp("source-switch"), [HOST])
    finally:
        run([str(LABCTL), "rm-host", HOST.name], timeout=300, check=False)


def run_debian_docker_with_a_model(host: LabHost) -> None:
    """Debian 12's docker.io (the lab registry is plain HTTP), then Ollama with MODEL in VOLUME."""
    host.exec("mkdir", "-p", "/etc/docker")
    host.put("/etc/docker/daemon.json", json.dumps({"insecure-registries": ["registry:5000"]}).encode())
    host.shell("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
               "--no-install-recommends docker.io >/dev/null", timeout=600)
    host.exec("docker", "network", "create", NETWORK)
    host.exec("docker", "volume", "create", VOLUME)
    host.exec("docker", "run", "-d", "--name", "ollama", "--restart", "unless-stopped", "--network", NETWORK,
              "-p", "127.0.0.1:11434:11434", "-v", f"{VOLUME}:/root/.ollama",
              group_vars()["ollama_stack_ollama_image"], timeout=300)
    host.shell("for i in $(seq 60); do docker exec ollama ollama list >/dev/null 2>&1 && exit 0; sleep 1; done; "
               "exit 1")
    host.exec("docker", "exec", "ollama", "ollama", "pull", MODEL, timeout=300)


def installed(host: LabHost, package: str) -> str | None:
    """PACKAGE's installed version on HOST, or None."""
    result = host.exec("dpkg-query", "--show", "--showformat=${db:Status-Status} ${Version}", package, check=False)
    status, _, version = result.stdout.decode().partition(" ")
    return version if result.returncode == 0 and status == "installed" else None


def started_at(host: LabHost, container: str) -> str:
    return host.shell(f"docker inspect -f '{{{{.State.Running}}}} {{{{.State.StartedAt}}}}' {container}").strip()


def volume_state(host: LabHost) -> dict[str, str]:
    """The volume's data directory (path and inode: the same directory, not a new one) and the sha256 of
    every model file in it (manifests and blobs). Not CreatedAt: Docker derives it from the modification
    time of the volume's own directory, which the new engine touches at start."""
    mountpoint = host.shell(f"docker volume inspect -f '{{{{.Mountpoint}}}}' {VOLUME}").strip()
    return {"directory": host.shell(f"stat -c '%n %i' {mountpoint}").strip(),
            "files": host.shell(f"cd {mountpoint}/models && find . -type f | sort | xargs sha256sum")}


def test_a_switch_is_refused_naming_what_it_replaces(runner: PlaybookRunner) -> None:
    debian_versions = {package: installed(HOST, package) for package in DEBIAN_DOCKER}
    assert all(debian_versions.values()), f"the fixture did not install Debian's Docker: {debian_versions}"
    container_before = started_at(HOST, "ollama")
    mark_host(HOST)

    result = runner.run("site.yml", HOST.name, DOCKER_SOURCE, options=ONLY_DOCKER_ENGINE, timeout=300)

    assert result.returncode != 0, f"the switch went ahead unasked:\n{result.describe()}"
    failure = result.the_failure_of(HOST.name)
    assert failure.task == REFUSAL_TASK, f"stopped in {failure.task!r}:\n{result.describe()}"
    replaced = [f"{package} {version}" for package, version in debian_versions.items()]
    for fragment in [f"{HOST.name}: docker_engine_source is docker", *replaced, ", ".join(DOCKER_CE),
                     "http://docker-repo/linux/debian", "every container", "running now: ollama",
                     "Fix: set docker_engine_allow_source_switch: true", "docker_engine_source: distro"]:
        assert fragment in failure.msg, f"the message lacks {fragment!r}:\n{failure.msg}"
    assert result.recap[HOST.name]["changed"] == 0, result.describe()
    assert {package: installed(HOST, package) for package in DEBIAN_DOCKER} == debian_versions
    assert not any(installed(HOST, package) for package in DOCKER_CE)
    assert started_at(HOST, "ollama") == container_before, "the refused run restarted the container"
    changed = host_changes_since_mark(HOST)
    assert not changed, f"the refused run changed {changed}"


def test_the_switch_keeps_the_model_volume_and_its_models(runner: PlaybookRunner) -> None:
    volume_before = volume_state(HOST)
    container_before = started_at(HOST, "ollama")
    registry = ModelRegistry()
    client = lab_address(HOST)
    bytes_before = registry.bytes_sent_to(client)

    result = runner.run("site.yml", HOST.name, SWITCH, options=ONLY_DOCKER_ENGINE, timeout=900)

    assert result.returncode == 0, f"the switch failed:\n{result.describe()}"
    print(f"\nswitch: --tags docker_engine took {result.seconds:.0f} s")
    versions = {package: installed(HOST, package) for package in DOCKER_CE}
    assert all(versions.values()), f"Docker CE is not installed: {versions}"
    left = {package: installed(HOST, package) for package in DEBIAN_DOCKER}
    assert not any(left.values()), f"Debian's Docker packages are still installed: {left}"
    # The engine reports the version Debian built it as (26.1.5+dfsg1); the package carries Docker's.
    server = HOST.shell("docker version --format '{{.Server.Version}}'").strip()
    assert versions["docker-ce"] == f"5:{server.split('+')[0]}-1~debian.12~bookworm", (server, versions)
    compose = HOST.shell("docker compose version --short").strip()
    assert compose.split("-")[0] == versions["docker-compose-plugin"].split("-")[0], (compose, versions)

    running, started = started_at(HOST, "ollama").split()
    assert running == "true" and started != container_before.split()[1], "the container did not restart"
    volume_after = volume_state(HOST)
    assert volume_after["directory"] == volume_before["directory"], "the model volume is not the same directory"
    assert volume_after["files"] == volume_before["files"], "the model files changed"
    assert "manifests/registry.ollama.ai/library/llama3.1/8b" in volume_after["files"], volume_after["files"]
    assert MODEL in [model["name"] for model in ollama_api(HOST, "/api/tags")["models"]]
    assert registry.bytes_sent_to(client) == bytes_before, "the model was downloaded again"
    print(f"switch: {', '.join(f'{package} {version}' for package, version in versions.items())}; "
          f"engine {server}; volume {VOLUME} and {MODEL} kept, ollama restarted")

    again = runner.run("site.yml", HOST.name, SWITCH, options=ONLY_DOCKER_ENGINE, timeout=300)
    assert again.returncode == 0 and again.recap[HOST.name]["changed"] == 0, again.describe()


def test_the_way_back_on_debian_12_stops_before_removing_compose(runner: PlaybookRunner) -> None:
    """Back to distro, even allowed: Debian 12 has no compose v2, and the switch would remove Docker CE's."""
    versions = {package: installed(HOST, package) for package in DOCKER_CE}
    assert all(versions.values()), f"the switch test did not leave Docker CE installed: {versions}"
    back = {"docker_engine_source": "distro", "docker_engine_allow_source_switch": True}

    result = runner.run("site.yml", HOST.name, back, options=ONLY_DOCKER_ENGINE, timeout=300)

    assert result.returncode != 0, f"the way back went ahead:\n{result.describe()}"
    failure = result.the_failure_of(HOST.name)
    assert failure.task == "lpfleet.ai.docker_engine : Stop where the distribution has no compose v2 package", \
        result.describe()
    for fragment in [HOST.name, "Debian 12 (bookworm)", "docker-compose-plugin) would go with the switch", "Fix:"]:
        assert fragment in failure.msg, f"the message lacks {fragment!r}:\n{failure.msg}"
    assert result.recap[HOST.name]["changed"] == 0, result.describe()
    assert {package: installed(HOST, package) for package in DOCKER_CE} == versions
