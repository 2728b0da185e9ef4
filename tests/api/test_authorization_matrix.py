"""The authorization matrix, generated from the app's routes and openapi.yaml: every `/v1`
operation x every kind of credential x {its own row, another tenant's row}, with the status
each cell must answer, and no answer to one tenant carrying an id or text of the other's.

Expected status of a cell, in order: no / revoked / expired credential -> 401; a scope the
operation needs (`x-required-scope`) that the credential lacks -> 403; a tenant key naming
another tenant's row -> 404; else the operation's documented 2xx. Operations that change
state get fresh rows for every cell, so one cell never decides another.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.applications import Starlette
from starlette.routing import Route

from relay.api.app import all_routes
from relay.core.access import OPERATOR_ONLY_SCOPES, SCOPES, expand_scopes
from relay.core.events import event_from_message
from relay.core.models import Message
from relay.settings import Settings
from relay.store import Store
from tests.api.conftest import AUTH

SPEC = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "relay" / "api" / "openapi.yaml").read_text()
)
TARGET = "http://127.0.0.1:9/hook"  # discard port: refused at once (test pings)
TENANT_SCOPES = tuple(s for s in SCOPES if s not in OPERATOR_ONLY_SCOPES)
READ_SCOPES = ("sources:read", "subscriptions:read", "events:read")
CREDENTIALS = ("none", "env", "admin", "read_only", "tenant_a", "tenant_b", "revoked", "expired")


def operations() -> list[tuple[str, str, str]]:
    """(path template, method, required scope) of every /v1 route the app serves."""
    found = []
    for route in all_routes():
        assert isinstance(route, Route)
        if not route.path.startswith("/v1/"):
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            operation = SPEC["paths"][route.path][method.lower()]
            found.append((route.path, method, operation["x-required-scope"]))
    return found


def success_status(template: str, method: str) -> int:
    codes = SPEC["paths"][template][method.lower()]["responses"]
    return min(int(code) for code in codes if code.startswith("2"))


@dataclass
class Side:
    """One tenant's rows (fresh for each state-changing cell)."""

    tenant_id: str
    ids: dict[str, str] = field(default_factory=dict)  # path parameter -> id
    markers: set[str] = field(default_factory=set)  # ids and texts no other tenant may see


@dataclass
class World:
    store: Store
    settings: Settings
    tenants: dict[str, str]  # "a" / "b" -> tenant id
    counter: itertools.count[int] = field(default_factory=itertools.count)
    markers: dict[str, set[str]] = field(default_factory=lambda: {"a": set(), "b": set()})

    async def side(self, name: str) -> Side:
        """A source, subscription, event, dead letter, empty tenant and key of tenant
        `name`, with their ids and texts recorded as that tenant's."""
        n = next(self.counter)
        tenant_id = self.tenants[name]
        store, now = self.store, time.time()
        side = Side(tenant_id)
        source = await store.sources.create(
            username=f"user-{name}-{n}",
            password=f"password-{name}-{n}",
            base_url="http://127.0.0.1:9",
            poll_interval_s=3600,
            start_from=0,
            now=now,
            tenant_id=tenant_id,
        )
        subscription = await store.subscriptions.create(
            url=f"{TARGET}?tenant-{name}-{n}",
            event_types=None,
            source_ids=(source.id,),
            description=f"description-{name}-{n}",
            headers={},
            enabled=True,
            now=now,
            tenant_id=tenant_id,
        )
        message = Message(
            kind="incoming", document_id=f"doc-{name}-{n}", timestamp=1700000000 + n,
            text=f"text-{name}-{n}", sender=f"614{n:05d}", recipient="61500079987",
        )  # fmt: skip
        event = event_from_message(message, source_id=source.id, created_at_ms=int(now * 1000))
        event = type(event)(**{**_fields(event), "tenant_id": tenant_id})
        await store.events.add([event], retention_s=3600)
        dead = await store.dead_letters.add(
            event_id=event.id, subscription_id=subscription.id, attempts=3,
            last_error="HTTP 500", last_status_code=500, failed_at=now,
        )  # fmt: skip
        empty_tenant = await store.tenants.create(name=f"spare-{name}-{n}", now=now)
        key = await store.api_keys.create(
            name=f"key-{name}-{n}", scopes=("events:read",), tenant_id=tenant_id,
            expires_at=None, digest=f"{n:064x}", now=now,
        )  # fmt: skip
        side.ids = {
            "source_id": source.id,
            "subscription_id": subscription.id,
            "event_id": event.id,
            "dead_letter_id": dead.id,
            "tenant_id": empty_tenant.id,
            "key_id": key.id,
        }
        side.markers = {
            source.id, subscription.id, event.id, dead.id, source.username, source.password,
            subscription.url, f"description-{name}-{n}", f"text-{name}-{n}", f"doc-{name}-{n}",
            subscription.secrets[0].value, key.id,
        }  # fmt: skip
        if name == "b":  # tenant A's key may not see B's tenant id either, and vice versa
            side.markers.add(tenant_id)
        self.markers[name] |= side.markers
        return side


def _fields(event: Any) -> dict[str, Any]:
    return {name: getattr(event, name) for name in event.__slots__}


