"""The `relay` command: the roles, `run`, `dev`, `simulate`, `status` and admin commands.

One subcommand per role, plus `run` (all roles), `dev`, `simulate` and `status`, and the
admin commands over the REST API (workers/admin_cli.py).

Every long-running command logs JSON lines to stderr and stops cleanly on SIGTERM/SIGINT.
Exit codes: 0 clean stop, 2 bad configuration or usage, 3 Redis unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence

from relay import __version__, gc_tuning
from relay.core.errors import ConfigError, RedisUnavailable
from relay.event_loops import loop_factory, loop_name
from relay.observability.logs import configure_logging
from relay.observability.telemetry import HeartbeatPublisher
from relay.settings import Settings
from relay.store.connection import check_redis, require_safe_eviction_policy
from relay.store.keys import Keys
from workers.admin_cli import add_admin_commands
from workers.dev_state import newest_dev
from workers.supervisor import ROLES

log = logging.getLogger("relay.cli")

EXIT_CONFIG = 2
EXIT_REDIS = 3


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `relay` console script; exits with the command's status."""
    args = _parser().parse_args(argv)
    try:
        code = args.handler(args)
    except ConfigError as exc:
        print(f"relay: configuration error: {exc}", file=sys.stderr)
        code = EXIT_CONFIG
    except RedisUnavailable as exc:
        print(f"relay: {exc}", file=sys.stderr)
        code = EXIT_REDIS
    except KeyboardInterrupt:
        code = 0
    sys.exit(code)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relay", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"relay {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("run", help="all roles in one supervised process tree").set_defaults(
        handler=_run
    )
    for role, text in ROLES.items():
        commands.add_parser(role, help=text).set_defaults(handler=_role, role=role)
    dev = commands.add_parser("dev", help="everything, with embedded Redis, simulator and receiver")
    dev.add_argument("--rate", type=float, default=0.5, help="simulated messages per second")
    dev.add_argument(
        "--simulator-port", type=int, help="default 8090, or a free one if taken; 0: any free"
    )
    dev.add_argument(
        "--receiver-port", type=int, help="default 8070, or a free one if taken; 0: any free"
    )
    dev.add_argument(
        "--env",
        action="store_true",
        help="print `export` lines for the running relay dev (URLs, token, Redis) and exit",
    )
    dev.add_argument(
        "--verbose",
        action="store_true",
        help="the roles' JSON logs at RELAY_LOG_LEVEL (default: warnings and errors only)",
    )
    dev.set_defaults(handler=_dev)
    sim = commands.add_parser("simulate", help="the MC5 upstream simulator alone")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8090)
    sim.add_argument("--rate", type=float, default=0.0, help="generated messages per second")
    sim.add_argument("--account", action="append", default=[], metavar="USER:PASSWORD")
    sim.set_defaults(handler=_simulate)
    status = commands.add_parser("status", help="sources, subscriptions, queues and live roles")
    status.add_argument("--json", action="store_true", help="one JSON document, for scripts")
    status.set_defaults(handler=_status)
    receiver = commands.add_parser("demo-receiver", help="print and verify received webhooks")
    receiver.add_argument("--host", default="127.0.0.1")
    receiver.add_argument("--port", type=int, default=8070)
    receiver.set_defaults(handler=_demo_receiver)
    add_admin_commands(commands)
    return parser


