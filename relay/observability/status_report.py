"""`relay status`: read the relay's state from Redis and print it for a person, or as JSON.

Reads REDIS_URL and RELAY_KEY_PREFIX only (no admin token). Exit codes: 0 when read (whatever
the state), 2 bad configuration, 3 Redis unreachable (the message names REDIS_URL).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence

from redis.exceptions import RedisError

from relay.core.errors import RedisUnavailable
from relay.observability.status import RelayStatus, gather_status
from relay.settings import Settings
from relay.store import Store
from relay.store.connection import async_redis, check_redis, redact_url

LATE_POLLS_S = 1.0  # a poller whose polls start later than this cannot keep up


def read_status(settings: Settings, *, now: float | None = None) -> RelayStatus:
    """The status under settings.key_prefix; raises RedisUnavailable naming REDIS_URL."""
    url = settings.require_redis_url()
    check_redis(url)

    async def gather() -> RelayStatus:
        client = async_redis(url)
        try:
            store = Store.create(client, settings)
            return await gather_status(store, now=time.time() if now is None else now)
        finally:
            await client.aclose()

    try:
        return asyncio.run(gather())
    except (RedisError, OSError) as exc:
        raise RedisUnavailable(
            f"Redis at REDIS_URL={redact_url(url)} failed while reading the status: {exc}"
        ) from exc


def render_json(status: RelayStatus) -> str:
    return json.dumps(status.to_dict(), indent=2, sort_keys=False)


def render_text(status: RelayStatus) -> str:
    """A terminal summary: roles, queues, sources, subscriptions."""
    when = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(status.at))
    lines = [f"relay status  prefix {status.key_prefix}  at {when}", "", "REDIS"]
    lines += _redis_lines(status)
    lines += ["", "ROLES"]
    if not status.roles:
        lines.append("  none seen (no role has published a heartbeat lately)")
    for name, presence in status.roles.items():
        silent = f" ({presence.stale_instances} silent)" if presence.stale_instances else ""
        flag = "  DOWN" if name in status.roles_down else ""
        lines.append(
            f"  {name:<11} {presence.instances} live{silent:<13} "
            f"last heartbeat {_ago(presence.last_seen_s)}{flag}"
        )
    q = status.queues
    lines += [
        "",
        "QUEUES",
        f"  first attempts  waiting {q.stream_backlog}, in flight {q.stream_pending}",
        f"  retries         scheduled {q.retry_scheduled}, due {q.retry_ready}, "
        f"rate-limited {q.retry_rate_limited}, running {q.retry_running}, "
        f"crashed jobs {q.retry_failed}",
        f"  dead letters    {q.dead_letters}",
        f"  polls           {_lateness(status.poll_lateness_p99_s)}",
        "",
        f"SOURCES ({len(status.sources)})",
    ]
    lines += _table(
        ("ID", "USER", "STATUS", "CURSOR LAG", "LAST POLL", "LAST ERROR"),
        [
            (
                s.id,
                s.username,
                s.status,
                _duration(s.cursor_lag_s),
                _ago(s.last_polled_ago_s),
                s.last_error or "-",
            )
            for s in status.sources
        ],
    )
    lines += ["", f"SUBSCRIPTIONS ({len(status.subscriptions)})"]
    lines += _table(
        ("ID", "ENABLED", "SUCCESS (RECENT)", "RETRIES", "DEAD", "LAST ATTEMPT", "URL"),
        [
            (
                s.id,
                "yes" if s.enabled else f"no: {s.disabled_reason or 'disabled'}",
                _rate(s.success_rate, s.recent_delivered, s.recent_attempts),
                str(s.queued_retries),
                str(s.dead_letters),
                _ago(s.last_attempt_ago_s),
                s.url,
            )
            for s in status.subscriptions
        ],
    )
    return "\n".join(lines)


def _redis_lines(status: RelayStatus) -> list[str]:
    memory = status.redis
    policy = memory.policy or "unknown (CONFIG and INFO memory refused)"
    if memory.is_evicting:
        policy += "  EVICTING: keys are deleted when memory is full; set noeviction"
    used = _bytes(memory.used_bytes)
    limit = "no limit" if not memory.max_bytes else f"of {_bytes(memory.max_bytes)}"
    lines = [f"  maxmemory-policy {policy}", f"  memory           {used} {limit}"]
    if memory.is_out_of_memory:
        lines.append(
            "  Redis is out of memory: writes are refused; every role waits and resumes "
            "when memory frees (heartbeats cannot be written meanwhile)"
        )
    return lines


def _bytes(count: int | None) -> str:
    if count is None:
        return "unknown"
    if count < 1024 * 1024:
        return f"{count / 1024:.0f} KiB"
    return f"{count / 1024 / 1024:.1f} MiB"


def _lateness(by_poller: dict[str, float]) -> str:
    """One line on whether the pollers keep up: their worst recent p99 of due -> start."""
    if not by_poller:
        return "no poller running"
    worst = max(by_poller.values())
    behind = "  BEHIND: add a poller (docs/SCALING.md)" if worst > LATE_POLLS_S else ""
    return f"start late by {worst * 1000:.0f} ms p99 ({len(by_poller)} pollers){behind}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    if not rows:
        return ["  none"]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    return [
        "  "
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]


def _rate(rate: float | None, delivered: int, attempts: int) -> str:
    if rate is None:
        return "-"
    return f"{rate * 100:.0f}% ({delivered}/{attempts})"


def _ago(seconds: float | None) -> str:
    return "never" if seconds is None else f"{_duration(seconds)} ago"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.1f}s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f}m"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"
