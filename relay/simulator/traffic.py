"""A background generator adding realistic messages at a steady rate, for demos and benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from relay.core.errors import InvalidInput
from relay.simulator.simulator import Simulator

log = logging.getLogger("relay.simulator.traffic")
MAX_RATE = 100_000.0
# Below this a tick adds a batch instead of sleeping per message: sleeps that short are noise.
_MIN_TICK_S = 0.005


class TrafficGenerator:
    """Adds a mix of incoming, outgoing and reply messages, spread round-robin over accounts.

    Paced by elapsed time since start (not a sleep per message), so the rate stays accurate
    at hundreds per second. `start` and `stop` must run on the loop serving the simulator."""

    def __init__(
        self, simulator: Simulator, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._simulator = simulator
        self._monotonic = monotonic
        self._task: asyncio.Task[None] | None = None
        self.rate = 0.0
        self.usernames: tuple[str, ...] = ()
        self.produced = 0  # messages added since the generator was created

    def start(self, rate: float, usernames: Sequence[str] | None = None) -> None:
        """(Re)start at `rate` messages per second over `usernames` (default: every account);
        rate 0 stops. Raises InvalidInput or NotFound and leaves the generator as it was."""
        if not 0 <= rate <= MAX_RATE:
            raise InvalidInput(f"rate must be from 0 to {MAX_RATE:g}", field="rate")
        chosen = tuple(usernames) if usernames is not None else tuple(self._simulator.usernames())
        for username in chosen:
            self._simulator.resolve_username(username)
        if rate > 0 and not chosen:
            raise InvalidInput("traffic needs at least one account", field="usernames")
        self._cancel()
        self.rate, self.usernames = rate, chosen
        if rate > 0:
            self._task = asyncio.get_running_loop().create_task(self._run(rate, chosen))

    async def stop(self) -> None:
        """Stop generating and wait for the background task to end."""
        task = self._task
        self._cancel()
        self.rate = 0.0
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def describe(self) -> dict[str, object]:
        """The current rate, accounts and messages produced so far."""
        return {"rate": self.rate, "usernames": list(self.usernames), "produced": self.produced}

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self, rate: float, usernames: tuple[str, ...]) -> None:
        started = self._monotonic()
        added = 0
        while True:
            due = int((self._monotonic() - started) * rate) - added
            try:
                for _ in range(due):
                    username = usernames[self.produced % len(usernames)]
                    self._simulator.add_generated(username, count=1, kind="mix")
                    self.produced += 1
            except Exception:  # the generator must outlive one bad message
                log.exception("traffic generator could not add a message")
            added += due
            wait_s = (added + 1) / rate - (self._monotonic() - started)
            await asyncio.sleep(max(wait_s, _MIN_TICK_S))