def body_for(template: str, method: str, n: int, side: Side) -> dict[str, Any] | None:
    """A valid body for the operation (unique where uniqueness matters)."""
    if (template, method) == ("/v1/sources", "POST"):
        return {"username": f"new-{n}", "password": "pw"}
    if (template, method) == ("/v1/subscriptions", "POST"):
        return {"url": TARGET}
    if (template, method) == ("/v1/keys", "POST"):
        return {"name": "k", "scopes": ["events:read"]}
    if (template, method) == ("/v1/events/{event_id}/redeliver", "POST"):
        return {}
    if template in (
        "/v1/subscriptions/{subscription_id}/replay",
        "/v1/subscriptions/{subscription_id}/recover",
    ):
        return {"since": 0}
    if (template, method) == ("/v1/dead-letters/retry", "POST"):
        # the cell's own fresh side: retrying everything would empty the shared sides
        return {"subscription_id": side.ids["subscription_id"]}
    operation = SPEC["paths"][template][method.lower()]
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    return None if content is None else dict(content["example"])


def expected(credential: str, scope: str, *, is_other: bool, has_ids: bool, ok: int) -> int:
    if credential in ("none", "revoked", "expired"):
        return 401
    held = {
        "env": SCOPES,
        "admin": SCOPES,
        "read_only": READ_SCOPES,
        "tenant_a": TENANT_SCOPES,
        "tenant_b": TENANT_SCOPES,
    }[credential]
    if scope not in expand_scopes(tuple(held)):
        return 403
    if credential.startswith("tenant_") and is_other and has_ids:
        return 404
    return ok


@pytest.fixture
def api_settings(api_settings: Settings) -> Settings:
    """The matrix sends hundreds of refused credentials on purpose: not a brute force."""
    return api_settings.replace(auth_failures_per_minute=1_000_000)


@pytest.fixture
async def world(app: Starlette, client: httpx.AsyncClient, store: Store) -> AsyncIterator[World]:
    tenants = {}
    for name in ("a", "b"):
        tenants[name] = (await client.post("/v1/tenants", json={"name": f"T-{name}"})).json()["id"]
    yield World(store=store, settings=app.state.context.settings, tenants=tenants)


async def make_tokens(client: httpx.AsyncClient, world: World) -> dict[str, str | None]:
    async def key(scopes: tuple[str, ...], tenant: str | None = None, **extra: Any) -> str:
        body = {"name": "matrix", "scopes": list(scopes), "tenant_id": tenant, **extra}
        response = await client.post("/v1/keys", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["key"])

    revoked = await key(SCOPES)
    (found,) = (await client.get("/v1/keys")).json()["data"][:1]
    assert (await client.delete(f"/v1/keys/{found['id']}")).status_code == 204
    return {
        "none": None,
        "env": AUTH["Authorization"].removeprefix("Bearer "),
        "admin": await key(SCOPES),
        "read_only": await key(READ_SCOPES),
        "tenant_a": await key(TENANT_SCOPES, world.tenants["a"]),
        "tenant_b": await key(TENANT_SCOPES, world.tenants["b"]),
        "revoked": revoked,
        "expired": await key(SCOPES, expires_at=int(time.time()) - 1),
    }


async def test_every_route_answers_every_credential_as_the_matrix_says(
    app: Starlette, client: httpx.AsyncClient, anonymous: httpx.AsyncClient, world: World
) -> None:
    tokens = await make_tokens(client, world)
    shared = {"a": await world.side("a"), "b": await world.side("b")}
    cells = 0
    failures = []
    for template, method, scope in operations():
        names = re.findall(r"{(\w+)}", template)
        ok = success_status(template, method)
        for credential in CREDENTIALS:
            mine, theirs = ("b", "a") if credential == "tenant_b" else ("a", "b")
            for is_other in (False, True) if names else (False,):
                n = next(world.counter)
                if method == "GET":
                    side = shared[theirs if is_other else mine]
                else:
                    side = await world.side(theirs if is_other else mine)
                path = template.format(**{name: side.ids[name] for name in names})
                body = body_for(template, method, n, side)
                token = tokens[credential]
                headers = {} if token is None else {"Authorization": f"Bearer {token}"}
                response = await anonymous.request(
                    method, path, headers=headers, json=body if body is not None else None
                )
                cells += 1
                want = expected(credential, scope, is_other=is_other, has_ids=bool(names), ok=ok)
                cell = f"{method} {template} as {credential} on {'other' if is_other else 'own'}"
                if response.status_code != want:
                    failures.append(f"{cell}: {response.status_code} != {want}: {response.text}")
                if credential.startswith("tenant_"):
                    asked = path + json.dumps(body)
                    leaked = {m for m in world.markers[theirs] if m in response.text} - {
                        m for m in world.markers[theirs] if m in asked
                    }
                    if leaked:
                        failures.append(f"{cell}: leaked {sorted(leaked)}")
    assert not failures, "\n".join(failures)
    assert cells >= 8 * len(operations())


async def test_lists_for_a_tenant_key_hold_only_its_rows(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, world: World
) -> None:
    tokens = await make_tokens(client, world)
    a, b = await world.side("a"), await world.side("b")
    as_a = {"Authorization": f"Bearer {tokens['tenant_a']}"}
    for path, id_name in (
        ("/v1/sources", "source_id"),
        ("/v1/subscriptions", "subscription_id"),
        ("/v1/events", "event_id"),
        ("/v1/dead-letters", "dead_letter_id"),
    ):
        rows, cursor = [], None
        while True:  # every page, with limit=1, so cursors are exercised too
            params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
            page = (await anonymous.get(path, headers=as_a, params=params)).json()
            rows += [row["id"] for row in page["data"]]
            if (cursor := page["next_cursor"]) is None:
                break
        assert a.ids[id_name] in rows, path
        assert b.ids[id_name] not in rows, path
        everything = (await client.get(path)).json()["data"]
        assert b.ids[id_name] in [row["id"] for row in everything], path  # the operator's view
