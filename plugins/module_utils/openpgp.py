# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""OpenPGP public keys as apt repositories publish them: their primary key fingerprints, and the
ASCII-armoured form apt's `Signed-By` accepts inline.

Pure Python (RFC 4880 packet framing, RFC 9580 v6 fingerprints), so that a host checks a downloaded
key before trusting it without needing gpg. Only what pinning a repository key needs: it reads
packets, it never verifies signatures (apt does that with the key once it is pinned).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Iterator, List, Tuple

PUBLIC_KEY_TAG = 6
ARMOR_BLOCK = re.compile(
    r"-----BEGIN PGP PUBLIC KEY BLOCK-----\r?\n(?P<body>.*?)-----END PGP PUBLIC KEY BLOCK-----", re.DOTALL)
CRC24_INIT = 0xB704CE
CRC24_POLY = 0x1864CFB


class NotAKey(ValueError):
    """Data that is not an OpenPGP public key (the message says what is wrong)."""


def normalise_fingerprint(fingerprint: str) -> str:
    """'9DC8 5822 9FC7 ...' or '0x9dc85822...' -> '9DC858229FC7...' (spaces and a 0x prefix dropped)."""
    text = re.sub(r"\s+", "", str(fingerprint)).upper()
    return text[2:] if text.startswith("0X") else text


def is_fingerprint(fingerprint: str) -> bool:
    """A v4 (40 hex digits) or v6 (64 hex digits) fingerprint, spaces allowed."""
    return re.fullmatch(r"[0-9A-F]{40}|[0-9A-F]{64}", normalise_fingerprint(fingerprint)) is not None


def dearmor(data: bytes) -> bytes:
    """The binary packets of DATA: every armoured public key block decoded and joined, or DATA itself
    when it holds no armour (a binary keyring)."""
    text = data.decode("ascii", "replace")
    blocks = list(ARMOR_BLOCK.finditer(text))
    if not blocks:
        if b"-----BEGIN PGP" in data:
            raise NotAKey("it holds an armoured block that is not a public key block")
        return data
    binary = b""
    for block in blocks:
        lines = block.group("body").splitlines()
        # Armour headers ("Comment: ...") end at the first empty line; the checksum line starts with '='.
        if "" in [line.strip() for line in lines]:
            lines = lines[[line.strip() for line in lines].index("") + 1:]
        payload = "".join(line.strip() for line in lines if line.strip() and not line.startswith("="))
        try:
            binary += base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as error:
            raise NotAKey("its armoured block is not valid base64 (%s)" % error) from None
    return binary


def packets(binary: bytes) -> Iterator[Tuple[int, bytes]]:
    """(tag, body) of each packet, old and new formats (RFC 4880 4.2)."""
    offset = 0
    while offset < len(binary):
        header = binary[offset]
        if not header & 0x80:
            raise NotAKey("byte %d is not the start of an OpenPGP packet" % offset)
        if header & 0x40:
            tag = header & 0x3F
            length, offset = new_format_length(binary, offset + 1)
        else:
            tag = (header >> 2) & 0x0F
            length, offset = old_format_length(binary, offset, header & 0x03)
        if offset + length > len(binary):
            raise NotAKey("its packet at byte %d is cut short" % offset)
        yield tag, binary[offset:offset + length]
        offset += length


def new_format_length(binary: bytes, offset: int) -> Tuple[int, int]:
    """(body length, offset of the body) of a new-format header whose length starts at OFFSET."""
    first = byte_at(binary, offset)
    if first < 192:
        return first, offset + 1
    if first < 224:
        return ((first - 192) << 8) + byte_at(binary, offset + 1) + 192, offset + 2
    if first == 255:
        return int.from_bytes(binary[offset + 1:offset + 5], "big"), offset + 5
    raise NotAKey("it uses partial body lengths, which key packets never do")


def old_format_length(binary: bytes, offset: int, length_type: int) -> Tuple[int, int]:
    """(body length, offset of the body) of an old-format packet starting at OFFSET."""
    if length_type == 3:
        raise NotAKey("it has an old-format packet of indeterminate length")
    size = (1, 2, 4)[length_type]
    if offset + 1 + size > len(binary):
        raise NotAKey("its packet header at byte %d is cut short" % offset)
    return int.from_bytes(binary[offset + 1:offset + 1 + size], "big"), offset + 1 + size


def byte_at(binary: bytes, offset: int) -> int:
    if offset >= len(binary):
        raise NotAKey("its packet header at byte %d is cut short" % offset)
    return binary[offset]


def fingerprint_of(body: bytes) -> str:
    """The fingerprint of a public key packet body: SHA-1 for v4, SHA-256 for v6 (RFC 9580 5.5.4)."""
    version = body[0] if body else 0
    if version == 4:
        return hashlib.sha1(b"\x99" + len(body).to_bytes(2, "big") + body).hexdigest().upper()
    if version == 6:
        return hashlib.sha256(b"\x9b" + len(body).to_bytes(4, "big") + body).hexdigest().upper()
    raise NotAKey("it holds a version %d key, which lpfleet cannot fingerprint (v4 and v6 only)" % version)


def primary_fingerprints(data: bytes) -> List[str]:
    """The fingerprints of the primary keys in DATA (armoured or binary), in order; subkeys are left out."""
    found = [fingerprint_of(body) for tag, body in packets(dearmor(data)) if tag == PUBLIC_KEY_TAG]
    if not found:
        raise NotAKey("it holds no OpenPGP public key")
    return found


def crc24(data: bytes) -> int:
    crc = CRC24_INIT
    for byte in data:
        crc ^= byte << 16
        for _bit in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= CRC24_POLY
    return crc & 0xFFFFFF


def armor(data: bytes) -> str:
    """DATA as one ASCII-armoured public key block (RFC 4880 6.2), whatever form it came in."""
    binary = dearmor(data)
    encoded = base64.b64encode(binary).decode("ascii")
    lines = [encoded[index:index + 64] for index in range(0, len(encoded), 64)]
    checksum = base64.b64encode(crc24(binary).to_bytes(3, "big")).decode("ascii")
    return "\n".join(["-----BEGIN PGP PUBLIC KEY BLOCK-----", ""] + lines
                     + ["=" + checksum, "-----END PGP PUBLIC KEY BLOCK-----"]) + "\n"
