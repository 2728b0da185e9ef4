"""Settings.from_env: the only place that reads the environment.

Every variable of the README's Configuration table is parsed and
validated here; a bad value raises ConfigError naming the variable.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from relay.core.errors import ConfigError
from relay.core.redis_urls import (
    SentinelTarget,
    is_sentinel_url,
    parse_sentinel_hosts,
    parse_sentinel_url,
    sentinel_url,
)
from relay.event_loops import CHOICES as EVENT_LOOPS

DEFAULT_MC5_BASE_URL = "https://mc5.smartmessagingservices.net"
DEFAULT_RETRY_SCHEDULE_S = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR"}
MIN_ADMIN_TOKEN_LENGTH = 16  # shorter tokens are refused at start unless RELAY_ALLOW_WEAK_TOKENS

log = logging.getLogger("relay.settings")


@dataclass(frozen=True, slots=True)
class Settings:
    redis_url: str | None = None
    key_prefix: str = "relay:"
    admin_tokens: tuple[str, ...] = ()
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    mc5_base_url: str = DEFAULT_MC5_BASE_URL
    mc5_username: str | None = None
    mc5_password: str | None = None
    poll_interval_s: float = 2.0
    start_from: int | None = None  # None means "now"
    retry_schedule_s: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE_S
    delivery_timeout_s: float = 15.0
    allow_private_targets: bool = False
    log_level: str = "INFO"
    dedupe_ttl_s: int = 7 * 86400
    event_retention_s: int = 7 * 86400
    subscriber_concurrency: int = 16
    worker_concurrency: int = 4  # drain jobs (one subscription's due retries each) at once
    attempts_kept: int = 1000
    demo_secret: str | None = None  # `relay dev` hands the demo receiver its secret
    # Redis and token safety (issue 14): checked at start by every role.
    allow_evicting_redis: bool = False
    allow_weak_tokens: bool = False
    # Ingest bounds (issues 14, 15): upstream answers and the poller's concurrency.
    mc5_max_response_bytes: int = 4 * 1024 * 1024
    mc5_deadline_s: float = 30.0
    poll_concurrency: int = 256
    poll_max_pages_per_s: float = 50.0
    runtime_dir: str | None = None  # XDG_RUNTIME_DIR: where `relay dev` publishes its state
    # The variables given a non-blank value, so `relay dev` can tell a chosen value from a
    # default (a chosen port that is taken is an error; a default one moves).
    given: frozenset[str] = frozenset()
    auth_failures_per_minute: int = 20  # per client address, then 429
    trusted_proxies: tuple[str, ...] = ()  # addresses/CIDRs whose X-Forwarded-For is believed
    # Subscription health (issue 17): auto-disable and the operator's own webhooks.
    disable_after_s: int = 5 * 86400
    operator_webhook_url: str | None = None
    operator_webhook_secret: str | None = field(default=None, repr=False)
    event_loop: str = "auto"  # relay.event_loops: auto (uvloop if installed), asyncio, uvloop

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (os.environ by default); raises ConfigError."""
        env = os.environ if environ is None else environ
        tokens = tuple(t.strip() for t in env.get("RELAY_ADMIN_TOKEN", "").split(",") if t.strip())
        return cls(
            redis_url=_redis_url(env),
            key_prefix=_prefix(env.get("RELAY_KEY_PREFIX", "relay:")),
            admin_tokens=tokens,
            api_host=env.get("RELAY_API_HOST", "127.0.0.1") or "127.0.0.1",
            api_port=_int(env, "RELAY_API_PORT", 8080, low=0, high=65535),
            mc5_base_url=_base_url(env.get("MC5_BASE_URL", DEFAULT_MC5_BASE_URL)),
            mc5_username=env.get("MC5_USERNAME") or None,
            mc5_password=env.get("MC5_PASSWORD") or None,
            poll_interval_s=_float(env, "RELAY_POLL_INTERVAL", 2.0, low=0.05),
            start_from=_start_from(env.get("RELAY_START_FROM", "now")),
            retry_schedule_s=_schedule(env.get("RELAY_RETRY_SCHEDULE")),
            delivery_timeout_s=_float(env, "RELAY_DELIVERY_TIMEOUT", 15.0, low=0.1),
            allow_private_targets=_bool(env, "RELAY_ALLOW_PRIVATE_TARGETS", False),
            log_level=_log_level(env.get("RELAY_LOG_LEVEL", "INFO")),
            dedupe_ttl_s=_int(env, "RELAY_DEDUPE_TTL", 7 * 86400, low=60),
            event_retention_s=_int(env, "RELAY_EVENT_RETENTION", 7 * 86400, low=60),
            subscriber_concurrency=_int(env, "RELAY_SUBSCRIBER_CONCURRENCY", 16, low=1, high=1000),
            worker_concurrency=_int(env, "RELAY_WORKER_CONCURRENCY", 4, low=1, high=64),
            attempts_kept=_int(env, "RELAY_ATTEMPTS_KEPT", 1000, low=10),
            demo_secret=env.get("RELAY_DEMO_SECRET") or None,
            allow_evicting_redis=_bool(env, "RELAY_ALLOW_EVICTING_REDIS", False),
            allow_weak_tokens=_bool(env, "RELAY_ALLOW_WEAK_TOKENS", False),
            # Ingest bounds (issues 14, 15).
            mc5_max_response_bytes=_int(
                env, "RELAY_MC5_MAX_RESPONSE_BYTES", 4 * 1024 * 1024, low=65536
            ),
            mc5_deadline_s=_float(env, "RELAY_MC5_DEADLINE", 30.0, low=1.0),
            poll_concurrency=_int(env, "RELAY_POLL_CONCURRENCY", 256, low=1, high=4096),
            poll_max_pages_per_s=_float(env, "RELAY_POLL_MAX_PAGES_PER_S", 50.0, low=0.1),
            runtime_dir=env.get("XDG_RUNTIME_DIR") or None,
            given=frozenset(
                name
                for name, value in env.items()
                if name.startswith(("RELAY_", "MC5_", "REDIS_")) and value.strip()
            ),
            auth_failures_per_minute=_int(env, "RELAY_AUTH_FAILURES_PER_MINUTE", 20, low=1),
            trusted_proxies=_networks(env.get("RELAY_TRUSTED_PROXIES", "")),
            disable_after_s=_int(env, "RELAY_DISABLE_AFTER", 5 * 86400, low=1),
            operator_webhook_url=env.get("RELAY_OPERATOR_WEBHOOK_URL", "").strip() or None,
            operator_webhook_secret=_operator_secret(env),
            event_loop=_event_loop(env.get("RELAY_EVENT_LOOP", "auto")),
        )

    def replace(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests and `relay dev`)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def require_redis_url(self) -> str:
        """REDIS_URL, or ConfigError for the roles that cannot embed Redis."""
        if not self.redis_url:
            raise ConfigError("REDIS_URL is required (e.g. redis://127.0.0.1:6379/0)")
        return self.redis_url

    def require_admin_tokens(self) -> tuple[str, ...]:
        """The admin tokens; ConfigError when none is set, or when one is shorter than
        MIN_ADMIN_TOKEN_LENGTH unless RELAY_ALLOW_WEAK_TOKENS (then a warning). Never
        names a token's value."""
        if not self.admin_tokens:
            raise ConfigError("RELAY_ADMIN_TOKEN is required (one or more tokens, comma-separated)")
        weak = sum(1 for token in self.admin_tokens if len(token) < MIN_ADMIN_TOKEN_LENGTH)
        if weak:
            problem = (
                f"RELAY_ADMIN_TOKEN has {weak} token(s) shorter than {MIN_ADMIN_TOKEN_LENGTH} "
                "characters, which can be guessed"
            )
            if not self.allow_weak_tokens:
                raise ConfigError(
                    f"{problem}; generate one with `python -c 'import secrets; "
                    "print(secrets.token_urlsafe(32))'`, or set RELAY_ALLOW_WEAK_TOKENS=true"
                )
            log.warning(f"{problem}; allowed because RELAY_ALLOW_WEAK_TOKENS=true")
        return self.admin_tokens


