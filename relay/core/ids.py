"""Identifiers: random ids for admin resources, deterministic ids for message events."""

from __future__ import annotations

import base64
import hashlib
import os

_ALPHABET_TRANS = str.maketrans("", "", "=")


def new_id(prefix: str) -> str:
    """A fresh random id like `sub_3f9k2m...` (16 base32 characters, 80 bits)."""
    raw = base64.b32encode(os.urandom(10)).decode().lower()  # what secrets.token_bytes reads
    return f"{prefix}_{raw}"


def event_id_for(source_id: str, document_id: str) -> str:
    """The event id of one upstream message: stable, so a re-run of ingest gives the same id."""
    digest = hashlib.sha256(f"{source_id}\x00{document_id}".encode()).digest()[:15]
    return "evt_" + base64.b32encode(digest).decode().lower().translate(_ALPHABET_TRANS)
