"""Mongo ObjectIds: 4-byte epoch second, 5 random bytes per generator, 3-byte counter."""

from __future__ import annotations

import random

_COUNTER_MODULUS = 1 << 24
_MAX_SECOND = (1 << 32) - 1


class ObjectIdGenerator:
    """Makes 24-hex ids whose first 8 hex digits are the given second, like the upstream's."""

    def __init__(self, *, rng: random.Random) -> None:
        self._process = rng.randbytes(5)
        self._counter = rng.randrange(_COUNTER_MODULUS)

    def new_id(self, second: int) -> str:
        """A fresh id for a message stamped `second` (0 <= second < 2**32, else ValueError)."""
        if not 0 <= second <= _MAX_SECOND:
            raise ValueError(f"an ObjectId holds seconds 0..{_MAX_SECOND}, not {second}")
        self._counter = (self._counter + 1) % _COUNTER_MODULUS
        raw = second.to_bytes(4, "big") + self._process + self._counter.to_bytes(3, "big")
        return raw.hex()


def second_of(object_id: str) -> int:
    """The epoch second stored in an ObjectId's first 4 bytes."""
    return int(object_id[:8], 16)