def _redis_url(env: Mapping[str, str]) -> str | None:
    """REDIS_URL, or the `redis+sentinel://` URL that RELAY_REDIS_SENTINELS and
    RELAY_REDIS_SENTINEL_SERVICE name (a master password needs the URL form)."""
    url = env.get("REDIS_URL", "").strip() or None
    hosts = env.get("RELAY_REDIS_SENTINELS", "").strip()
    service = env.get("RELAY_REDIS_SENTINEL_SERVICE", "").strip()
    if not hosts:
        if service:
            raise ConfigError("RELAY_REDIS_SENTINEL_SERVICE needs RELAY_REDIS_SENTINELS")
        if url is not None and is_sentinel_url(url):
            parse_sentinel_url(url)  # a malformed URL fails at start, naming REDIS_URL
        return url
    if url is not None:
        raise ConfigError("set REDIS_URL or RELAY_REDIS_SENTINELS, not both")
    if not service:
        raise ConfigError(
            "RELAY_REDIS_SENTINELS needs RELAY_REDIS_SENTINEL_SERVICE (the monitored name)"
        )
    sentinels = parse_sentinel_hosts(hosts, variable="RELAY_REDIS_SENTINELS")
    url = sentinel_url(SentinelTarget(sentinels=sentinels, service_name=service))
    parse_sentinel_url(url, variable="RELAY_REDIS_SENTINEL_SERVICE")
    return url


