"""`relay dev`'s pure parts: its log lines for people, its state files, its shell variables."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

from workers.dev import env_lines
from workers.dev_output import human_line
from workers.dev_state import DevState, published, running_devs

STATE = DevState(
    pid=os.getpid(),
    started_at=1.0,
    redis_url="unix:///tmp/r/redis.sock",
    key_prefix="relay:",
    api_url="http://127.0.0.1:8080",
    token="tok en'",
    simulator_url="http://127.0.0.1:8090",
    receiver_url="http://127.0.0.1:8070/",
)


def test_a_json_warning_becomes_one_short_line_without_nulls_or_traceback() -> None:
    entry = {
        "time": "2026-01-01T00:00:00.000Z",
        "level": "warning",
        "role": "worker",
        "logger": "relay.retry",
        "event": "delivery dead-lettered",
        "source_id": None,
        "subscription_id": "sub_1",
        "error": "x" * 400,
        "traceback": "Traceback (most recent call last):\n  ...",
    }
    line = human_line(json.dumps(entry))
    assert line.startswith("[warning] worker: delivery dead-lettered  (subscription_id=sub_1 ")
    assert "source_id" not in line and "Traceback" not in line and "\n" not in line
    assert len(line) < 200 and line.endswith("…)")


def test_a_line_that_is_not_a_json_log_passes_through() -> None:
    assert human_line("plain text from a child") == "plain text from a child"
    assert human_line("[1, 2]") == "[1, 2]"


def test_a_published_state_is_found_while_its_process_lives(tmp_path: Path) -> None:
    with published(STATE, str(tmp_path)) as path:
        assert path.stat().st_mode & 0o777 == 0o600  # it holds the admin token
        assert [found.state for found in running_devs(str(tmp_path))] == [STATE]
    assert running_devs(str(tmp_path)) == []


def test_the_state_of_a_dead_process_is_ignored_and_removed(tmp_path: Path) -> None:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = dataclasses.replace(STATE, pid=int(child.stdout))  # exited, and reaped
    with published(dead, str(tmp_path)) as path:
        assert running_devs(str(tmp_path)) == []
        assert not path.exists()


def test_env_lines_are_shell_quoted_exports() -> None:
    script = env_lines(STATE) + '\nprintf "%s|%s|%s" "$TOKEN" "$RELAY_API" "$RECEIVER_URL"'
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout == "tok en'|http://127.0.0.1:8080|http://127.0.0.1:8070"
