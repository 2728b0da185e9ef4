"""The overview's deliveries-per-minute chart, laid out here and drawn as inline SVG.

Pure arithmetic over the per-minute attempt counters: one stacked bar per minute (delivered
at the bottom, failed on top), a y axis rounded up to a readable maximum.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from relay.core.models import MinuteCounts

WIDTH = 600
HEIGHT = 180
LEFT = 40  # room for the y labels
BOTTOM = 22  # room for the x labels
TOP = 8
_NICE = (1, 2, 5)


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    ok_y: float
    ok_height: float
    failed_y: float
    failed_height: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    bars: tuple[Bar, ...]
    y_max: int
    total_ok: int
    total_failed: int
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    baseline: int = HEIGHT - BOTTOM


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is at least `value` (and >= 1)."""
    scale = 1
    while True:
        for step in _NICE:
            if step * scale >= value:
                return step * scale
        scale *= 10


def minutes_ending(now: float, *, count: int = 60) -> list[int]:
    """The epoch minutes of the last `count` minutes, the current one last."""
    current = int(now // 60)
    return list(range(current - count + 1, current + 1))


def lay_out(counts: Sequence[MinuteCounts]) -> Chart:
    """Bars for each minute, scaled to the busiest one."""
    y_max = nice_ceiling(max((c.ok + c.failed for c in counts), default=0))
    plot_height = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) / max(1, len(counts))
    bars = []
    for i, c in enumerate(counts):
        ok_height = plot_height * c.ok / y_max
        failed_height = plot_height * c.failed / y_max
        ok_y = HEIGHT - BOTTOM - ok_height
        clock = time.strftime("%H:%M", time.gmtime(c.minute * 60))
        bars.append(
            Bar(
                x=round(LEFT + i * slot + slot * 0.1, 2),
                width=round(slot * 0.8, 2),
                ok_y=round(ok_y, 2),
                ok_height=round(ok_height, 2),
                failed_y=round(ok_y - failed_height, 2),
                failed_height=round(failed_height, 2),
                label=f"{clock} UTC: {c.ok} delivered, {c.failed} failed",
            )
        )
    return Chart(
        bars=tuple(bars),
        y_max=y_max,
        total_ok=sum(c.ok for c in counts),
        total_failed=sum(c.failed for c in counts),
    )
