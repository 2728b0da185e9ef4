"""What `relay dev` prints for people: each JSON log line of the roles as one short line.

Every child inherits the dev process's stderr; `human_stderr` makes that a pipe read by a
thread that rewrites each JSON line with `human_line` (other lines pass through), so the
roles themselves keep logging JSON, as `relay dev --verbose` shows.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from collections.abc import Iterator
from typing import IO, Any

_HIDDEN_LOG_KEYS = ("time", "level", "role", "logger", "event", "traceback")
_MAX_VALUE_CHARS = 100


def human_line(raw: str) -> str:
    """One JSON log line as `[level] role: event  (key=value ...)`; anything else unchanged.
    The traceback is left out (`--verbose` shows it), long values are cut."""
    try:
        entry = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(entry, dict) or "event" not in entry:
        return raw
    context = " ".join(
        f"{key}={_short(value)}"
        for key, value in entry.items()
        if key not in _HIDDEN_LOG_KEYS and value is not None
    )
    line = f"[{entry.get('level', 'log')}] {entry.get('role') or '-'}: {entry['event']}"
    return f"{line}  ({context})" if context else line


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 1] + "…"
    return json.dumps(text, ensure_ascii=False) if " " in text or not text else text


@contextlib.contextmanager
def human_stderr() -> Iterator[None]:
    """Send this process's stderr, and so every child's, through `human_line`."""
    read_fd, write_fd = os.pipe()
    saved = os.dup(2)
    out = os.fdopen(saved, "w", buffering=1, closefd=False)
    sys.stderr.flush()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    thread = threading.Thread(target=_pump, args=(os.fdopen(read_fd), out), daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes this process's write end: the pump ends with the children
        thread.join(timeout=2)
        out.close()
        os.close(saved)


def _pump(lines: IO[str], out: IO[str]) -> None:
    with lines:
        for raw in lines:
            out.write(human_line(raw.rstrip("\n")) + "\n")
