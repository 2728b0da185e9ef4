"""A subscription's delivery slots in one dispatcher: a counting semaphore with a timed take.

`asyncio.Semaphore` would do, but on the hot path it costs: `locked()` scans the waiters,
and a wait with a timeout (`asyncio.wait_for`) wraps every waiting delivery in a task of its
own. Here a take is O(1) and a timed wait is one future and one timer. A released slot goes
straight to the oldest live waiter (FIFO, so the first deliveries read are sent first).
"""

from __future__ import annotations

import asyncio
from collections import deque


class Slots:
    __slots__ = ("_free", "_waiters", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._free = size
        # Waiters still queued may be done (timed out, cancelled): release skips them. A live
        # waiter exists only while no slot is free (a release hands its slot to one first).
        self._waiters: deque[asyncio.Future[bool]] = deque()

    @property
    def free(self) -> int:
        return self._free

    def try_take(self) -> bool:
        """Take a slot if one is free, without waiting."""
        if self._free > 0:
            self._free -= 1
            return True
        return False

    async def take(self, timeout_s: float) -> bool:
        """Take a slot, waiting up to `timeout_s` for one; False if none came in time."""
        if self.try_take():
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(timeout_s, _expire, waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self.release()  # handed a slot just as it was cancelled: pass it on
            else:
                waiter.cancel()
            raise
        finally:
            timer.cancel()

    def release(self) -> None:
        """Give a slot back: to the oldest live waiter, else to the free count."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)
                return
        self._free += 1


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)
