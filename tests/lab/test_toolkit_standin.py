"""Tests of the lab's NVIDIA Container Toolkit stand-in: nvidia-ctk, the runtime wrapper, the hook,
nvidia-container-cli and the signed apt repository that build-repo.sh lays out. No Docker needed:
the runtime wrapper execs a fake runc that records its arguments.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys

import pytest
from driver_helpers import (
    TOOLKIT_DIR,
    TOOLKIT_SRC,
    clean_env,
    install_driver,
    load_profile,
    load_source_module,
    profile_path,
    require_tools,
)

NVIDIA_CTK = TOOLKIT_SRC / "nvidia_ctk.py"
RUNTIME = TOOLKIT_SRC / "nvidia_container_runtime.py"
CLI = TOOLKIT_SRC / "nvidia_container_cli.py"
HOOK = TOOLKIT_SRC / "nvidia-container-runtime-hook"
PACKAGES = ("nvidia-container-toolkit", "nvidia-container-toolkit-base", "libnvidia-container-tools",
            "libnvidia-container1")
VERSIONS = ("1.17.7-1", "1.17.8-1")
NVIDIA_RUNTIME = {"path": "nvidia-container-runtime", "args": []}
INFO_LINES = [
    "INFO[0000] Wrote updated config to {path}",
    "INFO[0000] It is recommended that docker daemon be restarted.",
]


def run_ctk(*args, env=None):
    return subprocess.run([sys.executable, str(NVIDIA_CTK), *args], capture_output=True, text=True, check=False,
                          env=env or clean_env(), timeout=30)


def configure(config, *extra):
    return run_ctk("runtime", "configure", "--runtime=docker", f"--config={config}", *extra)


# --------------------------------------------------------------------------- nvidia-ctk


def test_ctk_creates_a_missing_daemon_json(tmp_path):
    config = tmp_path / "docker" / "daemon.json"
    result = configure(config)
    assert result.returncode == 0, result.stderr
    assert json.loads(config.read_text()) == {"runtimes": {"nvidia": NVIDIA_RUNTIME}}
    assert result.stderr.splitlines() == ["INFO[0000] Config file does not exist; creating new one"] + [
        line.format(path=config) for line in INFO_LINES]
    assert stat.S_IMODE(config.stat().st_mode) == 0o644


def test_ctk_keeps_other_keys_and_runtimes(tmp_path):
    config = tmp_path / "daemon.json"
    original = {
        "registry-mirrors": ["http://127.0.0.1:5000"],
        "log-driver": "json-file",
        "insecure-registries": ["registry:5000"],
        "storage-driver": "vfs",
        "runtimes": {"runsc": {"path": "/usr/bin/runsc"}},
    }
    config.write_text(json.dumps(original))
    config.chmod(0o600)
    result = configure(config)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [line.format(path=config) for line in INFO_LINES]
    expected = dict(original, runtimes={"runsc": {"path": "/usr/bin/runsc"}, "nvidia": NVIDIA_RUNTIME})
    assert json.loads(config.read_text()) == expected
    assert stat.S_IMODE(config.stat().st_mode) == 0o600, "the file's mode must be kept"
    assert config.read_text() == json.dumps(expected, indent=4, sort_keys=True), "Go's MarshalIndent layout"


def test_ctk_set_as_default_and_repairs_a_wrong_path(tmp_path):
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"runtimes": {"nvidia": {"path": "/opt/old-runtime", "runtimeArgs": ["x"]}}}))
    result = configure(config, "--set-as-default")
    assert result.returncode == 0, result.stderr
    assert json.loads(config.read_text()) == {"default-runtime": "nvidia", "runtimes": {"nvidia": NVIDIA_RUNTIME}}


def test_ctk_dry_run_prints_and_changes_nothing(tmp_path):
    config = tmp_path / "daemon.json"
    config.write_text('{"log-driver": "local"}\n')
    before = config.stat()
    result = configure(config, "--dry-run", "--set-as-default")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"log-driver": "local", "default-runtime": "nvidia",
                                         "runtimes": {"nvidia": NVIDIA_RUNTIME}}
    assert config.read_text() == '{"log-driver": "local"}\n'
    assert config.stat().st_mtime_ns == before.st_mtime_ns
    assert "Wrote" not in result.stderr
    missing = tmp_path / "absent" / "daemon.json"
    assert configure(missing, "--dry-run").returncode == 0
    assert not missing.parent.exists()


def test_ctk_second_run_changes_nothing(tmp_path):
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"log-driver": "json-file"}))
    assert configure(config).returncode == 0
    first = config.read_bytes()
    assert configure(config).returncode == 0
    assert config.read_bytes() == first


@pytest.mark.parametrize(("content", "fragment"), [
    ("{not json", "is not valid JSON"),
    ('["a list"]', "must hold a JSON object, found list"),
    ('{"runtimes": ["nvidia"]}', '"runtimes" must be a JSON object'),
])
def test_ctk_refuses_a_broken_daemon_json(tmp_path, content, fragment):
    config = tmp_path / "daemon.json"
    config.write_text(content)
    result = configure(config)
    assert result.returncode == 1
    assert result.stderr.startswith("ERRO[0000] ")
    assert fragment in result.stderr
    assert config.read_text() == content


def test_ctk_rejects_other_runtimes_and_options(tmp_path):
    unknown = run_ctk("runtime", "configure", "--runtime=podman", f"--config={tmp_path / 'x.json'}")
    assert unknown.returncode == 1 and "unrecognized runtime 'podman'" in unknown.stderr
    containerd = run_ctk("runtime", "configure", "--runtime=containerd", f"--config={tmp_path / 'x.json'}")
    assert containerd.returncode == 1 and "only --runtime=docker" in containerd.stderr
    bad_flag = run_ctk("runtime", "configure", "--set-as-defaul")
    assert bad_flag.returncode == 1 and "ERRO[0000]" in bad_flag.stderr
    assert not (tmp_path / "x.json").exists()


def test_ctk_version():
    result = run_ctk("--version")
    assert result.returncode == 0
    assert result.stdout.splitlines() == ["NVIDIA Container Toolkit CLI version 1.17.8",
                                          "commit: lpfleet-lab stand-in"]


# --------------------------------------------------------------------------- runtime wrapper

DOCKER_CREATE_ARGS = [
    "--root", "/var/run/docker/runtime-runc/moby", "--log", "/run/containerd/log.json", "--log-format", "json",
    "--systemd-cgroup", "create", "--bundle", "{bundle}", "--pid-file", "/run/init.pid", "abc123",
]


@pytest.fixture(scope="module")
def driver_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("driver-root")
    result = install_driver(root, profile_path("docs-4090-2060"))
    assert result.returncode == 0, result.stderr
    return root


@pytest.fixture
def fake_runc(tmp_path):
    """A runc first on PATH that records its argv (one per line) and exits 0."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "runc-argv"
    runc = bin_dir / "runc"
    runc.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{record}"\n')
    runc.chmod(0o755)
    return bin_dir, record


