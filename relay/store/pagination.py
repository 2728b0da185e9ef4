"""Newest-first pages over sorted sets, with opaque cursors (`{"data": [...], "next_cursor"}`)."""

from __future__ import annotations

import base64
from typing import TypeVar, cast

from redis.asyncio import Redis

from relay.core.errors import InvalidInput

T = TypeVar("T")


def encode_cursor(score: int) -> str:
    """An opaque cursor for 'items with a score below `score`'."""
    return base64.urlsafe_b64encode(f"c1:{score}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The score inside a cursor from encode_cursor; InvalidInput if it is not one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
        tag, _, number = text.partition(":")
        if tag != "c1":
            raise ValueError(tag)
        return int(number)
    except (ValueError, UnicodeError):
        raise InvalidInput("cursor is not one this API returned", field="cursor") from None


async def page_ids(
    redis: Redis, key: str, *, limit: int, cursor: str | None
) -> tuple[list[str], str | None]:
    """Up to `limit` members of zset `key`, highest score first, and the next page's cursor."""
    high = f"({decode_cursor(cursor)}" if cursor else "+inf"
    rows = cast(
        "list[tuple[str, float]]",
        await redis.zrevrangebyscore(key, high, "-inf", start=0, num=limit + 1, withscores=True),
    )
    members = [_text(member) for member, _ in rows[:limit]]
    next_cursor = encode_cursor(int(rows[limit - 1][1])) if len(rows) > limit else None
    return members, next_cursor


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
