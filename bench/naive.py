"""The obvious alternative: one RQ job per delivery, run by RQ `SimpleWorker`s posting with httpx.

`enqueue` puts one job per (event, subscriber) on an RQ queue; `python -m bench.naive work`
runs one burst SimpleWorker on it and prints `{"started", "ended"}` (epoch seconds). The job is
what a first version would write: sign, POST with a keep-alive httpx client, raise on non-2xx
so RQ records the failure. The client is reused across jobs, which is kinder to the naive
design than opening one per job.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Iterable

import httpx
import redis
from rq import Queue, SimpleWorker

from bench.signing import secret_key, webhook_headers

_client: httpx.Client | None = None


def deliver(url: str, secret: str, webhook_id: str, body: str) -> int:
    """The RQ job: one signed POST; raises on a non-2xx answer."""
    global _client
    if _client is None:
        _client = httpx.Client(timeout=15.0)
    raw = body.encode()
    response = _client.post(
        url, content=raw, headers=webhook_headers(secret_key(secret), webhook_id, raw)
    )
    response.raise_for_status()
    return response.status_code


def enqueue(
    client: redis.Redis, queue_name: str, deliveries: Iterable[dict[str, str]], *, tag: str
) -> int:
    """One job per delivery (ids `bench-{tag}-{n}`); returns how many were queued."""
    queue = Queue(queue_name, connection=client)
    jobs = [
        Queue.prepare_data(
            deliver,
            args=(row["url"], row["secret"], row["id"], row["body"]),
            job_id=f"bench-{tag}-{n}",
        )
        for n, row in enumerate(deliveries)
    ]
    for start in range(0, len(jobs), 500):
        with client.pipeline() as pipe:
            queue.enqueue_many(jobs[start : start + 500], pipeline=pipe)
            pipe.execute()
    return len(jobs)


def cleanup(client: redis.Redis, queue_name: str, *, tag: str) -> None:
    """Delete the queue's and the jobs' keys."""
    for pattern in (f"rq:*{queue_name}*", f"rq:*bench-{tag}-*"):
        batch = list(client.scan_iter(match=pattern, count=2000))
        for start in range(0, len(batch), 500):
            client.delete(*batch[start : start + 500])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.naive")
    parser.add_argument("command", choices=["work"])
    parser.add_argument("--redis", required=True)
    parser.add_argument("--queue", required=True)
    args = parser.parse_args()
    connection = redis.Redis.from_url(args.redis)
    worker = SimpleWorker([Queue(args.queue, connection=connection)], connection=connection)
    started, cpu_started = time.time(), time.process_time()
    # burst: stop when the queue is empty. The job timeout bounds one job, the bench's own
    # subprocess timeout bounds the run.
    worker.work(burst=True, logging_level="WARNING", with_scheduler=False)
    peak_rss_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result = {
        "started": started,
        "ended": time.time(),
        "cpu_s": time.process_time() - cpu_started,
        "peak_rss_bytes": peak_rss_bytes,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
