"""Identifiers: random ids for admin resources, deterministic ids for message events."""

from __future__ import annotations

import base64
import hashlib
import os

_ALPHABET_TRANS = str.maketrans("", "", "=")
_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648's alphabet, lower case
_PAIRS = [a + b for a in _BASE32 for b in _BASE32]  # every 10 bits as two characters


def new_id(prefix: str) -> str:
    """A fresh random id like `sub_3f9k2m...` (16 base32 characters, 80 bits)."""
    return f"{prefix}_{base32(os.urandom(10))}"  # what secrets.token_bytes reads


def base32(raw: bytes) -> str:
    """`base64.b32encode(raw).decode().lower()` for 10 bytes, in a third of its time (every
    delivery attempt gets a new id)."""
    n, pairs = int.from_bytes(raw, "big"), _PAIRS
    return (
        f"{pairs[n >> 70]}{pairs[(n >> 60) & 1023]}{pairs[(n >> 50) & 1023]}"
        f"{pairs[(n >> 40) & 1023]}{pairs[(n >> 30) & 1023]}{pairs[(n >> 20) & 1023]}"
        f"{pairs[(n >> 10) & 1023]}{pairs[n & 1023]}"
    )


def event_id_for(source_id: str, document_id: str) -> str:
    """The event id of one upstream message: stable, so a re-run of ingest gives the same id."""
    digest = hashlib.sha256(f"{source_id}\x00{document_id}".encode()).digest()[:15]
    return "evt_" + base64.b32encode(digest).decode().lower().translate(_ALPHABET_TRANS)
