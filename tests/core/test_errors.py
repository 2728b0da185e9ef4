"""The exception tree drawn in relay.core.errors is the tree the code defines."""

from __future__ import annotations

import importlib
import pkgutil
import re

import relay
from relay.core import errors


def _subclasses(cls: type[BaseException]) -> set[type[BaseException]]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def test_the_drawing_lists_every_relay_error_with_its_parent() -> None:
    for module in pkgutil.walk_packages(relay.__path__, "relay."):
        importlib.import_module(module.name)
    drawn: dict[str, str] = {}
    parents: list[str] = []
    for line in (errors.__doc__ or "").splitlines():
        match = re.match(r"^((?:│   |    )*)(?:├── |└── )?([A-Z][A-Za-z]+)\b", line)
        if not match or not (line.startswith(("├", "└", "│", "RelayError"))):
            continue
        depth = len(match.group(1)) // 4 + (0 if line.startswith("RelayError") else 1)
        parents[depth:] = [match.group(2)]
        if depth:
            drawn[match.group(2)] = parents[depth - 1]
    defined = {
        cls.__name__: next(b.__name__ for b in cls.__bases__ if issubclass(b, errors.RelayError))
        for cls in _subclasses(errors.RelayError)
        if cls.__module__.startswith("relay.")
    }
    assert drawn == defined