def make_bundle(tmp_path, env):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    spec = {
        "ociVersion": "1.0.2",
        "process": {"args": ["nvidia-smi"], "env": ["PATH=/usr/bin:/bin", *env]},
        "root": {"path": "rootfs"},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
    }
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


def run_runtime(args, bin_dir, driver_root):
    env = clean_env(PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
                    LPFLEET_LAB_DRIVER_ROOT=str(driver_root))
    return subprocess.run([sys.executable, str(RUNTIME), *args], capture_output=True, text=True, check=False,
                          env=env, timeout=30)


def driver_mounts(driver_root):
    return [
        {"destination": "/usr/bin/nvidia-smi", "type": "bind",
         "source": str(driver_root / "usr/bin/nvidia-smi"), "options": ["rbind", "ro", "nosuid", "nodev"]},
        {"destination": "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1", "type": "bind",
         "source": str(driver_root / "usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1"),
         "options": ["rbind", "ro", "nosuid", "nodev"]},
        {"destination": "/etc/lpfleet-lab/gpus.json", "type": "bind",
         "source": str(driver_root / "etc/lpfleet-lab/gpus.json"), "options": ["rbind", "ro", "nosuid", "nodev"]},
    ]


@pytest.mark.parametrize("visible", ["all", "0,1", "1", "GPU-9d6a9195-48a5-0b93-325a-c7a7cbaa1584"])
def test_runtime_injects_the_driver_then_execs_runc(tmp_path, fake_runc, driver_root, visible):
    bin_dir, record = fake_runc
    bundle = make_bundle(tmp_path, ["NVIDIA_VISIBLE_DEVICES=void", f"NVIDIA_VISIBLE_DEVICES={visible}"])
    args = [arg.format(bundle=bundle) for arg in DOCKER_CREATE_ARGS]
    result = run_runtime(args, bin_dir, driver_root)
    assert result.returncode == 0, result.stderr
    assert record.read_text().splitlines() == args
    spec = json.loads((bundle / "config.json").read_text())
    assert spec["mounts"] == [{"destination": "/proc", "type": "proc", "source": "proc"}, *driver_mounts(driver_root)]
    assert spec["process"]["args"] == ["nvidia-smi"]


