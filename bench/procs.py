"""Child processes of a benchmark run: started with their own log file, stopped by pid only."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

PYTHON = sys.executable
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Child:
    """One subprocess; stdout and stderr go to `log_path`."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path = ROOT,
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        self.process = subprocess.Popen(
            list(argv), stdout=self._log, stderr=subprocess.STDOUT, env=full_env, cwd=cwd
        )
        self.peak_rss_bytes: int | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def is_alive(self) -> bool:
        return self.process.poll() is None

    def wait(self, timeout_s: float) -> bool:
        """Wait for the process to exit by itself; False if it is still running after that."""
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    def cpu_seconds(self) -> float | None:
        """User + system CPU time the process has used so far (None once it is gone)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def read_peak_rss(self) -> int | None:
        """The process's peak resident set (VmHWM) so far, in bytes."""
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_rss_bytes = int(line.split()[1]) * 1024
        return self.peak_rss_bytes

    def stop(self, *, timeout_s: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout_s`; records peak RSS first. Returns the code."""
        if self.is_alive():
            self.read_peak_rss()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
        return self.process.returncode

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def python_child(
    name: str, module: str, *args: str, log_dir: Path, env: Mapping[str, str] | None = None
) -> Child:
    """`python -m module args...` as a child."""
    return Child(name, [PYTHON, "-m", module, *args], log_dir=log_dir, env=env)


def wait_for_port(port: int, child: Child, *, timeout_s: float = 20.0) -> None:
    """Return once 127.0.0.1:port accepts connections; raise if the child dies or time is up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child.is_alive():
            raise RuntimeError(f"{child.name} exited early:\n{child.tail()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{child.name} did not listen on port {port} within {timeout_s} s")
