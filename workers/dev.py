"""`relay dev`: the whole relay on one laptop, with demo traffic and a demo receiver.

Starts an embedded Redis when REDIS_URL is unset, the MC5 simulator generating messages, a
demo receiver that verifies and prints each webhook, and every relay role; subscribes the
receiver and points a source at the simulator; prints the URLs, the Redis URL and prefix and
the admin token, and publishes them for `relay status` and `relay dev --env`
(workers.dev_state).

Ports: a port left at its default moves to a free one when taken (the banner says so); a port
asked for explicitly (flag or RELAY_API_PORT) that is taken is a configuration error naming
the flag, and 0 means any free port. Two `relay dev` therefore run side by side, each with its
own embedded Redis; on a shared REDIS_URL a second one with the same RELAY_KEY_PREFIX is
refused, since both would deliver each other's events.

Unless `--verbose`, the roles' warnings and errors are shown as one short line each (their
stderr goes through workers.dev_output), and the roles' retries default to 1, 2, 4 s so a failing
endpoint shows its retries and dead letter within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shlex
import signal
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import FrameType

from relay.core.errors import ConfigError
from relay.demo.seed import DEMO_PASSWORD, DEMO_USERNAME, seed_demo
from relay.settings import Settings
from relay.store.connection import check_redis, embedded_redis, redact_url
from workers.dev_output import human_stderr
from workers.dev_state import DevState, published, running_devs
from workers.supervisor import ROLES, ChildSpec, Supervisor, role_spec

DEFAULT_SIMULATOR_PORT = 8090
DEFAULT_RECEIVER_PORT = 8070
DEV_RETRY_SCHEDULE = "1,2,4"


@dataclass(frozen=True, slots=True)
class Port:
    """A port to listen on, and why it is not the one asked for (None when it is)."""

    number: int
    moved_from: int | None = None


def choose_port(host: str, *, asked: int | None, default: int, flag: str) -> Port:
    """`asked` when free (ConfigError naming `flag` when taken; 0 is any free port), else
    `default` when free, else any free port."""
    if asked == 0:
        return Port(_any_free_port(host))
    if asked is not None:
        if not _is_free(host, asked):
            raise ConfigError(
                f"port {asked} on {host} is already in use (another relay dev?): "
                f"choose another with {flag}, or {flag} 0 for any free port"
            )
        return Port(asked)
    if _is_free(host, default):
        return Port(default)
    return Port(_any_free_port(host), moved_from=default)


def _is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _any_free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def run_dev(
    settings: Settings,
    *,
    rate: float,
    simulator_port: int | None = None,
    receiver_port: int | None = None,
    verbose: bool = False,
) -> int:
    """Run everything until Ctrl-C (or SIGTERM); returns the exit status. Raises ConfigError
    for a taken port or a REDIS_URL and prefix another `relay dev` already uses."""
    host = settings.api_host
    api = choose_port(
        host,
        asked=settings.api_port if "RELAY_API_PORT" in settings.given else None,
        default=settings.api_port,
        flag="RELAY_API_PORT",
    )
    simulator = choose_port(
        "127.0.0.1", asked=simulator_port, default=DEFAULT_SIMULATOR_PORT, flag="--simulator-port"
    )
    receiver = choose_port(
        "127.0.0.1", asked=receiver_port, default=DEFAULT_RECEIVER_PORT, flag="--receiver-port"
    )
    if settings.redis_url:
        _refuse_shared_prefix(settings)
    schedule = (
        ",".join(f"{delay_s:g}" for delay_s in settings.retry_schedule_s)
        if "RELAY_RETRY_SCHEDULE" in settings.given
        else DEV_RETRY_SCHEDULE
    )
    embedded = not settings.redis_url
    with contextlib.ExitStack() as stack:
        redis_url = settings.redis_url or stack.enter_context(embedded_redis())
        check_redis(redis_url)
        if settings.admin_tokens:
            settings.require_admin_tokens()  # a weak token fails here, not in every child
        token = settings.admin_tokens[0] if settings.admin_tokens else secrets.token_urlsafe(24)
        settings = settings.replace(
            redis_url=redis_url, allow_private_targets=True, api_port=api.number
        )
        simulator_url = f"http://127.0.0.1:{simulator.number}"
        receiver_url = f"http://127.0.0.1:{receiver.number}/"
        secret = asyncio.run(
            seed_demo(settings, simulator_url=simulator_url, receiver_url=receiver_url)
        )
        env = {
            "REDIS_URL": redis_url,
            "RELAY_KEY_PREFIX": settings.key_prefix,
            "RELAY_ADMIN_TOKEN": ",".join(settings.admin_tokens or (token,)),
            "RELAY_API_PORT": str(api.number),
            "RELAY_ALLOW_PRIVATE_TARGETS": "true",
            "RELAY_ALLOW_WEAK_TOKENS": "true" if settings.allow_weak_tokens else "false",
            "RELAY_RETRY_SCHEDULE": schedule,
            "RELAY_DEMO_SECRET": secret,
            "RELAY_LOG_LEVEL": settings.log_level if verbose else "WARNING",
        }
        python = sys.executable
        children = [
            ChildSpec(
                "simulator",
                [
                    python,
                    "-m",
                    "workers.cli",
                    "simulate",
                    "--port",
                    str(simulator.number),
                    "--rate",
                    str(rate),
                    "--account",
                    f"{DEMO_USERNAME}:{DEMO_PASSWORD}",
                ],
                env,
            ),
            ChildSpec(
                "demo-receiver",
                [python, "-m", "workers.cli", "demo-receiver", "--port", str(receiver.number)],
                env,
            ),
            *(role_spec(role, env) for role in ROLES),
        ]
        api_url = f"http://{host}:{api.number}"
        state = DevState(
            pid=os.getpid(),
            started_at=time.time(),
            redis_url=redis_url,
            key_prefix=settings.key_prefix,
            api_url=api_url,
            token=token,
            simulator_url=simulator_url,
            receiver_url=receiver_url,
        )
        state_path = stack.enter_context(published(state, settings.runtime_dir))
        if not verbose:
            stack.enter_context(human_stderr())
        _print_banner(
            state,
            embedded=embedded,
            ports={"admin API": api, "MC5 simulator": simulator, "demo receiver": receiver},
            schedule=schedule,
            state_path=str(state_path),
        )
        code, asked_at = _supervise(children, grace_s=settings.delivery_timeout_s + 5)
    # After the embedded Redis has stopped too: the figure is the whole stop.
    took = f" in {time.monotonic() - asked_at:.1f} s" if asked_at is not None else ""
    print(f"stopped{took}", flush=True)
    return code


def _refuse_shared_prefix(settings: Settings) -> None:
    for other in running_devs(settings.runtime_dir):
        if (other.state.redis_url, other.state.key_prefix) == (
            settings.redis_url,
            settings.key_prefix,
        ):
            raise ConfigError(
                f"relay dev (pid {other.state.pid}) already uses REDIS_URL="
                f"{redact_url(other.state.redis_url)} with RELAY_KEY_PREFIX="
                f"{other.state.key_prefix}: set another RELAY_KEY_PREFIX, or unset REDIS_URL "
                "for an embedded Redis of its own"
            )


def _supervise(children: list[ChildSpec], *, grace_s: float) -> tuple[int, float | None]:
    """Run the children until SIGINT/SIGTERM, saying when the stop begins; returns the exit
    status and when the stop was asked for (time.monotonic)."""
    supervisor = Supervisor(children, grace_s=grace_s)
    asked_at: list[float] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if not asked_at:
            asked_at.append(time.monotonic())
            print("\nstopping… (every role finishes what it is doing)", flush=True)
        supervisor.request_stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = supervisor.run(handle_signals=False)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return code, asked_at[0] if asked_at else None


def _print_banner(
    state: DevState,
    *,
    embedded: bool,
    ports: Mapping[str, Port],
    schedule: str,
    state_path: str,
) -> None:
    api = state.api_url
    redis_note = "embedded" if embedded else "from REDIS_URL"
    moved = [
        f"  note: port {port.moved_from} was taken, so the {name} is on {port.number}"
        for name, port in ports.items()
        if port.moved_from is not None
    ]
    retries = ", ".join(schedule.split(","))
    print(
        f"""
