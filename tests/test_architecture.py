"""The dependency direction (workers -> relay -> relay.core) and the purity of relay.core."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IO_PACKAGES = {"httpx", "redis", "rq", "starlette", "uvicorn", "aiohttp", "prometheus_client"}


def _imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_relay_never_imports_workers() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules("relay")
        for name in _imports(path)
        if name == "workers" or name.startswith("workers.")
    ]
    assert offenders == []


def test_core_imports_only_the_standard_library_and_itself() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules("relay/core")
        for name in _imports(path)
        if name.split(".")[0] in IO_PACKAGES
        or (name.startswith("relay") and not name.startswith("relay.core"))
    ]
    assert offenders == []


def test_only_settings_reads_the_environment() -> None:
    readers = [
        str(path.relative_to(ROOT))
        for package in ("relay", "workers")
        for path in _modules(package)
        if "os.environ" in path.read_text() or "os.getenv" in path.read_text()
    ]
    assert sorted(readers) == ["relay/settings.py", "workers/supervisor.py"]
