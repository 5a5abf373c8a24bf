"""lpfleet.ai.apt_signing_key and module_utils/openpgp: a repository key is trusted only when its primary key has
the pinned fingerprint. Keys are the lab's fixed signing keys (lab/*/lab-signing-key.asc, public parts exported
here with gpg) and keys made on the spot; gpg, where installed, is the reference for every fingerprint."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_servers import FixtureServer, run_module

from ansible_collections.lpfleet.ai.plugins.module_utils import openpgp
from ansible_collections.lpfleet.ai.plugins.modules import apt_signing_key

REPO = Path(__file__).resolve().parents[2]
LAB_KEYS = {
    "docker": (REPO / "lab/docker-ce-repo/lab-signing-key.asc", "DE074874E0F1F2DBB9187173C08E7092D541CBC6"),
    "nvidia": (REPO / "lab/toolkit/lab-signing-key.asc", "9DD2D656C930AE2E8AD7D9E5F538EFB59789438D"),
}
DOCKER_PUBLISHED = "9DC8 5822 9FC7 DD38 854A E2D8 8D81 803C 0EBF CD88"

needs_gpg = pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg (gnupg) is not installed")


def gpg(home: Path, *args: str, data: bytes = b"") -> bytes:
    return subprocess.run(["gpg", "--batch", "--quiet", *args], input=data, capture_output=True, check=True,
                          env={**os.environ, "GNUPGHOME": str(home)}).stdout


@pytest.fixture(scope="module")
def public_keys(tmp_path_factory) -> Iterator[dict[str, tuple[bytes, bytes, str]]]:
    """name -> (armoured public key, binary public key, fingerprint), exported by gpg from the lab's keys."""
    if shutil.which("gpg") is None:
        pytest.skip("gpg (gnupg) is not installed")
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    keys = {}
    try:
        for name, (secret, fingerprint) in LAB_KEYS.items():
            gpg(home, "--import", str(secret))
            armoured, binary = gpg(home, "--armor", "--export", fingerprint), gpg(home, "--export", fingerprint)
            keys[name] = (armoured, binary, fingerprint)
        yield keys
    finally:
        # Importing a secret key starts a gpg-agent for this home: stop it.
        subprocess.run(["gpgconf", "--kill", "all"], env={**os.environ, "GNUPGHOME": str(home)}, check=False)


def gpg_fingerprints(tmp_path: Path, data: bytes) -> list[str]:
    home = tmp_path / "show"
    home.mkdir(mode=0o700, exist_ok=True)
    lines = gpg(home, "--show-keys", "--with-colons", data=data).decode().splitlines()
    # The fpr line right after each pub line is the primary key's.
    return [lines[index + 1].split(":")[9] for index, line in enumerate(lines) if line.startswith("pub:")]


def test_fingerprints_of_armoured_and_binary_keys_agree_with_gpg(public_keys, tmp_path):
    for armoured, binary, fingerprint in public_keys.values():
        assert openpgp.primary_fingerprints(armoured) == [fingerprint]
        assert openpgp.primary_fingerprints(binary) == [fingerprint]
        assert gpg_fingerprints(tmp_path, armoured) == [fingerprint]


def test_a_keyring_of_two_keys_gives_both_primaries_in_order(public_keys):
    both = public_keys["docker"][1] + public_keys["nvidia"][1]
    assert openpgp.primary_fingerprints(both) == [public_keys["docker"][2], public_keys["nvidia"][2]]


def test_armor_of_a_binary_key_is_what_gpg_reads_back(public_keys, tmp_path):
    _, binary, fingerprint = public_keys["nvidia"]
    armoured = openpgp.armor(binary)
    assert armoured.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n")
    assert openpgp.dearmor(armoured.encode()) == binary
    assert gpg_fingerprints(tmp_path, armoured.encode()) == [fingerprint]


def test_armour_checksum_is_rfc4880_crc24():
    # RFC 4880 6.1's CRC-24 of no data is its initial value; of "123456789" it is 0x21CF02.
    assert openpgp.crc24(b"") == 0xB704CE
    assert openpgp.crc24(b"123456789") == 0x21CF02


