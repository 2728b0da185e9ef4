"""Who may use the admin API and the console: env tokens, API keys and console sessions.

`authenticate` turns a presented bearer credential into a Principal (or None), the one
place a credential is checked; API and console both use it.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from relay.admin.context import AdminContext
from relay.admin.keys import key_digest, looks_like_key
from relay.core.access import OPERATOR, Principal, expand_scopes
from relay.core.errors import NotFound
from relay.core.models import ConsoleSession
from relay.store.auth_failures import retry_after_s


def is_valid_token(presented: str, tokens: Iterable[str]) -> bool:
    """Whether `presented` equals one of `tokens`, comparing each in constant time."""
    given = presented.encode("utf-8", "surrogateescape")
    matched = False
    for token in tokens:
        # No early exit: the time taken does not reveal which token (if any) matched.
        matched |= hmac.compare_digest(given, token.encode("utf-8", "surrogateescape"))
    return matched


async def authenticate(ctx: AdminContext, presented: str) -> Principal | None:
    """The principal of an env token or a live API key, or None (unknown, revoked, expired).

    A key is looked up by its SHA-256 in Redis on every call (no cache), so a revocation
    holds on the next request on every replica. The lookup is by digest, so its timing
    says nothing about how much of a key was right; the digest is compared again in
    constant time anyway."""
    if is_valid_token(presented, ctx.settings.admin_tokens):
        return OPERATOR
    if not looks_like_key(presented) or len(presented) > 200:
        return None
    digest = key_digest(presented)
    key = await ctx.store.api_keys.find(digest)
    now = ctx.clock()
    if key is None or not hmac.compare_digest(key.digest, digest) or key.is_expired(now=now):
        return None
    await ctx.store.api_keys.touch(key, now=now)
    return Principal(actor=key.id, scopes=expand_scopes(key.scopes), tenant_id=key.tenant_id)


async def blocked_for_s(ctx: AdminContext, address: str) -> int | None:
    """Seconds until `address` may authenticate again, or None when it is not blocked (it
    failed fewer than RELAY_AUTH_FAILURES_PER_MINUTE times this minute)."""
    now = ctx.clock()
    failures = await ctx.store.auth_failures.count(address, now=now)
    if failures < ctx.settings.auth_failures_per_minute:
        return None
    return retry_after_s(now)


async def note_failed_authentication(ctx: AdminContext, address: str) -> None:
    """Count one failed authentication of `address` (across every replica)."""
    await ctx.store.auth_failures.add(address, now=ctx.clock())


async def principal_of_session(ctx: AdminContext, session: ConsoleSession) -> Principal | None:
    """Who a console session acts as, checked again on every page (a revoked or expired key
    ends its sessions at once); None when its key is gone."""
    if session.key_id is None:
        return OPERATOR
    try:
        key = await ctx.store.api_keys.get(session.key_id)
    except NotFound:  # revoked
        return None
    if key.is_expired(now=ctx.clock()):
        return None
    return Principal(actor=key.id, scopes=expand_scopes(key.scopes), tenant_id=key.tenant_id)


async def start_console_session(ctx: AdminContext, *, key_id: str | None = None) -> ConsoleSession:
    """A new console session (fresh random id and CSRF token), after a successful login."""
    return await ctx.store.console_sessions.create(now=ctx.clock(), key_id=key_id)


async def console_session(ctx: AdminContext, session_id: str) -> ConsoleSession | None:
    """The live session with this id (extending its life), or None."""
    return await ctx.store.console_sessions.get(session_id)


async def end_console_session(ctx: AdminContext, session_id: str) -> None:
    """Log out (a no-op when the session is already gone)."""
    await ctx.store.console_sessions.delete(session_id)
