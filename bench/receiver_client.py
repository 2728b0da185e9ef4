"""Starting the fast receiver (bench.receiver) in its own process and reading what it saw."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from bench.procs import Child, free_port, python_child, wait_for_port


class ReceiverClient:
    """One receiver process and its control routes."""

    def __init__(self, name: str, log_dir: Path) -> None:
        port = free_port()
        self.child: Child = python_child(
            name, "bench.receiver", "--port", str(port), log_dir=log_dir
        )
        wait_for_port(port, self.child)
        self.base_url = f"http://127.0.0.1:{port}"
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=120.0)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    async def reset(self) -> None:
        (await self._client.post("/_bench/reset")).raise_for_status()

    async def up(self) -> None:
        """`/down` paths answer 200 from now on."""
        (await self._client.post("/_bench/up")).raise_for_status()

    async def stats(self) -> dict[str, Any]:
        response = await self._client.get("/_bench/stats")
        response.raise_for_status()
        stats: dict[str, Any] = response.json()
        return stats

    async def arrivals(self) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
        """({path: {webhook_id: arrival epoch s}}, {webhook_id: documentId})."""
        response = await self._client.get("/_bench/arrivals")
        response.raise_for_status()
        payload = response.json()
        return payload["arrivals"], payload["documents"]

    async def samples(self) -> dict[str, dict[str, Any]]:
        response = await self._client.get("/_bench/samples")
        response.raise_for_status()
        samples: dict[str, dict[str, Any]] = response.json()
        return samples

    async def wait_for(
        self, expected: int, *, timeout_s: float, stall_s: float, alive: Any = None
    ) -> int:
        """Wait until `expected` unique deliveries arrived, `timeout_s` passed, or nothing new
        arrived for `stall_s`; returns the unique count. `alive()` may raise to abort."""
        deadline = time.monotonic() + timeout_s
        last_count, last_change = -1, time.monotonic()
        while True:
            stats = await self.stats()
            count = int(sum(stats["per_path"].values()))
            now = time.monotonic()
            if count != last_count:
                last_count, last_change = count, now
            if count >= expected or now > deadline or now - last_change > stall_s:
                return count
            if alive is not None:
                alive()
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        await self._client.aclose()
        self.child.stop()
