"""ObjectIds: the second in the first 4 bytes, unique within one generator."""

from __future__ import annotations

import random

import pytest

from relay.simulator.objectid import ObjectIdGenerator, second_of


def test_first_8_hex_digits_are_the_epoch_second() -> None:
    generator = ObjectIdGenerator(rng=random.Random(1))

    object_id = generator.new_id(1366624769)

    assert object_id[:8] == "51750a01"  # the documented example's second
    assert second_of(object_id) == 1366624769
    assert len(object_id) == 24


def test_ids_in_one_second_are_unique_and_share_the_process_bytes() -> None:
    generator = ObjectIdGenerator(rng=random.Random(2))

    ids = [generator.new_id(1_700_000_000) for _ in range(1000)]

    assert len(set(ids)) == 1000
    assert len({object_id[8:18] for object_id in ids}) == 1


def test_seconds_outside_four_bytes_are_refused() -> None:
    generator = ObjectIdGenerator(rng=random.Random(3))

    with pytest.raises(ValueError, match="ObjectId"):
        generator.new_id(2**32)
