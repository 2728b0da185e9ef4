"""The cyclic garbage collector's settings for the roles' long-running processes.

CPython collects its youngest generation every 700 net allocations of container objects,
the middle one every 10 of those and everything every 10 of those (when enough has piled up
since the last time). A delivery allocates some 30 such objects (its task, coroutines,
futures, the attempt and its records) that live as long as its POST, so under load the
defaults ran a young collection every ~25 deliveries and a full one every ~2,000, walking
every object the process holds, the modules' included. Measured with `gc.callbacks` on a
stepped dispatcher (BENCHMARKS.md, "Redis commands and garbage collection per delivery"):
18-28 us of collection per delivery with 10 subscriptions and 48-65 us with 10,000, up to a
third of the dispatcher's CPU.

`tune()` freezes what is alive once a role has imported its code (modules, classes,
settings: never garbage), so full collections skip it, and raises the young generation's
threshold to 10,000 allocations, a few hundred deliveries: 4-7 us per delivery at either
size. Cyclic garbage still goes, only in larger batches; reference counting frees the rest
at once, as always.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # CPython's default is 700


def tune() -> None:
    """Call once per process, when start-up has imported what it needs and before the work;
    the older generations keep their default thresholds (10 and 10)."""
    gc.collect()  # start-up's garbage goes now, not into the frozen set
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)
