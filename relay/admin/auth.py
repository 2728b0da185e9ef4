"""Who may use the admin API and the console: bearer tokens and console sessions."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from relay.admin.context import AdminContext
from relay.core.models import ConsoleSession


def is_valid_token(presented: str, tokens: Iterable[str]) -> bool:
    """Whether `presented` equals one of `tokens`, comparing each in constant time."""
    given = presented.encode("utf-8", "surrogateescape")
    matched = False
    for token in tokens:
        # No early exit: the time taken does not reveal which token (if any) matched.
        matched |= hmac.compare_digest(given, token.encode("utf-8", "surrogateescape"))
    return matched


async def start_console_session(ctx: AdminContext) -> ConsoleSession:
    """A new console session (fresh random id and CSRF token), after a successful login."""
    return await ctx.store.console_sessions.create(now=ctx.clock())


async def console_session(ctx: AdminContext, session_id: str) -> ConsoleSession | None:
    """The live session with this id (extending its life), or None."""
    return await ctx.store.console_sessions.get(session_id)


async def end_console_session(ctx: AdminContext, session_id: str) -> None:
    """Log out (a no-op when the session is already gone)."""
    await ctx.store.console_sessions.delete(session_id)
