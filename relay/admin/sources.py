"""Sources (MC5 accounts): validation, uniqueness and the operations on them."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from relay.admin import audit, tenants, validation
from relay.admin.context import AdminContext
from relay.core.errors import Conflict, InvalidInput
from relay.core.models import Listing, Source, SourceStatus
from relay.settings import Settings
from relay.store import Store

MIN_POLL_INTERVAL_S = 0.05
MAX_POLL_INTERVAL_S = 3600.0
CREATE_FIELDS = ("username", "password", "base_url", "poll_interval", "start_from", "tenant_id")
UPDATE_FIELDS = ("username", "password", "base_url", "poll_interval", "cursor", "status")
_STATUSES: dict[str, SourceStatus] = {"ok": "ok", "paused": "paused"}


def _username(value: Any) -> str:
    return validation.no_whitespace(value, "username", max_length=200)


def _password(value: Any) -> str:
    return validation.text(value, "password", max_length=200)


def _base_url(value: Any) -> str:
    checked = validation.text(
        value,
        "base_url",
        max_length=2048,
        pattern=validation.BASE_URL,
        hint="must be an http:// or https:// URL without credentials",
    )
    if validation.NOT_VISIBLE_ASCII.search(checked):
        raise InvalidInput("base_url must be printable ASCII without spaces", field="base_url")
    return checked.rstrip("/")


def _poll_interval(value: Any) -> float:
    return validation.number(
        value, "poll_interval", low=MIN_POLL_INTERVAL_S, high=MAX_POLL_INTERVAL_S
    )


def _start_from(value: Any) -> int | None:
    if value == "now":
        return None
    if isinstance(value, str):
        raise InvalidInput('start_from must be an epoch second or "now"', field="start_from")
    return validation.integer(value, "start_from", low=0, high=validation.MAX_EPOCH_S)


@contextlib.contextmanager
def _one_per_account(ctx: AdminContext) -> Iterator[None]:
    """The store's Conflict when another source polls the same account; a tenant is not told
    which source that is (it may be another tenant's)."""
    try:
        yield
    except Conflict:
        if ctx.tenant is None:
            raise
        raise Conflict("another source already polls that username at that base_url") from None


async def add_source(ctx: AdminContext, data: dict[str, Any]) -> Source:
    """Validate the fields of a new source (API names) and create it; raises InvalidInput,
    Conflict."""
    username = _username(validation.required(data, "username"))
    password = _password(validation.required(data, "password"))
    base_url = _base_url(data.get("base_url", ctx.settings.mc5_base_url))
    poll_interval_s = (
        _poll_interval(data["poll_interval"])
        if "poll_interval" in data
        else ctx.settings.poll_interval_s
    )
    start_from = (
        _start_from(data["start_from"]) if "start_from" in data else ctx.settings.start_from
    )
    tenant_id = await tenants.owner_of_new_row(ctx, data)
    with _one_per_account(ctx):
        source = await ctx.store.sources.create(
            username=username,
            password=password,
            base_url=base_url,
            poll_interval_s=poll_interval_s,
            start_from=start_from,
            now=ctx.clock(),
            tenant_id=tenant_id,
        )
    await audit.record(ctx, "source.create", source.id, tenant_id=tenant_id)
    return source


async def change_source(ctx: AdminContext, source_id: str, data: dict[str, Any]) -> Source:
    """Validate the given fields (API names) and apply them; raises InvalidInput, Conflict,
    NotFound."""
    changes: dict[str, Any] = {}
    if "username" in data:
        changes["username"] = _username(data["username"])
    if "password" in data:
        changes["password"] = _password(data["password"])
    if "base_url" in data:
        changes["base_url"] = _base_url(data["base_url"])
    if "poll_interval" in data:
        changes["poll_interval_s"] = _poll_interval(data["poll_interval"])
    if "cursor" in data:
        changes["cursor"] = validation.integer(
            data["cursor"], "cursor", low=0, high=validation.MAX_EPOCH_S
        )
    if "status" in data:
        status = data["status"]
        if not isinstance(status, str) or status not in _STATUSES:
            raise InvalidInput('status must be "ok" (resume) or "paused"', field="status")
        changes["status"] = _STATUSES[status]
    current = await ctx.store.sources.get(source_id, tenant=ctx.tenant)
    if not changes:
        return current
    with _one_per_account(ctx):
        source = await ctx.store.sources.update(source_id, tenant=ctx.tenant, **changes)
    await audit.record(ctx, "source.update", source_id, tenant_id=source.tenant_id)
    return source


async def get_source(ctx: AdminContext, source_id: str) -> Source:
    """The source; raises NotFound."""
    return await ctx.store.sources.get(source_id, tenant=ctx.tenant)


async def list_sources(ctx: AdminContext, *, limit: int, cursor: str | None) -> Listing[Source]:
    """Newest first."""
    return await ctx.store.sources.page(limit=limit, cursor=cursor, tenant=ctx.tenant)


async def delete_source(ctx: AdminContext, source_id: str) -> None:
    """Remove the source (its events stay until they expire); raises NotFound."""
    owner = (await ctx.store.sources.get(source_id, tenant=ctx.tenant)).tenant_id
    await ctx.store.sources.delete(source_id, tenant=ctx.tenant)
    await audit.record(ctx, "source.delete", source_id, tenant_id=owner)


async def ensure_default_source(settings: Settings, store: Store) -> Source | None:
    """The MC5_USERNAME/MC5_PASSWORD source, created if missing (idempotent); None when the
    variables are not both set. The poller role calls this at start."""
    if not (settings.mc5_username and settings.mc5_password):
        return None
    return await store.sources.ensure(
        username=settings.mc5_username,
        password=settings.mc5_password,
        base_url=settings.mc5_base_url,
        poll_interval_s=settings.poll_interval_s,
        start_from=settings.start_from,
        now=time.time(),
    )


_FIELD_CHECKS: dict[str, Callable[[Any], object]] = {
    "username": _username,
    "password": _password,
    "base_url": _base_url,
    "poll_interval": _poll_interval,
    "start_from": _start_from,
    "cursor": lambda value: validation.integer(value, "cursor", low=0, high=validation.MAX_EPOCH_S),
}


def invalid_fields(data: Mapping[str, Any], *, required: Sequence[str] = ()) -> list[InvalidInput]:
    """Every field error of `data` (API names) at once, for forms that show them together
    (the operations above stop at the first); [] when every given field is valid."""
    problems = [
        InvalidInput(f"{name} is required", field=name) for name in required if name not in data
    ]
    for name, value in data.items():
        check = _FIELD_CHECKS.get(name)
        try:
            if check is not None:
                check(value)
        except InvalidInput as exc:
            problems.append(exc)
    return problems
