"""Subscriptions: validation of their fields and the operations on them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from relay.admin import audit, tenants, validation
from relay.admin.context import AdminContext
from relay.core import limits
from relay.core.errors import Conflict, InvalidInput, NotFound, UnsafeTarget
from relay.core.models import EVENT_TYPES, PAYLOAD_FORMATS, PAYLOAD_STANDARD, Listing, Subscription
from relay.core.sms_match import SmsMatch
from relay.core.urls import validate_target_url
from relay.store.retry_cleanup import drop_subscription_retries

FIELDS = (
    "url",
    "event_types",
    "source_ids",
    "description",
    "headers",
    "enabled",
    "payload_format",
    "match",
    "rate_limit_per_s",
    "timeout_s",
    "concurrency",
)
CREATE_FIELDS = (*FIELDS, "tenant_id")
MAX_DESCRIPTION = 500
MAX_SOURCE_IDS = 100
MAX_ID_LENGTH = 100
MAX_MATCH_ITEMS = 50
MATCH_LISTS = ("recipients", "senders", "keywords")


def _url(ctx: AdminContext, value: Any) -> str:
    checked = validation.text(
        value,
        "url",
        max_length=2048,
        pattern=validation.TARGET_URL,
        hint="must be an http:// or https:// URL with a host name or IP address",
    )
    if validation.NOT_VISIBLE_ASCII.search(checked):
        raise InvalidInput("url must be printable ASCII without spaces", field="url")
    try:
        return validate_target_url(checked, allow_private=ctx.settings.allow_private_targets)
    except UnsafeTarget as exc:
        detail = f"{exc.detail}; {validation.PRIVATE_TARGETS_HINT}"
        raise UnsafeTarget(detail, field="url") from None


def _event_types(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    return validation.text_list(
        value, "event_types", max_items=len(EVENT_TYPES), max_length=64, choices=EVENT_TYPES
    )


def _source_ids(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    return validation.text_list(
        value, "source_ids", max_items=MAX_SOURCE_IDS, max_length=MAX_ID_LENGTH
    )


def _description(value: Any) -> str | None:
    if value is None:
        return None
    return validation.text(value, "description", max_length=MAX_DESCRIPTION, min_length=0)


def _payload_format(value: Any) -> str:
    checked = validation.text(value, "payload_format", max_length=16)
    if checked not in PAYLOAD_FORMATS:
        raise InvalidInput(
            f"payload_format must be one of {', '.join(PAYLOAD_FORMATS)}", field="payload_format"
        )
    return checked


def _match(value: Any) -> SmsMatch | None:
    """`{recipients?, senders?, keywords?}`: lists of number prefixes (as the upstream sends
    numbers) and first words; null or {} means no filter."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput("match must be an object or null", field="match")
    unknown = sorted(set(value) - set(MATCH_LISTS))
    if unknown:
        raise InvalidInput(
            f"match has unknown field {unknown[0]!r}; known: {', '.join(MATCH_LISTS)}",
            field="match",
        )
    lists = {
        name: None
        if value.get(name) is None
        else validation.text_list(
            value[name], f"match.{name}", max_items=MAX_MATCH_ITEMS, max_length=64
        )
        for name in MATCH_LISTS
    }
    keywords = lists["keywords"]
    if keywords is not None:
        if any(char.isspace() for word in keywords for char in word):
            raise InvalidInput("match.keywords must be single words", field="match.keywords")
        keywords = tuple(dict.fromkeys(word.casefold() for word in keywords))
    if all(items is None for items in lists.values()):
        return None
    return SmsMatch(recipients=lists["recipients"], senders=lists["senders"], keywords=keywords)


def _rate_limit(value: Any) -> float | None:
    if value is None:
        return None
    return validation.number(
        value,
        "rate_limit_per_s",
        low=limits.MIN_RATE_LIMIT_PER_S,
        high=limits.MAX_RATE_LIMIT_PER_S,
    )


def _timeout(value: Any) -> float | None:
    if value is None:
        return None
    return validation.number(
        value, "timeout_s", low=limits.MIN_TIMEOUT_S, high=limits.MAX_TIMEOUT_S
    )


def _concurrency(value: Any) -> int | None:
    if value is None:
        return None
    return validation.integer(
        value, "concurrency", low=limits.MIN_CONCURRENCY, high=limits.MAX_CONCURRENCY
    )


def parse_fields(ctx: AdminContext, data: dict[str, Any]) -> dict[str, Any]:
    """The given fields (API names), validated, as SubscriptionStore keyword arguments."""
    parsers: dict[str, Callable[[Any], Any]] = {
        "url": lambda v: _url(ctx, v),
        "event_types": _event_types,
        "source_ids": _source_ids,
        "description": _description,
        "headers": validation.headers,
        "enabled": lambda v: validation.boolean(v, "enabled"),
        "payload_format": _payload_format,
        "match": _match,
        "rate_limit_per_s": _rate_limit,
        "timeout_s": _timeout,
        "concurrency": _concurrency,
    }
    return {name: parsers[name](data[name]) for name in FIELDS if name in data}


