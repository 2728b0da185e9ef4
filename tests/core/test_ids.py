"""Random and deterministic ids."""

from __future__ import annotations

import base64
import os
import re

from relay.core.ids import base32, event_id_for, new_id


def test_base32_is_the_standard_encoding_of_ten_bytes() -> None:
    samples = [bytes(10), b"\xff" * 10, bytes(range(10))] + [os.urandom(10) for _ in range(2000)]
    for raw in samples:
        assert base32(raw) == base64.b32encode(raw).decode().lower()


def test_new_ids_are_prefixed_base32_and_distinct() -> None:
    ids = [new_id("att") for _ in range(10_000)]
    assert all(re.fullmatch(r"att_[a-z2-7]{16}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_an_event_id_depends_only_on_its_source_and_document() -> None:
    assert event_id_for("src_a", "d1") == event_id_for("src_a", "d1")
    assert (
        len({event_id_for("src_a", "d1"), event_id_for("src_b", "d1"), event_id_for("src_a", "d2")})
        == 3
    )
