"""Tests of lab/docker-ce-repo/build-repo.sh, the Docker CE repository stand-in, without Docker.

The Debian packages it repackages are faked here (same names, versions and file paths as Debian's,
each program a copy of this machine's /bin/true, an ELF that needs an old glibc), so the test needs
no download: it checks Docker's layout, names, versions and relationships, the signatures, that apt
accepts the repository as `deb [signed-by=...] <url>/debian bookworm stable`, and that a binary
needing a newer glibc than Debian 12's stops the build.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from driver_helpers import clean_env, require_tools

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_REPO = REPO_ROOT / "lab" / "docker-ce-repo" / "build-repo.sh"
ELF = Path("/bin/true")

# Debian package -> (version, programs at Debian's paths)
FAKE_DEBIAN = {
    "docker.io": ("26.1.5+dfsg1-9+deb13u1+b1", ["usr/sbin/dockerd", "usr/sbin/docker-proxy"]),
    "docker-cli": ("26.1.5+dfsg1-9+deb13u1+b1", ["usr/bin/docker"]),
    "containerd": ("1.7.24~ds1-6+deb13u1", ["usr/bin/containerd", "usr/bin/containerd-shim-runc-v2", "usr/bin/ctr"]),
    "runc": ("1.1.5+ds1-1+deb12u1", ["usr/sbin/runc"]),
    "tini": ("0.19.0-1+b3", ["usr/bin/tini", "usr/bin/tini-static"]),
    "docker-compose": ("2.26.1-4", ["usr/libexec/docker/cli-plugins/docker-compose"]),
    "docker-buildx": ("0.13.1+ds1-3", ["usr/libexec/docker/cli-plugins/docker-buildx"]),
}
EXPECTED_VERSIONS = {
    "docker-ce": "5:26.1.5-1~debian.12~bookworm",
    "docker-ce-cli": "5:26.1.5-1~debian.12~bookworm",
    "containerd.io": "1.7.24-1",
    "docker-buildx-plugin": "0.13.1-1~debian.12~bookworm",
    "docker-compose-plugin": "2.26.1-1~debian.12~bookworm",
}
EXPECTED_FILES = {
    "docker-ce": ["./usr/bin/dockerd", "./usr/bin/docker-proxy", "./usr/bin/docker-init",
                  "./lib/systemd/system/docker.service", "./lib/systemd/system/docker.socket"],
    "docker-ce-cli": ["./usr/bin/docker"],
    "containerd.io": ["./usr/bin/containerd", "./usr/bin/containerd-shim-runc-v2", "./usr/bin/ctr", "./usr/bin/runc",
                      "./lib/systemd/system/containerd.service", "./etc/containerd/config.toml"],
    "docker-buildx-plugin": ["./usr/libexec/docker/cli-plugins/docker-buildx"],
    "docker-compose-plugin": ["./usr/libexec/docker/cli-plugins/docker-compose"],
}


def fake_debian_packages(debdir: Path, work: Path) -> None:
    for package, (version, programs) in FAKE_DEBIAN.items():
        root = work / package
        for program in programs:
            (root / program).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ELF, root / program)
        (root / "DEBIAN").mkdir()
        (root / "DEBIAN" / "control").write_text(
            f"Package: {package}\nVersion: {version}\nArchitecture: amd64\nMaintainer: test <t@example.invalid>\n"
            f"Description: fake {package}\n")
        subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root),
                        str(debdir / f"{package}_{version}_amd64.deb")], check=True, capture_output=True)


def build(debdir: Path, out: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BUILD_REPO), str(debdir), str(out)], capture_output=True, text=True, check=False,
                          env=clean_env(**env), timeout=300)


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tools("dpkg-deb", "dpkg-scanpackages", "gpg", "gpgv", "gpgconf", "objdump")
    base = tmp_path_factory.mktemp("docker-ce-debs")
    (base / "debs").mkdir()
    fake_debian_packages(base / "debs", base / "work")
    return base / "debs"


@pytest.fixture(scope="module")
def repo(debs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("docker-ce-repo")
    result = build(debs, base / "out", LPFLEET_LAB_REPO_GNUPGHOME=str(base / "gnupg"))
    assert result.returncode == 0, result.stderr
    debian = base / "out" / "linux" / "debian"
    keyring = base / "keyring.gpg"
    subprocess.run(["gpg", "--batch", "--yes", "--dearmor", "-o", str(keyring), str(debian / "gpg")], check=True,
                   env=clean_env(GNUPGHOME=str(base / "gnupg")))
    return {"debian": debian, "suite": debian / "dists" / "bookworm", "keyring": keyring}


def packages(repo: dict[str, Path]) -> dict[str, dict[str, str]]:
    text = (repo["suite"] / "stable" / "binary-amd64" / "Packages").read_text()
    stanzas = [dict(re.findall(r"^([\w-]+): (.*)$", stanza, re.M)) for stanza in text.strip().split("\n\n")]
    return {stanza["Package"]: stanza for stanza in stanzas}


def test_docker_ce_names_versions_and_pool(repo: dict[str, Path]) -> None:
    listed = packages(repo)
    assert {name: stanza["Version"] for name, stanza in listed.items()} == EXPECTED_VERSIONS
    for stanza in listed.values():
        assert stanza["Filename"].startswith("dists/bookworm/pool/stable/amd64/"), stanza
        assert (repo["debian"] / stanza["Filename"]).is_file()


def test_relationships_are_docker_ce_ones(repo: dict[str, Path]) -> None:
    listed = packages(repo)
    assert "docker.io" in listed["docker-ce"]["Conflicts"]
    assert "containerd.io (>= 1.6.24)" in listed["docker-ce"]["Depends"]
    assert "docker-ce-cli" in listed["docker-ce"]["Depends"]
    assert "docker.io" in listed["docker-ce-cli"]["Conflicts"]
    assert listed["docker-ce-cli"]["Recommends"] == "docker-buildx-plugin, docker-compose-plugin"
    assert listed["containerd.io"]["Conflicts"] == "containerd, runc"
    assert listed["containerd.io"]["Provides"] == "containerd, runc"


@pytest.mark.parametrize("package", sorted(EXPECTED_FILES))
def test_files_are_where_docker_ce_has_them(repo: dict[str, Path], package: str) -> None:
    deb = repo["debian"] / packages(repo)[package]["Filename"]
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    paths = [line.split()[5] for line in listing.splitlines()]
    assert set(EXPECTED_FILES[package]) <= set(paths), paths
    assert f"./usr/share/doc/{package}/README.lpfleet-lab" in paths


def test_docker_ce_units_and_maintainer_scripts(repo: dict[str, Path], tmp_path: Path) -> None:
    deb = repo["debian"] / packages(repo)["docker-ce"]["Filename"]
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tmp_path)], check=True)
    unit = (tmp_path / "lib/systemd/system/docker.service").read_text()
    assert "ExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock" in unit
    postinst = (tmp_path / "DEBIAN/postinst").read_text()
    assert "groupadd --system docker" in postinst
    assert "deb-systemd-helper unmask docker.socket docker.service" in postinst
    assert "deb-systemd-invoke $action docker.socket docker.service" in postinst


def test_release_is_signed_by_the_published_key(repo: dict[str, Path], tmp_path: Path) -> None:
    suite, keyring = repo["suite"], str(repo["keyring"])
    assert subprocess.run(["gpgv", "--keyring", keyring, str(suite / "InRelease")], capture_output=True).returncode == 0
    assert subprocess.run(["gpgv", "--keyring", keyring, str(suite / "Release.gpg"), str(suite / "Release")],
                          capture_output=True).returncode == 0
    tampered = tmp_path / "Release"
    tampered.write_text((suite / "Release").read_text().replace("bookworm", "trixie"))
    assert subprocess.run(["gpgv", "--keyring", keyring, str(suite / "Release.gpg"), str(tampered)],
                          capture_output=True).returncode != 0


def test_apt_reads_it_as_docker_documents(repo: dict[str, Path], tmp_path: Path) -> None:
    require_tools("apt-get", "apt-cache")
    state = tmp_path / "apt"
    for directory in ("lists/partial", "cache/archives/partial", "sources.list.d", "preferences.d"):
        (state / directory).mkdir(parents=True)
    sources = state / "sources.list"
    sources.write_text(f"deb [arch=amd64 signed-by={repo['keyring']}] file://{repo['debian']} bookworm stable\n")
    options = []
    for key, value in {"Dir::Etc::SourceList": sources, "Dir::Etc::SourceParts": state / "sources.list.d",
                       "Dir::State::Lists": state / "lists", "Dir::Cache": state / "cache",
                       "Dir::Etc::PreferencesParts": state / "preferences.d",
                       "Dir::Etc::Preferences": state / "preferences", "APT::Sandbox::User": "root",
                       "APT::Architecture": "amd64"}.items():
        options += ["-o", f"{key}={value}"]
    update = subprocess.run(["apt-get", *options, "update"], capture_output=True, text=True, check=False, timeout=60)
    assert update.returncode == 0 and "NO_PUBKEY" not in update.stderr and "W:" not in update.stderr, update.stderr
    policy = subprocess.run(["apt-cache", *options, "policy", *EXPECTED_VERSIONS], capture_output=True, text=True,
                            check=True).stdout
    for name, version in EXPECTED_VERSIONS.items():
        assert re.search(rf"^{re.escape(name)}:\n  Installed: \(none\)\n  Candidate: {re.escape(version)}$",
                         policy, re.M), policy


def test_a_binary_needing_a_newer_glibc_stops_the_build(debs: Path, tmp_path: Path) -> None:
    result = build(debs, tmp_path / "out", GLIBC_MAX="2.2.5")
    assert result.returncode != 0
    assert "needs glibc" in result.stderr and "take it from an older suite" in result.stderr, result.stderr
    assert not (tmp_path / "out" / "linux").exists(), "a failed build left a repository behind"
