"""Headers relay sets on every webhook, which a subscription's custom headers cannot replace.

One set for both places that need it: the admin API refuses such a custom header, and the
deliverer drops one that was stored before the rule existed.
"""

from __future__ import annotations

import re

# Set by relay on every webhook (or by the HTTP client): custom headers cannot replace them.
RESERVED_HEADERS = (
    "host",
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
    "expect",
    "user-agent",
    "accept-encoding",
)


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


# Spelled without flags so the same pattern works in openapi.yaml (ECMA 262 has no (?i)).
RESERVED_HEADER = re.compile(
    "^(" + _any_case("webhook") + "-|(" + "|".join(map(_any_case, RESERVED_HEADERS)) + ")$)"
)


def is_reserved_header(name: str) -> bool:
    """Whether relay sets header `name` itself (any `webhook-*` header, or one of the set)."""
    return RESERVED_HEADER.search(name) is not None
