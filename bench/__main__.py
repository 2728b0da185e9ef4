"""`python -m bench [--quick] [--only throughput,latency,...] [-n N] [-k K]`

Runs the scenarios against the real relay roles, the real MC5 simulator and a fast receiver,
all on loopback, with a private Redis server (or REDIS_URL, never flushed: every key the bench
writes is under its own prefix and deleted afterwards). Prints the table, writes
bench/results/<date>[-quick|-partial].json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import math
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import redis

from bench.context import MC5_PAGE, SOURCES, Context
from bench.live import run_live
from bench.machine import describe_machine
from bench.memory import run_memory
from bench.receiver_client import ReceiverClient
from bench.redis_server import private_redis
from bench.report import build_rows, format_markdown, format_table, write_json
from bench.routing import run_routing
from bench.storm import run_fairness, run_storm
from bench.throughput import run_limit, run_naive, run_relay_backlog
from bench.upstream import Upstream, start_simulator
from workers.supervisor import dispatcher_count

SCENARIOS = (
    "throughput",
    "scaleout",
    "latency",
    "isolation",
    "memory",
    "routing",
    "storm",
    "fairness",
    "oneaccount",
)
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: about 2 minutes")
    parser.add_argument(
        "--only", default="", help=f"comma-separated subset of {','.join(SCENARIOS)}"
    )
    parser.add_argument("-n", type=int, default=None, help="backlog messages (20,000; quick 2,000)")
    parser.add_argument("-k", type=int, default=4, help="subscribers (4)")
    parser.add_argument(
        "--dispatchers",
        type=int,
        default=None,
        help="dispatcher processes of the oneaccount run (relay run's: one per core, 1-4)",
    )
    parser.add_argument(
        "--rate", type=float, default=200.0, help="live messages per second (at most 400)"
    )
    parser.add_argument("--latency-seconds", type=float, default=None, help="30; quick 8")
    parser.add_argument("--memory-messages", type=int, default=None, help="100,000; quick 10,000")
    parser.add_argument("--naive-jobs", type=int, default=None, help="3,000; quick 600")
    parser.add_argument("--profile", action="store_true", help="attach py-spy to the relay roles")
    parser.add_argument("--markdown", action="store_true", help="also print the Markdown table")
    parser.add_argument("--output", type=Path, default=None, help="results JSON path")
    return parser


def main() -> None:
    args = _parser().parse_args()
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SCENARIOS))
    if unknown:
        sys.exit(
            f"bench: unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}"
        )
    if args.rate > MC5_PAGE * SOURCES:
        sys.exit(
            f"bench: --rate {args.rate:g} is more than the {SOURCES} accounts can return: MC5 "
            f"gives at most {MC5_PAGE} messages per account-second (the live scenarios would "
            f"lose the rest upstream); at most {MC5_PAGE * SOURCES}"
        )
    options = {
        "quick": args.quick,
        "scenarios": only or list(SCENARIOS),
        "n": args.n or (2_000 if args.quick else 20_000),
        "k": args.k,
        "rate_per_s": args.rate,
        "latency_s": args.latency_seconds or (8.0 if args.quick else 30.0),
        "memory_messages": args.memory_messages or (10_000 if args.quick else 100_000),
        "naive_jobs": args.naive_jobs or (600 if args.quick else 3_000),
        "naive_workers": [1, 2],
        "limit_concurrency": 64,
        "sources": SOURCES,
        "poll_interval_s": 1.0,
        "routing_subscriptions": [10, 1_000, 10_000],
        "routing_events": 2_000 if args.quick else 5_000,
        "storm_messages": 2_000 if args.quick else 20_000,
        "fairness_parked": 200 if args.quick else 1_000,
        "one_account_messages": 2_000 if args.quick else 5_000,
        "one_account_dispatchers": args.dispatchers or dispatcher_count(os.cpu_count()),
    }
    suffix = "-quick" if args.quick else ("-partial" if only else "")
    output = args.output or RESULTS_DIR / f"{datetime.date.today().isoformat()}{suffix}.json"
    code = asyncio.run(_run(options, output, profile=args.profile, markdown=args.markdown))
    sys.exit(code)


@contextlib.contextmanager
def _redis(log_dir: Path) -> Iterator[str]:
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    with private_redis(log_dir) as private_url:
        yield private_url


async def _run(options: dict[str, Any], output: Path, *, profile: bool, markdown: bool) -> int:
    log_dir = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    print(f"bench: logs in {log_dir}", flush=True)
    started = time.time()
    scenarios: dict[str, Any] = {}
    errors: dict[str, str] = {}
    with _redis(log_dir) as redis_url:
        client = redis.Redis.from_url(redis_url)
        redis_info = client.info("server")
        client.close()
        machine = describe_machine(str(redis_info.get("redis_version")))
        simulator, sim_url = start_simulator(log_dir)
        ctx = Context(
            redis_url=redis_url,
            log_dir=log_dir,
            upstream=Upstream(sim_url),
            receiver=ReceiverClient("receiver", log_dir),
            profile=profile,
        )
        try:
            biggest = max(options["n"], options["memory_messages"])
            await ctx.upstream.configure(capacity=math.ceil(biggest / SOURCES) + 1_000)
            await _scenarios(ctx, options, scenarios, errors)
        finally:
            await ctx.close()
            simulator.stop()
    machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    payload = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - started, 1),
        "machine": machine,
        "options": options,
        "scenarios": scenarios,
        "errors": errors,
    }
    rows = build_rows(scenarios)
    print()
    print(format_table(rows))
    if markdown:
        print()
        print(format_markdown(rows))
    for name, error in errors.items():
        print(f"\nbench: {name} failed: {error}", file=sys.stderr)
    write_json(output, payload, rows)
    print(f"\nbench: results in {output} ({payload['duration_s']} s); logs in {log_dir}")
    with contextlib.suppress(OSError):
        (log_dir / "deliveries.jsonl").unlink()
    return 1 if errors else 0


async def _scenarios(
    ctx: Context, options: dict[str, Any], scenarios: dict[str, Any], errors: dict[str, str]
) -> None:
    chosen = options["scenarios"]
    n, k = options["n"], options["k"]
    dispatchers = options["one_account_dispatchers"]

    async def step(name: str, run: Callable[[], Awaitable[Any]]) -> None:
        print(f"bench: {name} ...", flush=True)
        began = time.monotonic()
        try:
            scenarios[name] = await run()
        except Exception as exc:
            errors[name] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        print(f"bench: {name} done in {time.monotonic() - began:.0f} s", flush=True)

    if "throughput" in chosen:
        deliveries: list[dict[str, str]] = []

        async def relay_run() -> dict[str, Any]:
            # As `relay run` runs: one dispatcher per core, beside the naive design's best
            # of 1 and 2 workers (the scale-out scenario runs the other dispatcher count).
            result, rows = await run_relay_backlog(
                ctx, name="throughput", n=n, k=k, dispatchers=dispatchers, keep_deliveries=True
            )
            deliveries.extend(rows)
            return result

        await step("throughput", relay_run)
        if deliveries:
            await step(
                "limit",
                lambda: run_limit(ctx, deliveries, concurrency=options["limit_concurrency"]),
            )

            async def naive_runs() -> list[dict[str, Any]]:
                return [
                    await run_naive(ctx, deliveries, jobs=options["naive_jobs"], workers=workers)
                    for workers in options["naive_workers"]
                ]

            await step("naive", naive_runs)
        deliveries.clear()
    if "oneaccount" in chosen:

        async def one_account() -> dict[str, Any]:
            # One account's backlog: its pages come one after another, so ingest counts.
            result, rows = await run_relay_backlog(
                ctx,
                name="oneaccount",
                n=options["one_account_messages"],
                k=k,
                sources=1,
                dispatchers=options["one_account_dispatchers"],
                keep_deliveries=True,
            )
            # The reference client (aiohttp on the standard loop), the same on uvloop,
            # and the plain loop on the relay's own HTTP client (the fastest plain client).
            concurrency = options["limit_concurrency"]
            limit = await run_limit(ctx, rows, concurrency=concurrency, loop="asyncio")
            on_uvloop = await run_limit(ctx, rows, concurrency=concurrency, loop="uvloop")
            own = await run_limit(ctx, rows, concurrency=concurrency, client="relay")
            return {
                "relay": result,
                "limit": limit,
                "limit_uvloop": on_uvloop,
                "limit_relay_client": own,
            }

        await step("oneaccount", one_account)
    if "scaleout" in chosen:
        await step(
            "scaleout",
            lambda: run_relay_backlog(
                ctx,
                name="scaleout",
                n=n,
                k=k,
                dispatchers=1 if dispatchers > 1 else 2,
                keep_deliveries=False,
            ),
        )
        if "scaleout" in scenarios:
            scenarios["scaleout"] = scenarios["scaleout"][0]
    live = {
        "rate_per_s": options["rate_per_s"],
        "duration_s": options["latency_s"],
        "dispatchers": options["one_account_dispatchers"],
    }
    if "latency" in chosen:
        await step("latency", lambda: run_live(ctx, name="latency", k=k, **live))
    if "isolation" in chosen:
        await step("isolation", lambda: run_live(ctx, name="isolation", k=k, hang=True, **live))
    if "memory" in chosen:
        await step("memory", lambda: run_memory(ctx, name="memory", n=options["memory_messages"]))
    if "routing" in chosen:
        await step(
            "routing",
            lambda: run_routing(
                ctx, counts=options["routing_subscriptions"], events=options["routing_events"]
            ),
        )
    if "storm" in chosen:
        await step("storm", lambda: run_storm(ctx, n=options["storm_messages"]))
    if "fairness" in chosen:
        await step("fairness", lambda: run_fairness(ctx, parked=options["fairness_parked"]))


if __name__ == "__main__":
    main()