@pytest.mark.parametrize("env", [[], ["NVIDIA_VISIBLE_DEVICES=void"], ["NVIDIA_VISIBLE_DEVICES=none"],
                                 ["NVIDIA_VISIBLE_DEVICES="]])
def test_runtime_leaves_containers_without_gpus_alone(tmp_path, fake_runc, driver_root, env):
    bin_dir, record = fake_runc
    bundle = make_bundle(tmp_path, env)
    before = (bundle / "config.json").read_bytes()
    args = ["run", "-b", str(bundle), "plain"]
    result = run_runtime(args, bin_dir, driver_root)
    assert result.returncode == 0, result.stderr
    assert (bundle / "config.json").read_bytes() == before
    assert record.read_text().splitlines() == args


@pytest.mark.parametrize("args", [["state", "create"], ["delete", "--force", "create"], ["--version"],
                                  ["features"], ["--root", "create", "kill", "x"]])
def test_runtime_passes_other_commands_through(tmp_path, fake_runc, driver_root, args):
    bin_dir, record = fake_runc
    (tmp_path / "config.json").write_text("not json: must not be read")
    result = subprocess.run([sys.executable, str(RUNTIME), *args], capture_output=True, text=True, check=False,
                            cwd=tmp_path, env=clean_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                                                        LPFLEET_LAB_DRIVER_ROOT=str(driver_root)))
    assert result.returncode == 0, result.stderr
    assert record.read_text().splitlines() == args


def test_runtime_rejects_unknown_devices(tmp_path, fake_runc, driver_root):
    bin_dir, record = fake_runc
    bundle = make_bundle(tmp_path, ["NVIDIA_VISIBLE_DEVICES=0,5"])
    result = run_runtime(["create", "--bundle", str(bundle), "x"], bin_dir, driver_root)
    assert result.returncode == 1
    assert "nvidia-container-cli: device error: 5: unknown device" in result.stderr
    assert not record.exists(), "runc must not run"


def test_runtime_fails_like_the_toolkit_without_a_driver(tmp_path, fake_runc):
    bin_dir, record = fake_runc
    bundle = make_bundle(tmp_path, ["NVIDIA_VISIBLE_DEVICES=all"])
    empty_root = tmp_path / "no-driver"
    empty_root.mkdir()
    result = run_runtime(["create", f"--bundle={bundle}", "x"], bin_dir, empty_root)
    assert result.returncode == 1
    assert "load library failed: libnvidia-ml.so.1" in result.stderr
    assert str(empty_root) in result.stderr
    assert not record.exists()


