"""One relay under test: a fresh key prefix, its sources and subscriptions (through the relay's
own stores), and its roles as `python -m workers.cli ROLE` subprocesses."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from bench.procs import PYTHON, Child, python_child
from bench.upstream import PASSWORD
from relay.settings import Settings
from relay.store import Store
from relay.store.connection import async_redis
from relay.store.heartbeats import heartbeats

ADMIN_TOKEN = "bench-admin-token"


class RelayRun:
    """Sources, subscriptions and role processes under one fresh key prefix."""

    def __init__(
        self, *, redis_url: str, log_dir: Path, name: str, poll_interval_s: float = 1.0
    ) -> None:
        self.name = name
        self.redis_url = redis_url
        self.prefix = f"bench:{uuid.uuid4().hex[:10]}:"
        self.log_dir = log_dir / name
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = {
            "REDIS_URL": redis_url,
            "RELAY_KEY_PREFIX": self.prefix,
            "RELAY_ADMIN_TOKEN": ADMIN_TOKEN,
            "RELAY_ALLOW_PRIVATE_TARGETS": "true",
            "RELAY_POLL_INTERVAL": str(poll_interval_s),
        }
        for passthrough in ("RELAY_LOG_LEVEL", "RELAY_SUBSCRIBER_CONCURRENCY", "RELAY_EVENT_LOOP"):
            if passthrough in os.environ:
                self.env[passthrough] = os.environ[passthrough]
        self.settings = Settings.from_env(self.env)
        self.redis = async_redis(redis_url)
        self.store = Store.create(self.redis, self.settings)
        self.children: list[Child] = []
        self.profilers: list[subprocess.Popen[bytes]] = []

    async def add_sources(
        self, base_url: str, usernames: list[str], *, start_from: int | None
    ) -> list[str]:
        ids = []
        for username in usernames:
            source = await self.store.sources.create(
                username=username,
                password=PASSWORD,
                base_url=base_url,
                poll_interval_s=self.settings.poll_interval_s,
                start_from=start_from,
                now=time.time(),
            )
            ids.append(source.id)
        return ids

    async def add_subscriptions(self, urls: list[str]) -> list[str]:
        ids = []
        for url in urls:
            subscription = await self.store.subscriptions.create(
                url=url,
                event_types=None,
                source_ids=None,
                description=f"bench {self.name}",
                headers={},
                enabled=True,
                now=time.time(),
            )
            ids.append(subscription.id)
        return ids

    def start_roles(self, *, dispatchers: int = 1, pollers: int = 1, workers: int = 1) -> None:
        roles = [("poller", pollers), ("dispatcher", dispatchers), ("worker", workers)]
        for role, count in roles:
            for n in range(count):
                self.children.append(
                    python_child(
                        f"{role}-{n}", "workers.cli", role, log_dir=self.log_dir, env=self.env
                    )
                )

    async def wait_ready(self, roles: tuple[str, ...], *, timeout_s: float = 60.0) -> None:
        """Wait until every one of `roles` has published a heartbeat (it is up and working)
        and, with a poller, until it listens for created sources: a relay that has been
        running a while, as a user creating a source meets it."""
        deadline = time.monotonic() + timeout_s
        while not await self._ready(roles):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: {roles} not up after {timeout_s} s")
            self.check_alive()
            await asyncio.sleep(0.05)

    async def _ready(self, roles: tuple[str, ...]) -> bool:
        if {beat.role for beat in await heartbeats(self.redis, self.store.keys)} < set(roles):
            return False
        if "poller" not in roles:
            return True
        ((_channel, listeners),) = await self.redis.pubsub_numsub(self.store.keys.sources_created)
        return int(listeners) >= 1

    def check_alive(self) -> None:
        """Raise with the log tail if a role died."""
        for child in self.children:
            if not child.is_alive():
                raise RuntimeError(f"{self.name}: {child.name} exited:\n{child.tail()}")

    def profile(self, duration_s: float) -> list[Path]:
        """Attach py-spy (when installed) to every role for `duration_s`; returns the files of
        collapsed stacks it will write next to the logs (see bench.profiles)."""
        py_spy = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
        if not Path(py_spy).exists():
            print("  (py-spy is not installed: no profile; pip install py-spy)")
            return []
        outputs = []
        for child in self.children:
            out = self.log_dir / f"{child.name}.stacks.txt"
            argv = [py_spy, "record", "--pid", str(child.pid), "--duration", str(int(duration_s))]
            argv += ["--format", "raw", "--rate", "200", "--nonblocking", "--output", str(out)]
            log = (self.log_dir / f"{child.name}.py-spy.log").open("wb")
            self.profilers.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))
            outputs.append(out)
        return outputs

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by each role process."""
        return {child.name: child.cpu_seconds() or 0.0 for child in self.children}

    def peak_rss(self) -> dict[str, int | None]:
        return {child.name: child.read_peak_rss() for child in self.children}

    def stop_roles(self) -> dict[str, int | None]:
        """Stop every role (SIGTERM); returns peak RSS by process name."""
        for profiler in self.profilers:
            try:
                profiler.wait(timeout=60)
            except subprocess.TimeoutExpired:
                profiler.kill()
        peaks = self.peak_rss()
        for child in self.children:
            child.stop()
        return peaks

    async def secrets(self, subscription_ids: list[str]) -> dict[str, str]:
        """The current signing secret of each subscription."""
        secrets = {}
        for subscription_id in subscription_ids:
            subscription = await self.store.subscriptions.get(subscription_id)
            secrets[subscription_id] = subscription.secrets[0].value
        return secrets

    async def recorded_at(self, event_ids: list[str]) -> dict[str, float]:
        """When the relay recorded each event (its `created_at`, epoch seconds)."""
        found: dict[str, float] = {}
        for start in range(0, len(event_ids), 1000):
            for event in await self.store.events.get_many(event_ids[start : start + 1000]):
                if event is not None:
                    found[event.id] = event.created_at_ms / 1000
        return found

    async def deliveries(self, urls_by_subscription: dict[str, str]) -> list[dict[str, str]]:
        """Every stored event x every given subscription, as the limit and naive clients
        need them: url, secret, webhook id and the exact body the relay sent."""
        keys = self.store.keys
        event_ids = [str(i) for i in await self.redis.zrange(keys.events, 0, -1)]
        secrets = await self.secrets(list(urls_by_subscription))
        rows = []
        for start in range(0, len(event_ids), 1000):
            chunk = event_ids[start : start + 1000]
            for event in await self.store.events.get_many(chunk):
                if event is None:
                    continue
                body = event.body.decode()
                for subscription_id, url in urls_by_subscription.items():
                    rows.append(
                        {"url": url, "secret": secrets[subscription_id], "id": event.id}
                        | {"body": body}
                    )
        return rows

    async def close(self) -> None:
        """Stop what is still running and delete every key under this run's prefix."""
        for child in self.children:
            child.stop()
        for pattern in (f"{self.prefix}*", f"rq:*{self.prefix}*"):
            batch = [key async for key in self.redis.scan_iter(match=pattern, count=2000)]
            for start in range(0, len(batch), 500):
                await self.redis.delete(*batch[start : start + 500])
        await self.redis.aclose()
