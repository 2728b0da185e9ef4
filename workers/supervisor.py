"""`relay run`: start every role as a child process, restart crashed ones, stop all cleanly.

Children run in their own sessions, so a terminal's Ctrl-C reaches only the supervisor, which
then asks each child to stop with SIGTERM (in-flight deliveries finish or are handed back) and
kills whatever is still alive after the grace period. On Linux each child also gets SIGTERM
if the supervisor itself dies (`kill -9`), so no role outlives it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType

from relay.processes import die_with_parent
from relay.settings import Settings
from relay.store.connection import (
    check_redis,
    redis_persistence_enabled,
    require_safe_eviction_policy,
)

log = logging.getLogger("relay.supervisor")

# Every role `relay run` supervises, with the help text of its own subcommand.
ROLES = {
    "api": "the admin REST API",
    "poller": "poll the MC5 sources and record new messages",
    "dispatcher": "first delivery attempts",
    "worker": "the RQ retry worker (runs scheduled retries)",
}
RESTART_DELAY_MAX_S = 30.0
HEALTHY_AFTER_S = 60.0
MAX_RETRY_WORKERS = 4
MAX_DISPATCHERS = 4


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How to start one child: a name for logs, its argv and extra environment."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)


def role_spec(role: str, env: Mapping[str, str] | None = None) -> ChildSpec:
    """The child that runs one `relay <role>` with this interpreter."""
    return ChildSpec(role, [sys.executable, "-m", "workers.cli", role], dict(env or {}))


def retry_worker_count(cpus: int | None) -> int:
    """Retry workers for `relay run`: one per two cores, 1 to MAX_RETRY_WORKERS. A worker runs
    one job at a time, so a second one keeps retries moving while a hanging subscriber holds
    a worker; more than the cores would only contend with the other roles."""
    return max(1, min(MAX_RETRY_WORKERS, (cpus or 1) // 2))


def dispatcher_count(cpus: int | None) -> int:
    """Dispatchers for `relay run`: one per core, 1 to MAX_DISPATCHERS. A dispatcher is one
    event loop, bound by its CPU per delivery: on 2 cores a second one took a one-account
    backlog from 3,590 to 5,009 deliveries/s end to end (BENCHMARKS.md, "One account")."""
    return max(1, min(MAX_DISPATCHERS, cpus or 1))


def run_all(settings: Settings) -> int:
    """`relay run`: check Redis, then supervise every role until signalled (the poller creates
    the default source)."""
    redis_url = settings.require_redis_url()
    settings.require_admin_tokens()
    check_redis(redis_url)
    require_safe_eviction_policy(redis_url, allow_evicting=settings.allow_evicting_redis)
    if not redis_persistence_enabled(redis_url):
        log.warning(
            "Redis persistence is off: a Redis restart loses queued deliveries; "
            "run Redis with appendonly yes in production"
        )
    roles = [role_spec(role) for role in ROLES]
    roles += [
        dataclasses.replace(role_spec("dispatcher"), name=f"dispatcher-{n}")
        for n in range(2, dispatcher_count(os.cpu_count()) + 1)
    ]
    roles += [
        dataclasses.replace(role_spec("worker"), name=f"worker-{n}")
        for n in range(2, retry_worker_count(os.cpu_count()) + 1)
    ]
    return Supervisor(roles, grace_s=settings.delivery_timeout_s + 10).run()


class Supervisor:
    """Keeps a set of child processes running until SIGTERM/SIGINT, then stops them."""

    def __init__(
        self,
        children: Sequence[ChildSpec],
        *,
        grace_s: float = 25.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._specs = list(children)
        self._grace_s = grace_s
        self._clock = clock
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._started_at: dict[str, float] = {}
        self._restart_at: dict[str, float] = {}
        self._delay_s: dict[str, float] = {}
        self._stopping = False

    def request_stop(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        self._stopping = True

    def run(self, *, handle_signals: bool = True) -> int:
        """Block until signalled (or `request_stop`); returns 0 once every child has stopped."""
        signals = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()
        previous = {s: signal.signal(s, self.request_stop) for s in signals}
        try:
            for spec in self._specs:
                self._start(spec)
            while not self._stopping:
                self._watch()
                time.sleep(0.2)
        finally:
            self._stop_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return 0

    def _start(self, spec: ChildSpec) -> None:
        env = {**os.environ, **spec.env}
        process = subprocess.Popen(  # noqa: S603
            list(spec.argv), env=env, start_new_session=True, preexec_fn=die_with_parent
        )
        self._processes[spec.name] = process
        self._started_at[spec.name] = self._clock()
        log.info("started", extra={"child": spec.name, "pid": process.pid})

    def _watch(self) -> None:
        now = self._clock()
        for spec in self._specs:
            process = self._processes.get(spec.name)
            if process is not None and process.poll() is None:
                if now - self._started_at[spec.name] > HEALTHY_AFTER_S:
                    self._delay_s.pop(spec.name, None)
                continue
            if process is not None:
                delay = min(self._delay_s.get(spec.name, 0.5) * 2, RESTART_DELAY_MAX_S)
                self._delay_s[spec.name] = delay
                self._restart_at[spec.name] = now + delay
                del self._processes[spec.name]
                log.error(
                    "child exited; restarting",
                    extra={"child": spec.name, "exit_code": process.returncode, "delay_s": delay},
                )
            if now >= self._restart_at.get(spec.name, 0.0):
                self._start(spec)

    def _stop_all(self) -> None:
        live = {n: p for n, p in self._processes.items() if p.poll() is None}
        for process in live.values():
            process.send_signal(signal.SIGTERM)
        deadline = self._clock() + self._grace_s
        for name, process in live.items():
            try:
                process.wait(timeout=max(0.1, deadline - self._clock()))
            except subprocess.TimeoutExpired:
                log.error("child did not stop in time; killing", extra={"child": name})
                process.kill()
                process.wait()
        log.info("all children stopped")
