"""Accounts: credentials, the account's own state, and the status a login attempt gets."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from relay.core.errors import InvalidInput
from relay.simulator import statuses


@dataclass(frozen=True)
class Account:
    """One upstream user. `status` is OK, ACCOUNT_BLOCKED or NEEDS_ACTIVATION."""

    username: str
    password: str
    status: int = statuses.OK

    def __post_init__(self) -> None:
        if not self.username or any(char.isspace() for char in self.username):
            raise InvalidInput("username must be non-empty without spaces", field="username")
        if self.status not in statuses.ACCOUNT_STATUSES:
            raise InvalidInput("status must be 0, 4 or 220", field="status")

    @property
    def number(self) -> str:
        """The account's own phone number: the recipient of its incoming messages."""
        # Stable per username so generated conversations look consistent across restarts.
        return f"615000{zlib.crc32(self.username.encode()) % 100_000:05d}"


def login_status(account: Account | None, password: str) -> int:
    """The MC5 status a call with these credentials gets; OK means it may read messages."""
    if account is None:
        return statuses.USER_NOT_FOUND
    # Checked before the account state so wrong credentials learn nothing about the account.
    if password != account.password:
        return statuses.AUTH_FAILED
    return account.status
