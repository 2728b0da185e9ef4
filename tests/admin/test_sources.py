"""Source operations shared by the API and the console, called directly."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from relay.admin.context import AdminContext, open_admin_context
from relay.admin.sources import add_source, change_source, ensure_default_source
from relay.core.errors import Conflict, InvalidInput
from relay.settings import Settings


@pytest.fixture
async def ctx(settings: Settings, aredis: redis.asyncio.Redis) -> AsyncIterator[AdminContext]:
    async with open_admin_context(settings, redis=aredis, clock=lambda: 1_700_000_000.0) as made:
        yield made


async def test_add_source_takes_defaults_from_the_settings(ctx: AdminContext) -> None:
    source = await add_source(ctx, {"username": "1234321@reseller", "password": "pw"})
    assert source.base_url == ctx.settings.mc5_base_url
    assert source.poll_interval_s == ctx.settings.poll_interval_s
    assert source.cursor == 1_700_000_000  # RELAY_START_FROM=now


async def test_the_same_account_cannot_be_added_twice(ctx: AdminContext) -> None:
    first = await add_source(ctx, {"username": "a@r", "password": "pw"})
    with pytest.raises(Conflict, match=first.id):
        await add_source(ctx, {"username": "a@r", "password": "other"})
    other = await add_source(ctx, {"username": "b@r", "password": "pw"})
    with pytest.raises(Conflict):
        await change_source(ctx, other.id, {"username": "a@r"})


async def test_bad_fields_name_the_field(ctx: AdminContext) -> None:
    with pytest.raises(InvalidInput) as caught:
        await add_source(ctx, {"username": "has space", "password": "pw"})
    assert caught.value.field == "username"


async def test_the_default_source_is_created_once(settings: Settings, ctx: AdminContext) -> None:
    assert await ensure_default_source(settings, ctx.store) is None  # not configured
    configured = settings.replace(mc5_username="env@reseller", mc5_password="pw")
    first = await ensure_default_source(configured, ctx.store)
    again = await ensure_default_source(configured, ctx.store)
    assert first is not None and again is not None and first.id == again.id
    listing = await ctx.store.sources.page(limit=10, cursor=None)
    assert [s.username for s in listing.items] == ["env@reseller"]
