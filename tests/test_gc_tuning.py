"""The roles' garbage-collector settings, in a process of their own (they are process-wide)."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import gc, json
from relay import gc_tuning
import relay.delivery.dispatcher  # a role's code, imported before tuning as `relay` does
before = gc.get_threshold()
gc_tuning.tune()
young = [[] for _ in range(50)]  # new objects are tracked in the young generation, not frozen
print(json.dumps({
    "before": before, "after": gc.get_threshold(), "frozen": gc.get_freeze_count(),
    "young": gc.get_count()[0],
}))
"""


def test_tune_freezes_start_up_and_raises_only_the_young_threshold() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    probe = json.loads(out)
    assert probe["before"] == [700, 10, 10]
    assert probe["after"] == [10_000, 10, 10]
    assert probe["frozen"] > 10_000  # the modules' objects: full collections skip them
    assert probe["young"] >= 50
