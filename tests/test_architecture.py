"""The layers: which package may import which, no import cycles, a pure core, one reader of
the environment, a tests tree that mirrors the package tree, and the README's map of it.

    workers -> api -> console -> web -> admin -> ingest, delivery -> observability -> store
            -> core (settings, event_loops, gc_tuning, processes and serving sit above core)
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IO_PACKAGES = {
    "httpx",
    "redis",
    "rq",
    "starlette",
    "uvicorn",
    "aiohttp",
    "httptools",
    "prometheus_client",
}
BASE = {
    "relay",
    "relay.core",
    "relay.settings",
    "relay.event_loops",
    "relay.gc_tuning",
    "relay.processes",
    "relay.serving",
}
# What each part of relay may import besides itself (the part of a module is the first two
# components of its name: relay.store.sources -> relay.store).
ALLOWED: dict[str, set[str]] = {
    "relay": set(),
    "relay.core": set(),
    "relay.settings": {"relay", "relay.core", "relay.event_loops"},
    "relay.event_loops": {"relay.core"},
    "relay.gc_tuning": set(),
    "relay.processes": set(),
    "relay.serving": set(),
    "relay.store": BASE,
    "relay.observability": BASE | {"relay.store"},
    "relay.ingest": BASE | {"relay.store", "relay.observability"},
    "relay.delivery": BASE | {"relay.store", "relay.observability"},
    "relay.admin": BASE | {"relay.store", "relay.observability", "relay.ingest", "relay.delivery"},
    "relay.web": BASE | {"relay.admin", "relay.observability"},
    "relay.console": BASE | {"relay.admin", "relay.web", "relay.observability"},
    "relay.api": BASE | {"relay.admin", "relay.web", "relay.console", "relay.observability"},
    "relay.simulator": BASE,
    "relay.demo": BASE | {"relay.store"},
    "relay.jobs": {"relay.delivery"},  # the dotted paths of jobs queued by relay 0.1
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, known: frozenset[str] = frozenset()) -> Iterator[str]:
    """Every module `path` imports, by absolute name. `from package import module` counts as
    importing the module only (of `known` modules), not the package's `__init__`."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = [f"{node.module}.{a.name}" for a in node.names]
            found = [name for name in submodules if name in known]
            yield from found
            if len(found) < len(submodules):
                yield node.module


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _part(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for package in ("relay", "workers") for p in _modules(package)}
    known = frozenset(paths)
    return {
        module: {name for name in _imports(path, known) if name in known} - {module}
        for module, path in paths.items()
    }


def test_every_part_of_relay_has_a_layer() -> None:
    parts = {_part(module) for module in _graph() if module.startswith("relay")}
    assert parts - set(ALLOWED) == set()


def test_each_layer_imports_only_the_layers_below_it() -> None:
    offenders = [
        f"{module} imports {name}"
        for module, imported in sorted(_graph().items())
        if module.startswith("relay")
        for name in sorted(imported)
        if _part(name) != _part(module) and _part(name) not in ALLOWED[_part(module)]
    ]
    assert offenders == []


def test_relay_never_imports_workers() -> None:
    offenders = [
        f"{module} imports {name}"
        for module, imported in _graph().items()
        if module.startswith("relay")
        for name in imported
        if name.startswith("workers")
    ]
    assert offenders == []


def test_there_is_no_import_cycle() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for name in sorted(graph[module]):
            if state.get(name) == 1:
                cycles.append([*path[path.index(name) :], name])
            elif name not in state:
                visit(name)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert cycles == []


def test_there_is_no_cycle_between_parts() -> None:
    parts: dict[str, set[str]] = {}
    for module, imported in _graph().items():
        parts.setdefault(_part(module), set()).update(
            _part(name) for name in imported if _part(name) != _part(module)
        )
    for part, below in parts.items():
        for other in below:
            assert part not in parts.get(other, set()), f"{part} <-> {other}"


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


def _packages() -> set[str]:
    return {p.parent.name for p in (ROOT / "relay").glob("*/__init__.py")}


def test_the_tests_tree_mirrors_the_package_tree() -> None:
    mirrored = {p.parent.name for p in (ROOT / "tests").glob("*/__init__.py")}
    assert _packages() | {"workers"} <= mirrored
    assert mirrored - _packages() - {"workers"} == set()


def test_the_readme_tree_lists_every_package_and_nothing_else() -> None:
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- layout -->", 2)[1]
    listed = set(re.findall(r"^  ([a-z_]+)/", block, flags=re.M))
    modules = set(re.findall(r"^  ([a-z_]+\.py)", block, flags=re.M))
    assert listed == _packages()
    assert modules == {p.name for p in (ROOT / "relay").glob("*.py") if p.name != "__init__.py"}
