"""The `redis+sentinel://` URL: a Redis master found through Sentinel, so the relay follows a
failover instead of writing to a dead (or demoted) server.

    redis+sentinel://[[username]:password@]host:port[,host:port...]/service_name[/db]

The hosts are the sentinels (at least one; list them all, the client asks each in turn until
one names the master). `service_name` is the name the sentinels monitor (`sentinel monitor
<service_name> ...`). The optional username and password authenticate to the master (and the
replicas); the sentinels are asked without a password. `db` defaults to 0. Parsing is pure, so
settings can validate the URL at start and name the variable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from relay.core.errors import ConfigError

SENTINEL_SCHEME = "redis+sentinel"
_PREFIX = f"{SENTINEL_SCHEME}://"
_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[A-Za-z0-9_.-]+)):(?P<port>\d+)$")
_SERVICE = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    """Where the sentinels are, which master they manage, and how to log in to it."""

    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def is_sentinel_url(url: str) -> bool:
    """Whether `url` names a Sentinel-managed master."""
    return url.startswith(_PREFIX)


def parse_sentinel_url(url: str, *, variable: str = "REDIS_URL") -> SentinelTarget:
    """The target of a `redis+sentinel://` URL; ConfigError naming `variable` (never the
    password) when it is malformed."""
    if not is_sentinel_url(url):
        raise ConfigError(f"{variable} must start with {_PREFIX}")
    rest = url[len(_PREFIX) :]
    credentials, at, rest = rest.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = credentials.partition(":")
        if colon:
            username, password = unquote(user) or None, unquote(secret)
        else:  # `password@`, as redis:// URLs allow
            password = unquote(user)
    hosts, slash, path = rest.partition("/")
    parts = [p for p in path.split("/") if p] if slash else []
    if not parts or len(parts) > 2 or not _SERVICE.match(parts[0]):
        raise ConfigError(
            f"{variable} needs a service name: {_PREFIX}host:port[,host:port...]/service_name[/db]"
        )
    db = 0
    if len(parts) == 2:
        if not parts[1].isdigit():
            raise ConfigError(f"{variable}: the database after the service name must be a number")
        db = int(parts[1])
    return SentinelTarget(
        sentinels=parse_sentinel_hosts(hosts, variable=variable),
        service_name=parts[0],
        db=db,
        username=username,
        password=password,
    )


def parse_sentinel_hosts(hosts: str, *, variable: str) -> tuple[tuple[str, int], ...]:
    """`host:port,host:port...` as pairs; ConfigError naming `variable` when one is not."""
    pairs: list[tuple[str, int]] = []
    for item in (h.strip() for h in hosts.split(",")):
        match = _HOST_PORT.match(item)
        port = int(match["port"]) if match else 0
        if match is None or not 0 < port < 65536:
            raise ConfigError(f"{variable}: {item!r} is not a sentinel host:port")
        pairs.append((match["v6"] or match["host"], port))
    return tuple(pairs)


def sentinel_url(target: SentinelTarget) -> str:
    """The `redis+sentinel://` URL of `target` (the inverse of parse_sentinel_url)."""
    credentials = ""
    if target.password is not None:
        user = quote(target.username or "", safe="")
        credentials = f"{user}:{quote(target.password, safe='')}@"
    hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in target.sentinels)
    return f"{_PREFIX}{credentials}{hosts}/{target.service_name}/{target.db}"
