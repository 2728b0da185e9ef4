"""API keys: created with scopes and an optional tenant, shown once, stored hashed, revoked.

A key is `rk_` + 32 random bytes in base64url. Only its SHA-256 is stored: with 256 bits of
entropy there is nothing to brute-force, so a slow hash (bcrypt, argon2) or a pepper would
add cost per request and no safety (SECURITY.md).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from relay.admin import audit, validation
from relay.admin.context import AdminContext
from relay.core.access import OPERATOR_ONLY_SCOPES, SCOPES
from relay.core.errors import InvalidInput
from relay.core.models import ApiKey, Listing

KEY_PREFIX = "rk_"
KEY_BYTES = 32
FIELDS = ("name", "scopes", "tenant_id", "expires_at")
MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just created: `secret` is the only time the key itself is seen."""

    key: ApiKey
    secret: str


def key_digest(presented: str) -> str:
    """The stored form of a key: hex SHA-256 of its text."""
    return hashlib.sha256(presented.encode("utf-8", "surrogateescape")).hexdigest()


def looks_like_key(presented: str) -> bool:
    return presented.startswith(KEY_PREFIX)


def _scopes(ctx: AdminContext, value: Any, *, tenant_id: str | None) -> tuple[str, ...]:
    scopes = validation.text_list(
        value, "scopes", max_items=len(SCOPES), max_length=64, choices=SCOPES
    )
    if not scopes:
        raise InvalidInput("scopes must name at least one scope", field="scopes")
    if tenant_id is not None and (refused := set(scopes) & set(OPERATOR_ONLY_SCOPES)):
        raise InvalidInput(f"a tenant key cannot hold {', '.join(sorted(refused))}", field="scopes")
    # No escalation: a key that may create keys grants only scopes it holds itself.
    if missing := [s for s in scopes if not ctx.principal.has_scope(s)]:
        raise InvalidInput(
            f"you cannot grant scopes you do not hold: {', '.join(missing)}", field="scopes"
        )
    return tuple(dict.fromkeys(scopes))


async def _tenant(ctx: AdminContext, value: Any) -> str | None:
    if value is None:
        return None
    tenant_id = validation.text(value, "tenant_id", max_length=100)
    await ctx.store.tenants.get(tenant_id)  # NotFound
    return tenant_id


async def create_key(ctx: AdminContext, data: dict[str, Any]) -> NewKey:
    """Validate and create a key; raises InvalidInput, NotFound (an unknown tenant)."""
    name = validation.text(validation.required(data, "name"), "name", max_length=MAX_NAME)
    tenant_id = await _tenant(ctx, data.get("tenant_id"))
    scopes = _scopes(ctx, validation.required(data, "scopes"), tenant_id=tenant_id)
    expires_at: float | None = None
    if data.get("expires_at") is not None:
        # One in the past is allowed (a key that never works), as the schema cannot say "future".
        expires_at = float(
            validation.integer(data["expires_at"], "expires_at", low=0, high=validation.MAX_EPOCH_S)
        )
    secret = KEY_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode().rstrip(
        "="
    )
    key = await ctx.store.api_keys.create(
        name=name,
        scopes=scopes,
        tenant_id=tenant_id,
        expires_at=expires_at,
        digest=key_digest(secret),
        now=ctx.clock(),
    )
    await audit.record(ctx, "key.create", key.id, tenant_id=tenant_id)
    return NewKey(key=key, secret=secret)


async def list_keys(ctx: AdminContext, *, limit: int, cursor: str | None) -> Listing[ApiKey]:
    """Newest first."""
    return await ctx.store.api_keys.page(limit=limit, cursor=cursor, tenant=ctx.tenant)


async def get_key(ctx: AdminContext, key_id: str) -> ApiKey:
    """The key (never its secret); raises NotFound."""
    return await ctx.store.api_keys.get(key_id, tenant=ctx.tenant)


async def revoke_key(ctx: AdminContext, key_id: str) -> None:
    """Revoke: the next request with the key fails on every replica; raises NotFound."""
    key = await ctx.store.api_keys.revoke(key_id, tenant=ctx.tenant)
    await audit.record(ctx, "key.revoke", key_id, tenant_id=key.tenant_id)
