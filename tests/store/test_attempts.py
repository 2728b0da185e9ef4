from __future__ import annotations

import json
from typing import Any

import pytest
import redis.asyncio

from relay.core.models import Attempt
from relay.core.retry import Outcome
from relay.store.attempts import AttemptLog, _event_json, _to_json, attempt_from_json
from relay.store.keys import Keys


def _attempt(n: int, *, subscription_id: str = "sub_a", **overrides: object) -> Attempt:
    fields: dict[str, object] = {
        "id": f"att_{n}",
        "event_id": f"evt_{n}",
        "subscription_id": subscription_id,
        "attempt": 1,
        "at": 1_700_000_000.5 + n,
        "status_code": 200,
        "error": None,
        "response_body": "ok",
        "duration_ms": 12,
    }
    fields.update(overrides)
    return Attempt(**fields)  # type: ignore[arg-type]


async def test_attempts_round_trip_every_field(aredis: redis.asyncio.Redis, keys: Keys) -> None:
    log = AttemptLog(redis=aredis, keys=keys, kept=100)
    failed = _attempt(
        1,
        attempt=3,
        status_code=None,
        error="connection refused",
        response_body=None,
        duration_ms=0,
    )
    unicode_body = _attempt(2, status_code=500, response_body='{"e": "é ✓ \\u0000"}\n')
    await log.record_many([failed, unicode_body])

    page = await log.page("sub_a", limit=10, cursor=None)
    assert page.items == (unicode_body, failed)
    assert page.next_cursor is None


async def test_page_is_newest_first_across_batches(aredis: redis.asyncio.Redis, keys: Keys) -> None:
    log = AttemptLog(redis=aredis, keys=keys, kept=100)
    attempts = [_attempt(n) for n in range(7)]
    await log.record_many(attempts[:3])
    await log.record_many(attempts[3:])
    newest_first = list(reversed(attempts))

    first = await log.page("sub_a", limit=4, cursor=None)
    assert list(first.items) == newest_first[:4]
    assert first.next_cursor is not None
    rest = await log.page("sub_a", limit=4, cursor=first.next_cursor)
    assert list(rest.items) == newest_first[4:]
    assert rest.next_cursor is None


async def test_one_batch_fills_each_subscriptions_own_log(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    log = AttemptLog(redis=aredis, keys=keys, kept=100)
    a1, b1, a2 = _attempt(1), _attempt(2, subscription_id="sub_b"), _attempt(3)
    await log.record_many([a1, b1, a2])
    assert (await log.page("sub_a", limit=10, cursor=None)).items == (a2, a1)
    assert (await log.page("sub_b", limit=10, cursor=None)).items == (b1,)


async def test_each_log_is_trimmed_to_the_newest_kept(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    log = AttemptLog(redis=aredis, keys=keys, kept=3)
    a = [_attempt(n) for n in range(5)]
    b = [_attempt(10 + n, subscription_id="sub_b") for n in range(2)]
    await log.record_many([a[0], b[0], a[1], a[2], a[3], b[1]])
    await log.record_many([a[4]])

    assert list((await log.page("sub_a", limit=10, cursor=None)).items) == [a[4], a[3], a[2]]
    assert list((await log.page("sub_b", limit=10, cursor=None)).items) == [b[1], b[0]]
    assert await aredis.zcard(keys.attempts("sub_a")) == 3


async def test_recording_nothing_touches_nothing(aredis: redis.asyncio.Redis, keys: Keys) -> None:
    log = AttemptLog(redis=aredis, keys=keys, kept=3)
    await log.record_many([])
    assert await aredis.exists(keys.seq) == 0
    assert (await log.page("sub_a", limit=10, cursor=None)).items == ()


async def test_identical_attempt_fields_are_still_two_entries(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    log = AttemptLog(redis=aredis, keys=keys, kept=10)
    await log.record_many([_attempt(1, id="att_x"), _attempt(1, id="att_y")])
    ids = [a.id for a in (await log.page("sub_a", limit=10, cursor=None)).items]
    assert ids == ["att_y", "att_x"]


async def test_members_written_before_the_outcome_was_stored_still_read_right(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    old_dropped = '{"i":"att_1","e":"evt_1","n":2,"at":1.0,"c":null,'
    old_dropped += '"err":"dropped: subscription disabled","b":null,"ms":0}'
    old_delivered = '{"i":"att_2","e":"evt_1","n":1,"at":0.5,"c":204,"err":null,"b":null,"ms":3}'
    await aredis.zadd(keys.attempts("sub_a"), {old_delivered: 1, old_dropped: 2})
    log = AttemptLog(redis=aredis, keys=keys, kept=100)
    listing = await log.page("sub_a", limit=10, cursor=None)
    assert [a.outcome for a in listing.items] == [Outcome.DROPPED, Outcome.DELIVERED]


@pytest.mark.parametrize(
    "overrides",
    [
        {"response_body": None},  # the hot path: 2xx, no body
        {"response_body": None, "status_code": 503, "outcome": Outcome.FAILED, "attempt": 4},
        {"response_body": None, "status_code": None, "at": 1_700_000_000.0, "duration_ms": 0},
        {"response_body": None, "status_code": 410, "outcome": Outcome.GONE},
        {"response_body": 'he said "no"\n', "status_code": 500},  # written by json.dumps
        {"response_body": None, "error": "timeout after 15 s", "status_code": None},
        {"response_body": None, "id": 'att_"quoted"'},
    ],
)
def test_log_and_event_members_are_exactly_the_json_of_their_fields(
    overrides: dict[str, Any],
) -> None:
    attempt = _attempt(7, **overrides)
    log_row = {
        "i": attempt.id,
        "e": attempt.event_id,
        "n": attempt.attempt,
        "at": attempt.at,
        "c": attempt.status_code,
        "err": attempt.error,
        "b": attempt.response_body,
        "ms": attempt.duration_ms,
        "o": str(attempt.outcome),
    }
    assert _to_json(attempt) == json.dumps(log_row, separators=(",", ":"))
    event_row = {"i": attempt.id, "s": attempt.subscription_id, "n": attempt.attempt}
    event_row["at"] = attempt.at
    for name, value in (("c", attempt.status_code), ("err", attempt.error)):
        if value:
            event_row[name] = value
    if attempt.response_body:
        event_row["b"] = attempt.response_body
    event_row["ms"] = attempt.duration_ms
    if attempt.outcome is not Outcome.DELIVERED:
        event_row["o"] = str(attempt.outcome)
    assert _event_json(attempt) == json.dumps(event_row, separators=(",", ":"))
    assert attempt_from_json(_to_json(attempt), subscription_id="sub_a") == attempt
    assert attempt_from_json(_event_json(attempt), event_id=attempt.event_id) == attempt