async def add_subscription(ctx: AdminContext, data: dict[str, Any]) -> Subscription:
    """Validate and create a subscription with a fresh secret; raises InvalidInput."""
    validation.required(data, "url")
    fields = parse_fields(ctx, data)
    tenant_id = await tenants.owner_of_new_row(ctx, data)
    await _check_source_ids(ctx, fields.get("source_ids"), tenant_id=tenant_id)
    subscription = await ctx.store.subscriptions.create(
        url=fields["url"],
        event_types=fields.get("event_types"),
        source_ids=fields.get("source_ids"),
        description=fields.get("description"),
        headers=fields.get("headers", {}),
        enabled=fields.get("enabled", True),
        now=ctx.clock(),
        payload_format=fields.get("payload_format", PAYLOAD_STANDARD),
        tenant_id=tenant_id,
        match=fields.get("match"),
        rate_limit_per_s=fields.get("rate_limit_per_s"),
        timeout_s=fields.get("timeout_s"),
        concurrency=fields.get("concurrency"),
    )
    await audit.record(ctx, "subscription.create", subscription.id, tenant_id=tenant_id)
    return subscription


async def _check_source_ids(
    ctx: AdminContext,
    source_ids: tuple[str, ...] | None,
    *,
    tenant_id: str | None,
    missing: type[NotFound] | type[Conflict] = NotFound,
) -> None:
    """A tenant's subscription may name only that tenant's sources: another tenant's is
    answered like one that does not exist (`missing`), so ids cannot be probed. A change
    answers Conflict: its 404 would say the subscription itself is gone. The operator's may
    name any, existing or not."""
    if tenant_id is None or source_ids is None:
        return
    for source_id in source_ids:
        try:
            await ctx.store.sources.get(source_id, tenant=tenant_id)
        except NotFound:
            raise missing(f"source {source_id} not found") from None


async def change_subscription(
    ctx: AdminContext, subscription_id: str, data: dict[str, Any]
) -> Subscription:
    """Validate the given fields and apply them; raises InvalidInput, NotFound."""
    if data.get("url", "") is None:
        raise InvalidInput("url cannot be null", field="url")
    fields = parse_fields(ctx, data)
    current = await ctx.store.subscriptions.get(subscription_id, tenant=ctx.tenant)
    if not fields:
        return current
    await _check_source_ids(
        ctx, fields.get("source_ids"), tenant_id=current.tenant_id, missing=Conflict
    )
    subscription = await ctx.store.subscriptions.update(
        subscription_id, tenant=ctx.tenant, **fields
    )
    if fields.get("enabled") is True and not current.enabled:
        await ctx.store.health.reset(subscription_id)  # a fresh disable window
    await audit.record(ctx, "subscription.update", subscription_id, tenant_id=current.tenant_id)
    return subscription


async def get_subscription(ctx: AdminContext, subscription_id: str) -> Subscription:
    """The subscription; raises NotFound."""
    return await ctx.store.subscriptions.get(subscription_id, tenant=ctx.tenant)


async def subscriptions_by_id(ctx: AdminContext, ids: Sequence[str]) -> list[Subscription]:
    """The ones of `ids` that exist and the caller may see; one round trip."""
    found = await ctx.store.subscriptions.get_many(ids)
    return [sub for sub in found if ctx.tenant is None or sub.tenant_id == ctx.tenant]


async def list_subscriptions(
    ctx: AdminContext, *, limit: int, cursor: str | None
) -> Listing[Subscription]:
    """Newest first."""
    return await ctx.store.subscriptions.page(limit=limit, cursor=cursor, tenant=ctx.tenant)


async def delete_subscription(ctx: AdminContext, subscription_id: str) -> None:
    """Remove it, its attempt log and its waiting retries; raises NotFound."""
    owner = (await ctx.store.subscriptions.get(subscription_id, tenant=ctx.tenant)).tenant_id
    await ctx.store.subscriptions.delete(subscription_id, tenant=ctx.tenant)
    await ctx.store.health.forget(subscription_id)
    await drop_subscription_retries(ctx.store.redis, ctx.store.keys, subscription_id)
    await ctx.store.limits.forget(subscription_id)
    await audit.record(ctx, "subscription.delete", subscription_id, tenant_id=owner)


def invalid_fields(
    ctx: AdminContext, data: Mapping[str, Any], *, required: Sequence[str] = ()
) -> list[InvalidInput]:
    """Every field error of `data` (API names) at once, for forms that show them together
    (the operations above stop at the first); [] when every given field is valid."""
    problems = [
        InvalidInput(f"{name} is required", field=name) for name in required if name not in data
    ]
    for name in FIELDS:
        try:
            if name in data:
                parse_fields(ctx, {name: data[name]})
        except InvalidInput as exc:
            problems.append(exc)
    return problems
