"""A redis-server of a test's own on a free port (never the shared one): for the faults that
need a special server — a restart, a small maxmemory, an evicting policy."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis

from relay.store.connection import _redis_server_binary
from tests.support import wait_until_sync


@dataclass
class OwnRedis:
    """Persists to `workdir` with `appendonly yes`; `options` are extra server arguments
    (e.g. `("--maxmemory", "20mb", "--maxmemory-policy", "allkeys-lru")`)."""

    workdir: Path
    port: int
    options: Sequence[str] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=10)

    def start(self) -> None:
        argv = [
            _redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.workdir),
            "--appendonly", "yes",
            "--save", "",
            "--loglevel", "warning",
            *self.options,
        ]  # fmt: skip
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            wait_until_sync(lambda: _pings(client), timeout_s=15, what="redis-server to answer")
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM: Redis flushes its append-only file and exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
