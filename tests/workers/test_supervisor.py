from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from tests.support import wait_until_sync
from workers.supervisor import ChildSpec, Supervisor, dispatcher_count, retry_worker_count


def test_crashed_child_is_restarted_and_all_stop_on_request(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    crasher = ChildSpec(
        "crasher",
        [sys.executable, "-c", f"open({str(starts)!r}, 'a').write('x'); raise SystemExit(1)"],
    )
    sleeper = ChildSpec("sleeper", [sys.executable, "-c", "import signal; signal.pause()"])
    supervisor = Supervisor([crasher, sleeper], grace_s=5)
    thread = threading.Thread(target=lambda: supervisor.run(handle_signals=False))
    thread.start()
    wait_until_sync(
        lambda: starts.exists() and len(starts.read_text()) >= 2,
        timeout_s=15,
        what="the crashed child started a second time",
    )
    stop_requested = time.monotonic()
    supervisor.request_stop()
    thread.join(timeout=15)
    assert not thread.is_alive()
    assert len(starts.read_text()) >= 2
    assert time.monotonic() - stop_requested < 10  # the sleeper got SIGTERM, not the grace kill


def test_relay_run_starts_a_retry_worker_per_two_cores_from_one_to_four() -> None:
    counts = {cpus: retry_worker_count(cpus) for cpus in (None, 1, 2, 3, 4, 8, 64)}
    assert counts == {None: 1, 1: 1, 2: 1, 3: 1, 4: 2, 8: 4, 64: 4}


def test_relay_run_starts_a_dispatcher_per_core_from_one_to_four() -> None:
    counts = {cpus: dispatcher_count(cpus) for cpus in (None, 1, 2, 3, 4, 8, 64)}
    assert counts == {None: 1, 1: 1, 2: 2, 3: 3, 4: 4, 8: 4, 64: 4}
