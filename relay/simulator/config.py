"""SimulatorConfig: page size, cap, `since` semantics and one switch per MC5 quirk."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from relay.core.errors import InvalidInput

EMPTY_NEWEST_CHOICES = ("zero", "missing", "since")
DEMO_ACCOUNTS = {"demo@reseller": "demo"}
_BOOL_SWITCHES = ("inclusive_since", "integer_ids", "integer_numbers", "recpipent", "omit_has_more")
_INT_SWITCHES = ("page_size", "capacity")
# Bounds keep a typo from allocating a huge page or turning the cap off.
_MAX_PAGE_SIZE = 100_000
_MAX_CAPACITY = 10_000_000


def _demo_accounts() -> dict[str, str]:
    return dict(DEMO_ACCOUNTS)


@dataclass
class SimulatorConfig:
    """How the simulator behaves. Mutable so `relay simulate` can fill it from its flags;
    the simulator keeps its own copy, change it later through `Simulator.update_config`."""

    accounts: dict[str, str] = field(default_factory=_demo_accounts)  # username -> password
    page_size: int = 100
    capacity: int = 10_000  # per account; the oldest messages silently disappear
    inclusive_since: bool = True  # False: `since` is exclusive
    integer_ids: bool = False  # quirk 1: documentId/originDocumentId as bare integers
    integer_numbers: bool = False  # quirk 2: from/recipient as bare JSON numbers
    recpipent: bool = False  # quirk 3: outgoing messages spell the field "recpipent"
    omit_has_more: bool = False  # quirk 5: leave hasMoreMessages out
    empty_newest: str = "zero"  # quirk 6: empty page's newestMessageTimestamp: zero|missing|since

    def switches(self) -> dict[str, object]:
        """Every setting except the accounts, as JSON-ready values."""
        return {name: getattr(self, name) for name in (*_INT_SWITCHES, *_BOOL_SWITCHES)} | {
            "empty_newest": self.empty_newest
        }


def check_config(config: SimulatorConfig) -> None:
    """Raise InvalidInput (naming the field) unless every setting is usable."""
    for name in _BOOL_SWITCHES:
        if not isinstance(getattr(config, name), bool):
            raise InvalidInput(f"{name} must be true or false", field=name)
    limits = {"page_size": _MAX_PAGE_SIZE, "capacity": _MAX_CAPACITY}
    for name in _INT_SWITCHES:
        value = getattr(config, name)
        if type(value) is not int or not 1 <= value <= limits[name]:
            raise InvalidInput(f"{name} must be an integer from 1 to {limits[name]}", field=name)
    if config.empty_newest not in EMPTY_NEWEST_CHOICES:
        raise InvalidInput(
            f"empty_newest must be one of {', '.join(EMPTY_NEWEST_CHOICES)}", field="empty_newest"
        )
    for username in config.accounts:
        if not username or any(char.isspace() for char in username):
            raise InvalidInput(f"username {username!r} is empty or has spaces", field="accounts")


def with_changes(config: SimulatorConfig, changes: Mapping[str, object]) -> SimulatorConfig:
    """A checked copy of `config` with `changes` applied; raises InvalidInput on any bad key."""
    for name in changes:
        if name == "accounts":
            raise InvalidInput("accounts are changed through /_sim/accounts", field=name)
        if name not in config.switches():
            raise InvalidInput(f"unknown setting {name!r}", field=name)
    # Values are still unchecked JSON here; check_config vets them on the copy.
    fields: dict[str, Any] = {**changes, "accounts": dict(config.accounts)}
    updated = dataclasses.replace(config, **fields)
    check_config(updated)
    return updated