@pytest.mark.parametrize("data, problem", [
    (b"<html>Not Found</html>", "not the start of an OpenPGP packet"),
    (b"", "no OpenPGP public key"),
    (b"-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n", "not a public key block"),
    (b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n!!!!\n-----END PGP PUBLIC KEY BLOCK-----\n", "not valid base64"),
    (bytes([0x99, 0x00, 0x30, 0x04]), "cut short"),
])
def test_what_is_not_a_key_is_refused_saying_why(data, problem):
    with pytest.raises(openpgp.NotAKey, match=problem):
        openpgp.primary_fingerprints(data)


def test_fingerprints_are_normalised_and_checked():
    assert openpgp.normalise_fingerprint(DOCKER_PUBLISHED) == "9DC858229FC7DD38854AE2D88D81803C0EBFCD88"
    assert openpgp.normalise_fingerprint("0x9dc858229fc7dd38854ae2d88d81803c0ebfcd88") == \
        "9DC858229FC7DD38854AE2D88D81803C0EBFCD88"
    assert openpgp.is_fingerprint(DOCKER_PUBLISHED)
    assert not openpgp.is_fingerprint("0EBFCD88")  # a short key id is not a pin
    assert not openpgp.is_fingerprint("9DC858229FC7DD38854AE2D88D81803C0EBFCD8Z")


class KeyServer(FixtureServer):
    """Serves one key (or anything) at /gpg."""

    def __init__(self, payload: bytes) -> None:
        super().__init__()
        self.payload = payload

    def handle(self, handler, body) -> None:
        if handler.path == "/gpg":
            handler.send_body(200, "application/pgp-keys", self.payload)
        else:
            handler.send_body(404, "text/plain", b"not found")


def test_module_returns_the_pinned_key_armoured(public_keys):
    _, binary, fingerprint = public_keys["docker"]
    spaced = " ".join(fingerprint[index:index + 4] for index in range(0, 40, 4)).lower()
    with KeyServer(binary) as server:
        result = run_module(apt_signing_key.main, {"url": server.url + "/gpg", "fingerprint": spaced})
    assert not result.get("failed"), result
    assert result["changed"] is False
    assert result["fingerprints"] == [fingerprint]
    assert openpgp.dearmor(result["key"].encode()) == binary


def test_module_stops_on_another_key_naming_both_fingerprints_and_the_variable(public_keys):
    armoured, _, served = public_keys["nvidia"]
    with KeyServer(armoured) as server:
        result = run_module(apt_signing_key.main, {
            "url": server.url + "/gpg", "fingerprint": DOCKER_PUBLISHED,
            "fingerprint_variable": "docker_engine_docker_repo_key_fingerprint"})
    assert result["failed"]
    assert served in result["msg"]
    assert "9DC858229FC7DD38854AE2D88D81803C0EBFCD88" in result["msg"]
    assert result["msg"].count("docker_engine_docker_repo_key_fingerprint") == 2
    assert "key" not in result


def test_module_refuses_a_key_file_that_adds_a_second_key(public_keys):
    both = public_keys["docker"][1] + public_keys["nvidia"][1]
    with KeyServer(both) as server:
        result = run_module(apt_signing_key.main, {"url": server.url + "/gpg", "fingerprint": public_keys["docker"][2]})
    assert result["failed"]
    assert public_keys["nvidia"][2] in result["msg"]


def test_module_explains_a_download_that_fails_or_is_no_key():
    with KeyServer(b"<html>hello</html>") as server:
        missing = run_module(apt_signing_key.main, {"url": server.url + "/nokey", "fingerprint": DOCKER_PUBLISHED})
        html = run_module(apt_signing_key.main, {"url": server.url + "/gpg", "fingerprint": DOCKER_PUBLISHED})
    assert missing["failed"] and "Could not download the repository key" in missing["msg"] and "404" in missing["msg"]
    assert html["failed"] and "did not give an OpenPGP public key" in html["msg"]


def test_module_refuses_a_fingerprint_that_is_no_fingerprint():
    result = run_module(apt_signing_key.main, {"url": "http://127.0.0.1:1/gpg", "fingerprint": "0EBFCD88",
                                               "fingerprint_variable": "nvidia_container_toolkit_repo_key_fingerprint"})
    assert result["failed"]
    assert "nvidia_container_toolkit_repo_key_fingerprint is '0EBFCD88'" in result["msg"]


def test_v6_fingerprint_is_sha256_of_the_framed_packet():
    body = bytes([6]) + b"\x00" * 9
    expected = __import__("hashlib").sha256(b"\x9b" + len(body).to_bytes(4, "big") + body).hexdigest().upper()
    packet = bytes([0xC0 | 6, len(body)]) + body
    assert openpgp.primary_fingerprints(packet) == [expected]
    assert len(base64.b16decode(expected)) == 32


# --- installed: a key deb822_repository already wrote is read from its source, with no download ---------------


def deb822_source(path: Path, signed_by: str) -> Path:
    """A source file as ansible.builtin.deb822_repository writes it (its own multi-line formatting)."""
    from ansible.modules.deb822_repository import format_multiline

    value = format_multiline(signed_by) if "\n" in signed_by else " " + signed_by
    path.write_text("X-Repolib-Name: docker\nTypes: deb\nURIs: https://download.docker.com/linux/debian\n"
                    f"Suites: bookworm\nComponents: stable\nSigned-By:{value}\n")
    return path


def test_the_pinned_key_installed_inline_is_returned_without_a_download(public_keys, tmp_path):
    _, binary, fingerprint = public_keys["docker"]
    source = deb822_source(tmp_path / "docker.sources", openpgp.armor(binary))
    with KeyServer(binary) as server:
        result = run_module(apt_signing_key.main, {"url": server.url + "/gpg", "fingerprint": fingerprint,
                                                   "installed": str(source)})
    assert not result.get("failed"), result
    assert result["downloaded"] is False and server.requests == []
    # The same text deb822_repository was given: the repository task stays unchanged.
    assert result["key"] == openpgp.armor(binary)


def test_an_installed_keyring_file_is_read_too(public_keys, tmp_path):
    _, binary, fingerprint = public_keys["nvidia"]
    keyring = tmp_path / "nvidia.gpg"
    keyring.write_bytes(binary)
    source = deb822_source(tmp_path / "nvidia.sources", str(keyring))
    with KeyServer(binary) as server:
        result = run_module(apt_signing_key.main, {"url": server.url + "/gpg", "fingerprint": fingerprint,
                                                   "installed": str(source)})
    assert result["downloaded"] is False and server.requests == []


@pytest.mark.parametrize("installed", ["other-key", "no-file", "no-signed-by"])
def test_anything_but_the_pinned_key_installed_means_a_download_and_the_usual_check(public_keys, tmp_path,
                                                                                      installed):
    _, docker_binary, docker_fingerprint = public_keys["docker"]
    source = tmp_path / "docker.sources"
    if installed == "other-key":
        deb822_source(source, openpgp.armor(public_keys["nvidia"][1]))
    elif installed == "no-signed-by":
        source.write_text("Types: deb\nURIs: https://download.docker.com/linux/debian\n")
    with KeyServer(docker_binary) as server:
        result = run_module(apt_signing_key.main, {"url": server.url + "/gpg", "fingerprint": docker_fingerprint,
                                                   "installed": str(source)})
        assert result["downloaded"] is True and len(server.calls("/gpg")) == 1
        assert result["fingerprints"] == [docker_fingerprint]
        # A changed pin (a rotated key) is not satisfied by the installed key: the download decides.
        deb822_source(source, openpgp.armor(docker_binary))
        rotated = run_module(apt_signing_key.main, {"url": server.url + "/gpg", "fingerprint": DOCKER_PUBLISHED,
                                                    "installed": str(source)})
    assert rotated["failed"] and docker_fingerprint in rotated["msg"] and len(server.calls("/gpg")) == 2
