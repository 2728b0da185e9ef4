"""Where a running `relay dev` says what it runs, so other commands find it without flags.

Each `relay dev` writes `dev-<pid>.json` (mode 0600: it holds the dev admin token) into a
per-user directory, `$XDG_RUNTIME_DIR/relay` or else `<tmp>/relay-<uid>` (mode 0700), and
removes it when it stops; a file whose process is gone is ignored and cleaned up. The same
idea as Jupyter's runtime files: `relay status` and `relay dev --env` read them
(`newest_dev`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from relay.core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class DevState:
    """What one running `relay dev` serves."""

    pid: int
    started_at: float
    redis_url: str
    key_prefix: str
    api_url: str
    token: str
    simulator_url: str
    receiver_url: str


@dataclass(frozen=True, slots=True)
class FoundDev:
    state: DevState
    path: Path
    running: int = 1  # how many devs of this user were running when it was found


def state_dir(runtime_dir: str | None) -> Path:
    """The per-user directory of dev state files (`runtime_dir` is XDG_RUNTIME_DIR)."""
    if runtime_dir:
        return Path(runtime_dir) / "relay"
    return Path(tempfile.gettempdir()) / f"relay-{os.getuid()}"


@contextlib.contextmanager
def published(state: DevState, runtime_dir: str | None) -> Iterator[Path]:
    """Write `state` for the duration of the block; yields the file's path."""
    directory = state_dir(runtime_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / f"dev-{state.pid}.json"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(asdict(state), file, indent=2)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def running_devs(runtime_dir: str | None) -> list[FoundDev]:
    """Every live `relay dev` of this user, newest first (stale files are removed)."""
    found = []
    for path in state_dir(runtime_dir).glob("dev-*.json"):
        try:
            state = DevState(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if _is_alive(state.pid):
            found.append(FoundDev(state, path))
        else:
            path.unlink(missing_ok=True)
    return sorted(found, key=lambda dev: dev.state.started_at, reverse=True)


def newest_dev(runtime_dir: str | None) -> FoundDev:
    """The newest running `relay dev` of this user, for commands that default to it when
    REDIS_URL is unset; ConfigError (naming REDIS_URL and the directory) when none runs."""
    found = running_devs(runtime_dir)
    if not found:
        raise ConfigError(
            "REDIS_URL is required (e.g. redis://127.0.0.1:6379/0), and no running relay dev "
            f"was found in {state_dir(runtime_dir)}"
        )
    return dataclasses.replace(found[0], running=len(found))


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