DEFAULT_CLIENT_URL = "http://127.0.0.1:8080"


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """What the admin commands (`relay sources ...`) need to reach a relay: `RELAY_URL` and
    `RELAY_TOKEN`; separate from Settings so a client never trips over server settings."""

    url: str = DEFAULT_CLIENT_URL
    token: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClientSettings:
        env = os.environ if environ is None else environ
        return cls(
            url=env.get("RELAY_URL") or DEFAULT_CLIENT_URL, token=env.get("RELAY_TOKEN") or None
        )


def _networks(raw: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or CIDR blocks, each checked."""
    networks = tuple(part.strip() for part in raw.split(",") if part.strip())
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigError(
                f"RELAY_TRUSTED_PROXIES must list IP addresses or CIDR blocks, got {network!r}"
            ) from None
    return networks


def _prefix(raw: str) -> str:
    if not raw or any(c.isspace() for c in raw) or len(raw) > 64:
        raise ConfigError(f"RELAY_KEY_PREFIX must be 1-64 characters without spaces, got {raw!r}")
    return raw


def _base_url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ConfigError(f"MC5_BASE_URL must start with http:// or https://, got {raw!r}")
    return raw.rstrip("/")


def _operator_secret(env: Mapping[str, str]) -> str | None:
    """The operator webhooks' `whsec_` secret; required once a URL is set."""
    secret = env.get("RELAY_OPERATOR_WEBHOOK_SECRET", "").strip() or None
    if env.get("RELAY_OPERATOR_WEBHOOK_URL", "").strip() and secret is None:
        raise ConfigError(
            "RELAY_OPERATOR_WEBHOOK_SECRET is required with RELAY_OPERATOR_WEBHOOK_URL"
        )
    if secret is not None and not secret.startswith("whsec_"):
        raise ConfigError("RELAY_OPERATOR_WEBHOOK_SECRET must be a whsec_ secret")
    return secret


def _int(
    env: Mapping[str, str], name: str, default: int, *, low: int, high: int | None = None
) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{name} must be {bound}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, low: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not value >= low or value == float("inf"):
        raise ConfigError(f"{name} must be a finite number of at least {low}, got {raw!r}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _start_from(raw: str) -> int | None:
    raw = raw.strip().lower()
    if raw in ("", "now"):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(
            f"RELAY_START_FROM must be 'now' or an epoch second, got {raw!r}"
        ) from None
    if value < 0:
        raise ConfigError(f"RELAY_START_FROM must not be negative, got {value}")
    return value


def _schedule(raw: str | None) -> tuple[float, ...]:
    if raw is None or not raw.strip():
        return DEFAULT_RETRY_SCHEDULE_S
    try:
        values = tuple(float(part) for part in raw.split(","))
    except ValueError:
        raise ConfigError(
            f"RELAY_RETRY_SCHEDULE must be comma-separated seconds like '5,300,1800', got {raw!r}"
        ) from None
    if any(not 0 <= v < 10 * 86400 for v in values):
        raise ConfigError("RELAY_RETRY_SCHEDULE values must be between 0 and 864000 seconds")
    return values


def _event_loop(raw: str) -> str:
    choice = raw.strip().lower() or "auto"
    if choice not in EVENT_LOOPS:
        raise ConfigError(f"RELAY_EVENT_LOOP must be one of {list(EVENT_LOOPS)}, got {raw!r}")
    return choice


def _log_level(raw: str) -> str:
    level = raw.strip().upper() or "INFO"
    if level not in _LOG_LEVELS:
        raise ConfigError(f"RELAY_LOG_LEVEL must be one of {sorted(_LOG_LEVELS)}, got {raw!r}")
    return level
