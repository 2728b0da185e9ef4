"""A Sentinel-managed Redis of a test's own on loopback (never the shared one): one master,
replicas, and three sentinels, all real `redis-server` processes (the embedded binary, the
sentinels started with `--sentinel`), on free ports."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis

from relay.store.connection import _redis_server_binary
from tests.support import free_port, wait_until_sync

SERVICE = "relay-ha"
DOWN_AFTER_MS = 1000  # sentinels call the master down after 1 s without an answer


@dataclass
class SentinelCluster:
    workdir: Path
    replicas: int = 1
    sentinels: int = 3
    server_options: Sequence[str] = ()  # e.g. ("--min-replicas-to-write", "1")
    ports: list[int] = field(default_factory=list)  # servers; [0] is the first master
    sentinel_ports: list[int] = field(default_factory=list)
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> None:
        self.ports = [free_port() for _ in range(1 + self.replicas)]
        self.sentinel_ports = [free_port() for _ in range(self.sentinels)]
        master = self.ports[0]
        for port in self.ports:
            extra = [] if port == master else ["--replicaof", "127.0.0.1", str(master)]
            self._spawn(port, ["--port", str(port), *extra, *self.server_options])
        for port in self.sentinel_ports:
            conf = self.workdir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.workdir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {master} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} 10000\n"
            )
            self._spawn(port, [str(conf), "--sentinel"])
        wait_until_sync(self._is_ready, timeout_s=30, what="sentinels to see every replica")

    def master_port(self) -> int | None:
        """The master the sentinels name now (None while they do not agree on a live one)."""
        names = set()
        for port in self.sentinel_ports:
            with contextlib.suppress(redis.RedisError, OSError), _client(port) as client:
                reply = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
                names.add(int(reply[1]))
        return names.pop() if len(names) == 1 else None

    def kill_9_master(self) -> int:
        """SIGKILL the current master; returns its port."""
        port = self.master_port()
        assert port is not None, "no agreed master"
        process = self.processes.pop(port)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        return port

    def wait_for_new_master(self, old: int, *, timeout_s: float = 60) -> float:
        """Seconds until the sentinels agree on a promoted replica that accepts writes."""
        started = time.monotonic()
        wait_until_sync(
            lambda: self._writable_master(old), timeout_s=timeout_s, what="a promoted replica"
        )
        return time.monotonic() - started

    def stop(self) -> None:
        for process in self.processes.values():
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        self.processes.clear()

    def _spawn(self, port: int, args: list[str]) -> None:
        argv = [_redis_server_binary(), *args, "--bind", "127.0.0.1", "--save", ""]
        argv += ["--dir", str(self.workdir), "--loglevel", "notice"]
        log = (self.workdir / f"redis-{port}.log").open("ab")
        self.processes[port] = subprocess.Popen(argv, stdout=log, stderr=log)
        log.close()

    def _is_ready(self) -> bool:
        for port in self.ports[1:]:
            with contextlib.suppress(redis.RedisError, OSError), _client(port) as client:
                if client.info("replication").get("master_link_status") != "up":
                    return False
                continue
            return False
        for port in self.sentinel_ports:
            try:
                with _client(port) as client:
                    state = client.sentinel_master(SERVICE)
            except (redis.RedisError, OSError):
                return False
            if int(state["num-slaves"]) < self.replicas:
                return False
            if int(state["num-other-sentinels"]) < self.sentinels - 1:
                return False
        return True

    def _writable_master(self, old: int) -> bool:
        port = self.master_port()
        if port is None or port == old:
            return False
        try:
            with _client(port) as client:
                return bool(client.info("replication").get("role") == "master")
        except (redis.RedisError, OSError):
            return False


def _client(port: int) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1",
        port=port,
        socket_timeout=2,
        socket_connect_timeout=1,
        decode_responses=True,
    )
