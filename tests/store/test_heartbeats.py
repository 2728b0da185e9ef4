"""Liveness beats of the roles that hold work, against a real Redis."""

from __future__ import annotations

import redis.asyncio

from relay.store.heartbeats import Liveness
from relay.store.keys import Keys

NOW = 1_700_000_000.0


async def test_silent_names_holders_whose_beat_is_old_and_never_unknown_ones(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    liveness = Liveness(redis=aredis, keys=keys, role="dispatcher")
    await liveness.beat("old", now=NOW - 10)
    await liveness.beat("fresh", now=NOW - 1)

    assert await liveness.silent(["old", "fresh", "never"], now=NOW, after_s=5) == {"old"}

    await liveness.prune(older_than=NOW - 5)
    await liveness.forget(["fresh"])
    assert await aredis.zcard(keys.liveness("dispatcher")) == 0
