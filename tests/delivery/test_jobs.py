"""RQ jobs: the paths of jobs queued by relay 0.1 still resolve and run, and a worker's job
runner keeps its connections across jobs."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from rq import Queue
from rq.job import JobStatus
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.core.events import event_from_message
from relay.core.models import Event, Message, Subscription
from relay.core.retry import Outcome
from relay.delivery.jobs import JobContext, JobRunner, drain_retries, job_context, retry_queue_for
from relay.settings import Settings
from relay.store import Store
from relay.store.retry_queue import DRAIN_JOB, PARK_JOB, RETRY_JOB, RetryRequest
from workers.retry_worker import run_retry_worker


def test_jobs_are_queued_under_the_delivery_package() -> None:
    assert DRAIN_JOB == "relay.delivery.jobs.drain_retries"
    assert RETRY_JOB == "relay.delivery.jobs.retry_delivery"
    assert PARK_JOB == "relay.delivery.jobs.unpark_deliveries"


def test_a_retry_job_queued_under_the_old_path_still_runs(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.require_redis_url())
    try:
        queue = Queue(f"{settings.key_prefix}retry", connection=client)
        # An attempt of a delivery that is not waiting in the retry queue: the job runs,
        # finds nothing to do and says so.
        job = queue.enqueue("relay.jobs.retry_delivery", "evt_old", "sub_old", 2)
        run_retry_worker(settings, burst=True)
        job.refresh()  # type: ignore[no-untyped-call]
        assert job.get_status() == JobStatus.FINISHED
        assert job.return_value() == "skipped: already settled"
    finally:
        client.close()


def test_a_job_runner_reuses_its_redis_connection_and_http_session_across_jobs(
    settings: Settings, serve_app: Callable[..., str]
) -> None:
    peers: list[int] = []

    async def record(request: Request) -> Response:
        await request.body()
        assert request.client is not None
        peers.append(request.client.port)
        return Response(status_code=204)

    url = serve_app(Starlette(routes=[Route("/", record, methods=["POST"])]))
    client = redis.Redis.from_url(settings.require_redis_url())
    runner = JobRunner(settings, client)
    try:
        subscription, events = runner.run(lambda r: _subscription_and_events(r.store, url))
        connection_ids = []
        with job_context(JobContext(settings=settings, rq_redis=client, runner=runner)):
            for event in events:
                retry_queue_for(settings, client).schedule(
                    [RetryRequest(event.id, subscription.id, 2, 0.0)]
                )  # attempt 1 made; the drain job is called here, not by RQ
                assert drain_retries(subscription.id) == f"1 {Outcome.DELIVERED.value}"
                connection_ids.append(runner.run(lambda r: r.client.client_id()))
    finally:
        runner.close()
        client.close()

    assert len(peers) == 3 and len(set(peers)) == 1  # one kept-alive TCP connection
    assert len(set(connection_ids)) == 1  # one Redis connection, never reopened


async def _subscription_and_events(store: Store, url: str) -> tuple[Subscription, list[Event]]:
    now = time.time()
    subscription = await store.subscriptions.create(
        url=url + "/",
        event_types=None,
        source_ids=None,
        description=None,
        headers={},
        enabled=True,
        now=now,
    )
    events = [
        event_from_message(
            Message(kind="incoming", document_id=f"job{i}", timestamp=int(now), text="hi"),
            source_id="src_test",
            created_at_ms=int(now * 1000),
        )
        for i in range(3)
    ]
    await store.events.add(events, retention_s=3600)
    return subscription, events
