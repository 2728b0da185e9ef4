"""The event loop every role runs on: uvloop where it is installed, else asyncio's own.

`RELAY_EVENT_LOOP` chooses: `auto` (the default) takes uvloop when it can be imported,
`uvloop` requires it, `asyncio` keeps the standard loop (to rule the loop out while
debugging). uvloop runs the same code with its loop and transports in C; on the dispatcher's
hot path (many small POSTs) it took a share of the CPU per delivery (BENCHMARKS.md, "Event
loop").
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable

from relay.core.errors import ConfigError

CHOICES = ("auto", "asyncio", "uvloop")

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory(choice: str) -> LoopFactory:
    """The factory of new loops for `choice` (one of CHOICES); ConfigError when `uvloop` is
    asked for and not installed."""
    if choice == "asyncio" or (choice == "auto" and not uvloop_available()):
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError:
        raise ConfigError("RELAY_EVENT_LOOP=uvloop but uvloop is not installed") from None
    return uvloop.new_event_loop


def uvloop_available() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """`uvloop` or `asyncio`: which loop a role runs on, for its start log line."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
