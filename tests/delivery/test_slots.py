"""A subscription's slots: free ones are taken at once, a release goes to the oldest live
waiter, a timed-out or cancelled wait never keeps or loses a slot."""

from __future__ import annotations

import asyncio

import pytest

from relay.delivery.slots import Slots


async def test_free_slots_are_taken_at_once_and_then_a_take_waits() -> None:
    slots = Slots(2)
    assert slots.try_take() and slots.try_take()
    assert not slots.try_take()
    assert await slots.take(0.01) is False  # none came in time
    slots.release()
    assert await slots.take(0.01) is True
    assert slots.free == 0


async def test_a_release_hands_the_slot_to_the_oldest_waiter() -> None:
    slots = Slots(1)
    assert slots.try_take()
    order: list[int] = []

    async def wait(n: int) -> None:
        assert await slots.take(5.0)
        order.append(n)

    waiters = [asyncio.create_task(wait(n)) for n in range(3)]
    await asyncio.sleep(0)  # all three are queued
    for _ in range(3):
        slots.release()
        await asyncio.sleep(0)
    await asyncio.gather(*waiters)
    assert order == [0, 1, 2]
    assert slots.free == 0  # each waiter still holds the slot it was handed


async def test_timed_out_waiters_are_skipped_and_the_slot_is_kept_free() -> None:
    slots = Slots(1)
    assert slots.try_take()
    assert await slots.take(0.01) is False
    slots.release()  # the timed-out waiter is still queued: skipped, the slot becomes free
    assert slots.free == 1
    assert slots.try_take()


async def test_a_cancelled_wait_gives_back_a_slot_it_was_handed() -> None:
    slots = Slots(1)
    assert slots.try_take()
    waiter = asyncio.create_task(slots.take(5.0))
    await asyncio.sleep(0)
    slots.release()  # handed to the waiter ...
    waiter.cancel()  # ... which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert slots.free == 1

    assert slots.try_take()
    cancelled = asyncio.create_task(slots.take(5.0))
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    slots.release()  # nobody live is waiting: the slot is free again
    assert slots.free == 1
