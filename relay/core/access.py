"""Who is asking: scopes, the principal a credential resolves to, and what it may do.

A principal is resolved once per request (relay.api.auth, relay.console.session) and handed
to every admin operation; `tenant_id` is the filter the stores apply, so a tenant key's reads
and writes cannot reach another tenant's rows.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCES_READ = "sources:read"
SOURCES_WRITE = "sources:write"
SUBSCRIPTIONS_READ = "subscriptions:read"
SUBSCRIPTIONS_WRITE = "subscriptions:write"
EVENTS_READ = "events:read"
DELIVERIES_WRITE = "deliveries:write"
KEYS_WRITE = "keys:write"
TENANTS_WRITE = "tenants:write"

SCOPES = (
    SOURCES_READ,
    SOURCES_WRITE,
    SUBSCRIPTIONS_READ,
    SUBSCRIPTIONS_WRITE,
    EVENTS_READ,
    DELIVERIES_WRITE,
    KEYS_WRITE,
    TENANTS_WRITE,
)
OPERATOR_ONLY_SCOPES = (KEYS_WRITE, TENANTS_WRITE)  # never held by a tenant key
ENV_ACTOR = "env"


def expand_scopes(scopes: tuple[str, ...] | frozenset[str]) -> frozenset[str]:
    """The scopes held, with each `x:write` also granting `x:read`."""
    held = set(scopes)
    held |= {s.replace(":write", ":read") for s in scopes if s.endswith(":write")}
    return frozenset(held)


@dataclass(frozen=True, slots=True)
class Principal:
    """The holder of a valid credential: an env token (`actor` "env") or an API key."""

    actor: str
    scopes: frozenset[str]
    tenant_id: str | None = None  # None: no tenant limit (the operator)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def is_operator(self) -> bool:
        return self.tenant_id is None


OPERATOR = Principal(actor=ENV_ACTOR, scopes=frozenset(SCOPES))
