"""The MC5 simulator (`relay simulate`, the real one) and the messages the bench puts into it.

Every scenario gets its own accounts (`b{run}s{n}@bench`), so nothing carries over between
scenarios sharing the simulator process. Live injection records the wall-clock time just
before each batch is sent, per documentId: message `timestamp`s are whole seconds, too coarse
to measure latency from.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.procs import Child, free_port, python_child, wait_for_port

PASSWORD = "bench-pw"


def start_simulator(log_dir: Path) -> tuple[Child, str]:
    """`relay simulate` on a free loopback port; returns the child and its base URL."""
    port = free_port()
    child = python_child(
        "simulator", "workers.cli", "simulate", "--port", str(port), log_dir=log_dir
    )
    wait_for_port(port, child)
    return child, f"http://127.0.0.1:{port}"


@dataclass
class Upstream:
    """Control-route client of one simulator."""

    base_url: str
    client: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.AsyncClient(base_url=self.base_url, timeout=60.0)

    async def close(self) -> None:
        await self.client.aclose()

    async def configure(self, *, capacity: int) -> None:
        response = await self.client.post("/_sim/config", json={"capacity": capacity})
        response.raise_for_status()

    async def add_accounts(self, usernames: list[str]) -> None:
        for username in usernames:
            response = await self.client.post(
                "/_sim/accounts", json={"username": username, "password": PASSWORD}
            )
            response.raise_for_status()

    async def clear(self, usernames: list[str]) -> None:
        for username in usernames:
            await self.client.delete("/_sim/messages", params={"username": username})

    async def add_backlog(
        self, username: str, *, count: int, first_second: int, per_second: int
    ) -> list[str]:
        """`count` incoming messages from `first_second`, `per_second` per second."""
        ids: list[str] = []
        remaining, second = count, first_second
        while remaining > 0:
            batch = min(remaining, 10_000 - 10_000 % per_second)
            response = await self.client.post(
                "/_sim/messages",
                json={
                    "username": username,
                    "count": batch,
                    "kind": "incoming",
                    "timestamp": second,
                    "per_second": per_second,
                },
            )
            response.raise_for_status()
            ids.extend(response.json()["documentIds"])
            remaining -= batch
            second += batch // per_second
        return ids

    async def add_now(self, username: str, count: int) -> tuple[float, list[str]]:
        """`count` messages stamped now; returns (wall time just before sending, their ids)."""
        sent_at = time.time()
        response = await self.client.post(
            "/_sim/messages", json={"username": username, "count": count, "kind": "incoming"}
        )
        response.raise_for_status()
        return sent_at, list(response.json()["documentIds"])


async def inject_live(
    upstream: Upstream,
    usernames: list[str],
    *,
    rate_per_s: float,
    duration_s: float,
    tick_s: float = 0.05,
) -> dict[str, float]:
    """Add messages at `rate_per_s` spread round-robin over `usernames` for `duration_s`;
    returns documentId -> wall time of injection. Paced by elapsed time, so a slow call is
    caught up on the next tick rather than lowering the rate."""
    injected: dict[str, float] = {}
    started = time.monotonic()
    total = int(rate_per_s * duration_s)
    done = 0
    turn = 0
    while done < total:
        elapsed = time.monotonic() - started
        if elapsed > duration_s * 2 + 10:  # hard bound should the simulator stall
            break
        due = min(total, int(elapsed * rate_per_s) + 1)
        counts: dict[str, int] = {}
        while done < due:
            # Round-robin over the accounts, one call per account per tick.
            username = usernames[turn % len(usernames)]
            counts[username] = counts.get(username, 0) + 1
            turn += 1
            done += 1
        calls = [upstream.add_now(username, n) for username, n in counts.items()]
        for sent_at, ids in await asyncio.gather(*calls):
            for document_id in ids:
                injected[document_id] = sent_at
        next_tick = started + (int(elapsed / tick_s) + 1) * tick_s
        await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
    return injected
