"""Source status changes become operator events: the real simulator's faults, the poller
stepped on an injected clock, the operator events read where the dispatcher reads them."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
import redis.asyncio

from relay.core.health import OPERATOR_SUBSCRIPTION_ID
from relay.core.signing import new_secret
from relay.settings import Settings
from relay.store.events import unpack_event
from relay.store.keys import Keys
from relay.store.sources import SourceStore
from tests.ingest.conftest import Clock, Sim, make_source


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Operator events on (nothing listens: they are read from the stream here)."""
    return settings.replace(
        operator_webhook_url="http://127.0.0.1:9/", operator_webhook_secret=new_secret()
    )


async def operator_bodies(aredis: redis.asyncio.Redis, keys: Keys) -> list[dict[str, Any]]:
    """The operator events handed to delivery, in stream order."""
    entries = cast("list[tuple[str, dict[str, str]]]", await aredis.xrange(keys.stream))
    bodies = []
    for _, fields in entries:
        if fields.get("s") == OPERATOR_SUBSCRIPTION_ID:
            value = cast(str, await aredis.get(keys.event(fields["e"])))
            bodies.append(json.loads(unpack_event(fields["e"], value).body))
    return bodies


async def test_a_source_failing_then_recovering_is_reported_once_each(
    sim: Sim,
    sources: SourceStore,
    stepped: Any,
    clock: Clock,
    aredis: redis.asyncio.Redis,
    keys: Keys,
) -> None:
    await sim.post("/_sim/faults", kind="http_500", times=3)
    source = await make_source(sources, sim)
    poller = await stepped()
    await poller.run_round()
    failing = await sources.get(source.id)
    assert failing.status == "failing"
    assert failing.failing_since == clock.now
    started = clock.now
    for _ in range(200):  # three failures, backing off 1, 2, 4 s, then a good poll
        if (await sources.get(source.id)).status == "ok":
            break
        clock.advance(0.25)
        await poller.run_round()
        assert (await sources.get(source.id)).failing_since in (started, None)

    assert (await sources.get(source.id)).status == "ok"
    bodies = await operator_bodies(aredis, keys)
    assert [b["type"] for b in bodies] == ["relay.source.failing", "relay.source.recovered"]
    assert all(b["data"]["source_id"] == source.id for b in bodies)
    assert "500" in bodies[0]["data"]["last_error"]
    assert "pw" not in json.dumps(bodies)  # never the password
