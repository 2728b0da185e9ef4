"""Redis bytes per message of what ingest and delivery keep, by key family, in process.

`python -m bench.search_memory [-n 20000]`: N incoming SMS from 1,000 customer numbers to
two short codes go through the real ingest script (`Ingest.record_page`, pages of 500),
then one delivered attempt each is recorded for one subscription (`AttemptLog.record_many`,
batches of 100, as the dispatcher does). Prints `used_memory` per message and `MEMORY
USAGE` per message by key family, and the wall time per message of ingest and of recording
(client and server together, loopback: a rough figure on a shared machine). It uses only
APIs that predate the search indexes, so the same script run against an older checkout
(`PYTHONPATH=/path/to/old`) gives the "before".
Needs REDIS_URL; only its own random prefix is written, and deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
import uuid
from collections import Counter

import redis.asyncio

from relay.core.events import event_from_message
from relay.core.ids import new_id
from relay.core.models import Attempt, Message
from relay.store.attempts import AttemptLog
from relay.store.ingest import Ingest
from relay.store.keys import Keys
from relay.store.sources import SourceStore

PAGE = 500
START = 1_765_000_000


def _message(n: int) -> Message:
    return Message(
        kind="incoming",
        document_id=f"{START + n:08x}e4b0d1406c{n:06x}",
        timestamp=START + n // 10,
        text=f" hello from customer {n % 1000}, order {n}",
        sender=f"614{n % 1000:08d}",
        recipient=("61500079987", "61500079988")[n % 2],
    )


def _family(key: str, prefix: str) -> str:
    rest = key[len(prefix) :]
    head, _, tail = rest.partition(":")
    return f"{head}:{tail.split(':')[0]}" if head == "evs" and tail else head


async def _census(client: redis.asyncio.Redis, prefix: str) -> Counter[str]:
    sizes: Counter[str] = Counter()
    keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=5000)]
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        async with client.pipeline(transaction=False) as pipe:
            for key in chunk:
                pipe.memory_usage(key, samples=0)
            usages = await pipe.execute()
        for key, usage in zip(chunk, usages, strict=True):
            sizes[_family(key, prefix)] += int(usage or 0)
    return sizes


async def measure(redis_url: str, n: int) -> dict[str, object]:
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    prefix = f"bench-mem-{uuid.uuid4().hex[:8]}:"
    keys = Keys(prefix)
    try:
        before = int((await client.info("memory"))["used_memory"])
        sources = SourceStore(redis=client, keys=keys)
        source = await sources.create(
            username="u@bench", password="pw", base_url="http://x", poll_interval_s=1,
            start_from=0, now=1.0,
        )  # fmt: skip
        await client.set(keys.source_lock(source.id), "bench")
        ingest = Ingest(redis=client, keys=keys, dedupe_ttl_s=86400, event_retention_s=86400)
        log = AttemptLog(redis=client, keys=keys, kept=1000)
        ingest_s = record_s = 0.0
        for start in range(0, n, PAGE):
            messages = [_message(i) for i in range(start, min(n, start + PAGE))]
            started = time.perf_counter()
            result = await ingest.record_page(
                source_id=source.id, token="bench", version=0, messages=messages,
                cursor=messages[-1].timestamp, now=2.0,
            )  # fmt: skip
            ingest_s += time.perf_counter() - started
            attempts = [
                Attempt(
                    id=new_id("att"),
                    event_id=event_id,
                    subscription_id="sub_bench",
                    attempt=1,
                    at=START + i,
                    status_code=200,
                    error=None,
                    response_body="",
                    duration_ms=3,
                )
                for i, event_id in enumerate(result.new_event_ids)
            ]
            started = time.perf_counter()
            for batch in range(0, len(attempts), 100):
                await log.record_many(attempts[batch : batch + 100])
            record_s += time.perf_counter() - started
        after = int((await client.info("memory"))["used_memory"])
        families = await _census(client, prefix)
        server = await client.info("server")
        return {
            "messages": n,
            "used_memory_per_message": round((after - before) / n),
            "memory_usage_per_message": round(sum(families.values()) / n),
            "by_family": {f: round(size / n) for f, size in families.most_common()},
            "ingest_us_per_message": round(ingest_s / n * 1e6, 1),
            "record_us_per_attempt": round(record_s / n * 1e6, 1),
            "event_json_bytes": len(
                event_from_message(_message(0), source_id=source.id, created_at_ms=0).body
            ),
            "redis": server["redis_version"],
            "machine": f"{os.cpu_count()} cores, {platform.platform()}",
        }
    finally:
        async for key in client.scan_iter(match=f"{prefix}*", count=5000):
            await client.unlink(key)
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(os.environ["REDIS_URL"], args.n)), indent=2))


if __name__ == "__main__":
    main()