def test_runtime_functions():
    runtime = load_source_module(RUNTIME, "lab_nvidia_container_runtime")
    assert runtime.find_create_bundle(["--root", "/r", "create", "--bundle", "/b", "id"], "/cwd") == "/b"
    assert runtime.find_create_bundle(["run", "id"], "/cwd") == "/cwd"
    assert runtime.find_create_bundle(["--log-format=json", "create", "-b=/x", "id"], "/cwd") == "/x"
    assert runtime.find_create_bundle(["start", "create"], "/cwd") is None
    assert runtime.wants_gpus({"NVIDIA_VISIBLE_DEVICES": "all"})
    assert not runtime.wants_gpus({"NVIDIA_VISIBLE_DEVICES": "VOID"})
    assert not runtime.wants_gpus({"CUDA_VISIBLE_DEVICES": "0"})
    files = [("/host/smi", "/usr/bin/nvidia-smi")]
    spec = {"mounts": [{"destination": "/usr/bin/nvidia-smi", "type": "bind", "source": "/elsewhere"}]}
    assert runtime.add_driver_mounts(spec, files) == spec, "an existing destination is left alone"
    once = runtime.add_driver_mounts({}, files)
    assert runtime.add_driver_mounts(once, files) == once


def test_runtime_needs_runc(tmp_path, driver_root):
    bundle = make_bundle(tmp_path, [])
    result = subprocess.run([sys.executable, str(RUNTIME), "create", "--bundle", str(bundle), "x"],
                            capture_output=True, text=True, check=False,
                            env=clean_env(PATH=str(tmp_path), LPFLEET_LAB_DRIVER_ROOT=str(driver_root)))
    assert result.returncode == 1 and "runc not found on PATH" in result.stderr


# --------------------------------------------------------------------------- hook and nvidia-container-cli