def _role(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    configure_logging(role=args.role, level=settings.log_level)
    redis_url = settings.require_redis_url()
    if args.role == "api":
        settings.require_admin_tokens()
    check_redis(redis_url)
    require_safe_eviction_policy(redis_url, allow_evicting=settings.allow_evicting_redis)
    # Until the role installs its own handlers, SIGTERM still ends it cleanly (heartbeat
    # withdrawn below), so readiness never reports a role that was merely stopped early.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    heartbeat = HeartbeatPublisher(
        redis_url=redis_url,
        keys=Keys(settings.key_prefix),
        role=args.role,
        allow_evicting_redis=settings.allow_evicting_redis,
    )
    heartbeat.start()
    try:
        if args.role == "worker":
            from workers.retry_worker import run_retry_worker

            gc_tuning.tune()
            run_retry_worker(settings)
            return 0
        role = _role_coroutine(args.role, settings)  # imports the role's code
        gc_tuning.tune()
        return _run_until_signalled(role, event_loop=settings.event_loop)
    finally:
        heartbeat.stop()


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _role_coroutine(role: str, settings: Settings) -> Callable[[asyncio.Event], Awaitable[None]]:
    if role == "api":
        from relay.api.app import serve_api

        return lambda stop: serve_api(settings, stop=stop)
    if role == "poller":
        from workers.poller import run_poller

        return lambda stop: run_poller(settings, stop=stop)
    from workers.dispatcher import run_dispatcher

    return lambda stop: run_dispatcher(settings, stop=stop)


def _run_until_signalled(
    start: Callable[[asyncio.Event], Awaitable[None]], *, event_loop: str = "auto"
) -> int:
    """Run `start(stop)` in a fresh event loop (relay.event_loops: uvloop by default); SIGTERM
    and SIGINT set `stop`."""

    async def body() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        log.debug("event loop", extra={"event_loop": loop_name(loop)})
        await start(stop)

    with asyncio.Runner(loop_factory=loop_factory(event_loop)) as runner:
        runner.run(body())
    return 0


def _run(args: argparse.Namespace) -> int:
    from workers.supervisor import run_all

    settings = Settings.from_env()
    configure_logging(role="supervisor", level=settings.log_level)
    return run_all(settings)


def _dev(args: argparse.Namespace) -> int:
    from workers.dev import env_lines, run_dev

    if args.env:
        print(env_lines(newest_dev(Settings.from_env().runtime_dir).state))
        return 0
    settings = Settings.from_env()
    configure_logging(role="dev", level=settings.log_level if args.verbose else "WARNING")
    return run_dev(
        settings,
        rate=args.rate,
        simulator_port=args.simulator_port,
        receiver_port=args.receiver_port,
        verbose=args.verbose,
    )


def _simulate(args: argparse.Namespace) -> int:
    from relay.simulator.app import SimulatorConfig, serve

    configure_logging(role="simulator", level=Settings.from_env().log_level)
    config = SimulatorConfig()
    if args.account:
        config.accounts = dict(_account(a) for a in args.account)
    log.info("simulator listening", extra={"url": f"http://{args.host}:{args.port}"})
    return _run_until_signalled(
        lambda stop: _serve_until(
            serve(host=args.host, port=args.port, config=config, traffic_rate=args.rate), stop
        )
    )


def _status(args: argparse.Namespace) -> int:
    from relay.observability.status_report import read_status, render_json, render_text

    settings = Settings.from_env()
    if not settings.redis_url:
        found = newest_dev(settings.runtime_dir)
        settings = settings.replace(
            redis_url=found.state.redis_url, key_prefix=found.state.key_prefix
        )
        others = f"; the newest of {found.running}" if found.running > 1 else ""
        print(
            f"relay status: reading the relay dev of pid {found.state.pid} "
            f"(REDIS_URL unset; found {found.path}{others})",
            file=sys.stderr,
        )
    status = read_status(settings)
    print(render_json(status) if args.json else render_text(status))
    return 0


def _demo_receiver(args: argparse.Namespace) -> int:
    from relay.demo.receiver import serve_receiver

    settings = Settings.from_env()
    return _run_until_signalled(
        lambda stop: serve_receiver(host=args.host, port=args.port, settings=settings, stop=stop)
    )


def _account(raw: str) -> tuple[str, str]:
    username, sep, password = raw.partition(":")
    if not sep or not username:
        raise ConfigError(f"--account must look like USER:PASSWORD, got {raw!r}")
    return username, password


async def _serve_until(server: Awaitable[None], stop: asyncio.Event) -> None:
    task = asyncio.ensure_future(server)
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    for pending in (task, stopper):
        pending.cancel()
    await asyncio.gather(task, stopper, return_exceptions=True)


if __name__ == "__main__":
    main()