relay dev is starting (Ctrl-C stops everything)
  admin API      {api}   (OpenAPI: {api}/openapi.yaml)
  web console    {api}/ui/   (log in with the admin token)
  admin token    {state.token}
  Redis          {redact_url(state.redis_url)}   ({redis_note}, key prefix {state.key_prefix})
  MC5 simulator  {state.simulator_url}   (source {DEMO_USERNAME})
  demo receiver  {state.receiver_url}   (subscribed; prints each verified webhook below)
  retries        after {retries} s (RELAY_RETRY_SCHEDULE)
{chr(10).join(moved)}
In another shell, `relay status` finds this dev by itself, and
  eval "$(.venv/bin/relay dev --env)"
sets RELAY_API, TOKEN, REDIS_URL, RELAY_KEY_PREFIX, SIMULATOR_URL and RECEIVER_URL
(all written to {state_path}). Try:
  curl -s -H "Authorization: Bearer $TOKEN" "$RELAY_API/v1/events?limit=3"
""",
        flush=True,
    )


def env_lines(state: DevState) -> str:
    """Shell `export` lines for a running dev (`relay dev --env`)."""
    values = {
        "RELAY_API": state.api_url,
        "TOKEN": state.token,
        "REDIS_URL": state.redis_url,
        "RELAY_KEY_PREFIX": state.key_prefix,
        "SIMULATOR_URL": state.simulator_url,
        "RECEIVER_URL": state.receiver_url.rstrip("/"),
    }
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in values.items())