def test_hook_consumes_state_and_succeeds():
    state = json.dumps({"ociVersion": "1.0.2", "id": "x", "pid": 1, "bundle": "/tmp/none"})
    result = subprocess.run([str(HOOK), "prestart"], input=state, capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    version = subprocess.run([str(HOOK), "--version"], capture_output=True, text=True, check=False)
    assert "NVIDIA Container Runtime Hook version 1.17.8" in version.stdout


def test_cli_info_lists_the_host_gpus(driver_root):
    profile = load_profile("docs-4090-2060")
    result = subprocess.run([sys.executable, str(CLI), "info"], capture_output=True, text=True, check=False,
                            env=clean_env(LPFLEET_LAB_DRIVER_ROOT=str(driver_root)))
    assert result.returncode == 0, result.stderr
    assert "NVRM version:   550.54.14" in result.stdout
    assert re.findall(r"^GPU UUID:\s+(\S+)$", result.stdout, re.M) == [gpu["uuid"] for gpu in profile["gpus"]]


def test_cli_without_driver(tmp_path):
    result = subprocess.run([sys.executable, str(CLI), "info"], capture_output=True, text=True, check=False,
                            env=clean_env(LPFLEET_LAB_DRIVER_ROOT=str(tmp_path)))
    assert result.returncode == 1
    assert result.stderr.startswith("nvidia-container-cli: initialization error: load library failed")


# --------------------------------------------------------------------------- build-repo.sh


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    require_tools("dpkg-deb", "dpkg-scanpackages", "gpg", "gpgv", "gpgconf")
    base = tmp_path_factory.mktemp("toolkit-repo")
    env = clean_env(LPFLEET_LAB_REPO_GNUPGHOME=str(base / "gnupg"))
    result = subprocess.run([str(TOOLKIT_DIR / "build-repo.sh"), str(base / "out")], capture_output=True,
                            text=True, check=False, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    root = base / "out" / "libnvidia-container"
    keyring = base / "keyring.gpg"
    subprocess.run(["gpg", "--batch", "--yes", "--dearmor", "-o", str(keyring), str(root / "gpgkey")], check=True,
                   env=env)
    return {"base": base, "env": env, "root": root, "flat": root / "stable" / "deb" / "amd64", "keyring": keyring}


def parse_packages(text):
    return [dict(re.findall(r"^([\w-]+): (.*)$", stanza, re.M)) for stanza in text.strip().split("\n\n")]


def test_repo_layout(repo):
    flat = repo["flat"]
    for name in ("Packages", "Packages.gz", "Release", "InRelease", "Release.gpg"):
        assert (flat / name).is_file(), name
    assert (repo["root"] / "gpgkey").read_text().startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    listing = (repo["root"] / "stable" / "deb" / "nvidia-container-toolkit.list").read_text()
    assert listing == "deb http://nvidia-repo/libnvidia-container/stable/deb/$(ARCH) /\n"
    assert gzip.decompress((flat / "Packages.gz").read_bytes()) == (flat / "Packages").read_bytes()


def test_repo_signatures_verify(repo, tmp_path):
    flat, keyring = repo["flat"], str(repo["keyring"])
    inline = subprocess.run(["gpgv", "--keyring", keyring, str(flat / "InRelease")], capture_output=True, check=False)
    assert inline.returncode == 0, inline.stderr
    detached = subprocess.run(["gpgv", "--keyring", keyring, str(flat / "Release.gpg"), str(flat / "Release")],
                              capture_output=True, check=False)
    assert detached.returncode == 0, detached.stderr
    tampered = tmp_path / "Release"
    tampered.write_text((flat / "Release").read_text().replace("amd64", "arm64"))
    forged = subprocess.run(["gpgv", "--keyring", keyring, str(flat / "Release.gpg"), str(tampered)],
                            capture_output=True, check=False)
    assert forged.returncode != 0


def test_repo_release_hashes_match(repo):
    flat = repo["flat"]
    release = (flat / "Release").read_text()
    for name in ("Packages", "Packages.gz"):
        data = (flat / name).read_bytes()
        assert re.search(rf"^ {hashlib.sha256(data).hexdigest()} +{len(data)} {name}$", release, re.M), name


def test_repo_lists_both_versions_of_each_package(repo):
    flat = repo["flat"]
    stanzas = parse_packages((flat / "Packages").read_text())
    assert sorted((s["Package"], s["Version"]) for s in stanzas) == sorted(
        (package, version) for package in PACKAGES for version in VERSIONS)
    for stanza in stanzas:
        deb = flat / stanza["Filename"]
        assert hashlib.sha256(deb.read_bytes()).hexdigest() == stanza["SHA256"]
        if stanza["Package"] == "nvidia-container-toolkit":
            assert f"nvidia-container-toolkit-base (= {stanza['Version']})" in stanza["Depends"]
            assert f"libnvidia-container-tools (>= {stanza['Version']})" in stanza["Depends"]
        if stanza["Package"] == "nvidia-container-toolkit-base":
            assert stanza["Depends"] == "python3"


@pytest.mark.parametrize("version", VERSIONS)
def test_repo_packages_install_the_programs(repo, tmp_path, version):
    upstream = version.split("-")[0]
    for package in PACKAGES:
        subprocess.run(["dpkg-deb", "-x", str(repo["flat"] / f"{package}_{version}_amd64.deb"), str(tmp_path)],
                       check=True)
    for program in ("nvidia-ctk", "nvidia-container-runtime", "nvidia-container-runtime-hook",
                    "nvidia-container-cli"):
        path = tmp_path / "usr" / "bin" / program
        assert stat.S_IMODE(path.stat().st_mode) == 0o755, program
    assert (tmp_path / "usr/bin/nvidia-ctk").read_text().startswith("#!/usr/bin/python3\n")
    ctk = subprocess.run([str(tmp_path / "usr/bin/nvidia-ctk"), "--version"], capture_output=True, text=True,
                         check=False)
    assert ctk.stdout.startswith(f"NVIDIA Container Toolkit CLI version {upstream}\n")
    hook = subprocess.run([str(tmp_path / "usr/bin/nvidia-container-runtime-hook"), "--version"],
                          capture_output=True, text=True, check=False)
    assert f"version {upstream}" in hook.stdout
    contents = subprocess.run(["dpkg-deb", "-f", str(repo["flat"] / f"nvidia-container-toolkit_{version}_amd64.deb"),
                               "Version"], capture_output=True, text=True, check=True)
    assert contents.stdout.strip() == version


def test_repo_works_with_apt_and_pinning(repo, tmp_path):
    require_tools("apt-get", "apt-cache")
    state = tmp_path / "apt"
    for directory in ("lists/partial", "cache/archives/partial", "sources.list.d", "preferences.d"):
        (state / directory).mkdir(parents=True)
    sources = state / "sources.list"
    sources.write_text(f"deb [signed-by={repo['keyring']}] file://{repo['flat'].parent}/$(ARCH) /\n")
    options = []
    for key, value in {"Dir::Etc::SourceList": sources, "Dir::Etc::SourceParts": state / "sources.list.d",
                       "Dir::State::Lists": state / "lists", "Dir::Cache": state / "cache",
                       "Dir::Etc::PreferencesParts": state / "preferences.d",
                       "Dir::Etc::Preferences": state / "preferences", "APT::Sandbox::User": "root",
                       "APT::Architecture": "amd64"}.items():
        options += ["-o", f"{key}={value}"]
    update = subprocess.run(["apt-get", *options, "update"], capture_output=True, text=True, check=False, timeout=60)
    assert update.returncode == 0 and "NO_PUBKEY" not in update.stderr, update.stderr
    policy = subprocess.run(["apt-cache", *options, "policy", "nvidia-container-toolkit"], capture_output=True,
                            text=True, check=True)
    assert re.search(r"Candidate: 1\.17\.8-1", policy.stdout)
    assert "1.17.7-1" in policy.stdout
    pinned = [f"{package}=1.17.7-1" for package in PACKAGES]
    simulated = subprocess.run(["apt-get", *options, "-s", "install", *pinned], capture_output=True, text=True,
                               check=False)
    assert simulated.returncode == 0, simulated.stdout + simulated.stderr
    installs = re.findall(r"^Inst (\S+) \((\S+) ", simulated.stdout, re.M)
    assert sorted(name for name, version in installs if name in PACKAGES) == sorted(PACKAGES)
    assert {version for name, version in installs if name in PACKAGES} == {"1.17.7-1"}


def test_repo_rebuild_is_safe_and_deterministic(repo):
    flat = repo["flat"]
    packages_before = (flat / "Packages").read_bytes()
    key_before = (repo["root"] / "gpgkey").read_bytes()
    out = repo["base"] / "out"
    result = subprocess.run([str(TOOLKIT_DIR / "build-repo.sh"), str(out)], capture_output=True, text=True,
                            check=False, env=repo["env"], timeout=120)
    assert result.returncode == 0, result.stderr
    assert (flat / "Packages").read_bytes() == packages_before
    assert (repo["root"] / "gpgkey").read_bytes() == key_before
    assert sorted(path.name for path in out.iterdir()) == ["libnvidia-container"], "no leftovers beside the repo"


def test_repo_build_reports_missing_tools(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "mkdir", "cat"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    result = subprocess.run([str(TOOLKIT_DIR / "build-repo.sh"), str(tmp_path / "out")], capture_output=True,
                            text=True, check=False, env=clean_env(PATH=str(bin_dir)))
    assert result.returncode == 1
    assert "missing tools:" in result.stderr and "dpkg-deb" in result.stderr
    assert not (tmp_path / "out").exists()
