"""What `molecule verify` checks on the converged lab host (an 8 GB card), from inside the host."""

import json
from pathlib import Path

import pytest

EXPECTED_AI_MODELS = Path(__file__).resolve().parent.parent / "expected" / "aiModels.json"
CONTAINERS = ("ollama", "llm_runner")
HF_ID = "meta-llama/Meta-Llama-3.1-8B-Instruct"


def inspect(host, name):
    result = host.run("docker inspect %s", name)
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)[0]


def http(host, method, url, body=None, token="", timeout=60):
    """An HTTP call made by the host's own Python (lab hosts have no curl): (status, content type, body)."""
    script = (
        "import json, sys, urllib.request, urllib.error\n"
        "req = urllib.request.Request(sys.argv[2], method=sys.argv[1], data=sys.argv[3].encode() or None,"
        " headers={'Content-Type': 'application/json'})\n"
        "if sys.argv[4]:\n    req.add_header('Authorization', 'Bearer ' + sys.argv[4])\n"
        "try:\n    r = urllib.request.urlopen(req, timeout=%d)\n"
        "except urllib.error.HTTPError as e:\n    r = e\n"
        "print(json.dumps([r.status, r.headers.get('Content-Type'), r.read().decode()]))\n" % timeout
    )
    result = host.run("python3 -c %s %s %s %s %s", script, method, url, json.dumps(body) if body else "", token)
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def token(host):
    return host.ansible.get_variables()["lpfleet_runner_token"]


@pytest.fixture(scope="module")
def ai_models_path(host):
    return host.ansible.get_variables().get("ai_models_path", "/root/.lpData/aiModels.json")


DOCKER_CE_PACKAGES = ("docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin", "docker-compose-plugin")


def installed_version(host, package):
    """The installed version of PACKAGE, or None."""
    result = host.run("dpkg-query --show --showformat='${db:Status-Status} ${Version}' %s", package)
    status, _, version = result.stdout.partition(" ")
    return version if result.rc == 0 and status == "installed" else None


def test_docker_comes_from_the_source_asked_for(host):
    """distro: Debian's docker.io; docker: Docker CE's packages from Docker's repository, compose v2 its plugin."""
    if host.ansible.get_variables().get("docker_engine_source", "distro") == "distro":
        assert installed_version(host, "docker.io")
        assert not installed_version(host, "docker-ce")
        return
    versions = {package: installed_version(host, package) for package in DOCKER_CE_PACKAGES}
    assert all(versions.values()), versions
    assert not installed_version(host, "docker.io")
    # The lab's stand-in engine reports the version Debian built it as (26.1.5+dfsg1).
    engine = host.run("docker version --format '{{.Server.Version}}'")
    upstream = engine.stdout.strip().split("+")[0]
    assert engine.rc == 0, engine.stderr
    assert versions["docker-ce"].startswith("5:" + upstream + "-1~debian."), (engine.stdout, versions)
    owner = host.run("dpkg-query --search /usr/libexec/docker/cli-plugins/docker-compose")
    assert owner.stdout.startswith("docker-compose-plugin:"), owner.stdout
    # deb822 source with the pinned key inline (the lab key's fingerprint, from inventories/lab).
    source = host.file("/etc/apt/sources.list.d/docker.sources").content_string
    assert "Suites: bookworm" in source and "Components: stable" in source
    assert "Signed-By:" in source and "BEGIN PGP PUBLIC KEY BLOCK" in source
    assert not host.file("/etc/apt/sources.list.d/docker.list").exists


def test_network_and_volume_exist(host):
    assert host.run("docker network inspect livepeer-ai").rc == 0
    assert host.run("docker volume inspect ollama").rc == 0


@pytest.mark.parametrize("name", CONTAINERS)
def test_containers_run_with_the_nvidia_runtime(host, name):
    info = inspect(host, name)
    assert info["State"]["Running"], info["State"]
    assert info["HostConfig"]["Runtime"] == "nvidia"
    assert "creator" not in (info["Config"]["Labels"] or {}), "go-livepeer -aiWorker would delete it"


