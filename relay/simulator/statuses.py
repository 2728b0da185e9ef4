"""The MC5 `status` values the simulator answers with (HTTP 200 unless a fault says otherwise)."""

from __future__ import annotations

OK = 0
MISSING_PARAMETER = 1
INVALID_VALUE = 2
AUTH_FAILED = 3
ACCOUNT_BLOCKED = 4
USER_NOT_FOUND = 200
NEEDS_ACTIVATION = 220
INTERNAL_ERROR = 9999

# The states an account itself can be in; the rest are answers about a single call.
ACCOUNT_STATUSES = (OK, ACCOUNT_BLOCKED, NEEDS_ACTIVATION)
