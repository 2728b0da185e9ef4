"""Child processes that stay with their parent: own session, gone when the parent dies."""

from __future__ import annotations

import ctypes
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Run in the child before exec (`preexec_fn`): ask Linux to send SIGTERM when the
    parent dies, even by `kill -9`. Elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