@pytest.mark.parametrize("name", CONTAINERS)
def test_ports_are_bound_to_loopback_only(host, name):
    bindings = inspect(host, name)["HostConfig"]["PortBindings"] or {}
    assert bindings, "%s publishes no port" % name
    for port, binds in bindings.items():
        for bind in binds:
            assert bind["HostIp"] == "127.0.0.1", (name, port, bind)
    listening = host.run("ss -Hltn").stdout
    assert "0.0.0.0:11434" not in listening and "0.0.0.0:8000" not in listening
    assert "127.0.0.1:11434" in listening and "127.0.0.1:8000" in listening


@pytest.mark.parametrize("name", CONTAINERS)
def test_containers_run_without_capabilities_or_new_privileges(host, name):
    config = inspect(host, name)["HostConfig"]
    assert config["CapDrop"] == ["ALL"] and not config["CapAdd"], (config["CapDrop"], config["CapAdd"])
    assert "no-new-privileges:true" in (config["SecurityOpt"] or [])


def test_the_warm_unit_comes_with_docker(host):
    """lpfleet-ollama-warm.service: started by Docker (boot, restart), with the warm model of the plan."""
    unit = host.file("/etc/systemd/system/lpfleet-ollama-warm.service").content_string
    assert "WantedBy=docker.service" in unit and "PartOf=docker.service" in unit
    assert host.run("systemctl is-enabled lpfleet-ollama-warm.service").stdout.strip() == "enabled"
    config = json.loads(host.file("/opt/lpfleet/ollama-stack/warm.json").content_string)
    assert config["servers"] == [{"url": "http://127.0.0.1:11434", "models": ["llama3.1:8b"]}], config


def test_the_model_is_in_the_ollama_store(host):
    listed = host.run("docker exec ollama ollama list")
    assert listed.rc == 0 and "llama3.1:8b" in listed.stdout
    volume = inspect(host, "ollama")["Mounts"]
    source = next(m["Source"] for m in volume if m["Destination"] == "/root/.ollama")
    manifest = host.file(source + "/models/manifests/registry.ollama.ai/library/llama3.1/8b")
    assert manifest.is_file
    for layer in json.loads(manifest.content_string)["layers"]:
        assert host.file(source + "/models/blobs/" + layer["digest"].replace(":", "-")).size == layer["size"]


def test_the_warm_model_is_loaded(host):
    status, _type, body = http(host, "GET", "http://127.0.0.1:11434/api/ps")
    assert status == 200
    assert "llama3.1:8b" in [model["name"] for model in json.loads(body)["models"]]


def test_ai_models_json_is_the_expected_file(host, ai_models_path):
    written = host.file(ai_models_path)
    assert written.exists and written.user == "root"
    assert written.mode == 0o600, "aiModels.json carries the runner token: root only"
    assert json.loads(written.content_string) == json.loads(EXPECTED_AI_MODELS.read_text())


def test_ai_models_json_is_accepted_by_the_orchestrator_stand_in(host, ai_models_path):
    image = host.ansible.get_variables()["ai_models_livepeer_image"]
    result = host.run(
        "docker run --rm --network livepeer-ai -v %s:/aiModels.json:ro %s check -aiModels /aiModels.json "
        "-nvidia 0 -maxWait 60", ai_models_path, image)
    report = json.loads(result.stdout)
    assert result.rc == 0 and report["ok"], report
    assert [entry["model_id"] for entry in report["registered"]] == [HF_ID]
    assert report["registered"][0]["status"] == "OK"


def test_runner_health_answers_json(host):
    status, content_type, body = http(host, "GET", "http://127.0.0.1:8000/health")
    assert status == 200 and content_type.startswith("application/json")
    assert json.loads(body)["status"] == "OK"


def test_llm_refuses_a_call_without_the_token(host):
    request = {"messages": [{"role": "user", "content": "Say OK"}], "model": HF_ID, "max_tokens": 16}
    status, _type, _body = http(host, "POST", "http://127.0.0.1:8000/llm", request)
    assert status == 401


def test_smoke_llm_call_answers(host, token):
    request = {"messages": [{"role": "user", "content": "Say OK"}], "model": HF_ID, "max_tokens": 16}
    status, _type, body = http(host, "POST", "http://127.0.0.1:8000/llm", request, token=token)
    assert status == 200, body
    answer = json.loads(body)
    assert answer["choices"][0]["message"]["content"]
    assert answer["model"] == HF_ID
