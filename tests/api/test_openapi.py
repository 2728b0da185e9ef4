"""openapi.yaml is true: every documented operation exists, every route is documented, and
the responses of a scripted walk through every route validate against their schemas."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from starlette.routing import Route

from relay.admin import validation
from relay.api.app import create_app
from relay.core.access import SCOPES
from relay.core.headers import RESERVED_HEADER
from relay.settings import Settings
from tests.api.conftest import message
from tests.support import Receiver

SPEC_PATH = Path(__file__).resolve().parents[2] / "relay" / "api" / "openapi.yaml"
SPEC: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
BASE = "urn:relay:openapi"
REGISTRY = Registry().with_resource(BASE, Resource.from_contents(SPEC, DRAFT202012))
METHODS = {"get", "post", "put", "patch", "delete"}


def documented_operations() -> set[tuple[str, str]]:
    return {
        (path, method.upper())
        for path, item in SPEC["paths"].items()
        for method in item
        if method in METHODS
    }


def test_the_root_openapi_yaml_is_the_packaged_one() -> None:
    root = SPEC_PATH.parents[2] / "openapi.yaml"
    assert root.is_symlink() and root.resolve() == SPEC_PATH


def test_every_documented_operation_exists_and_every_route_is_documented(
    api_settings: Settings,
) -> None:
    app = create_app(api_settings)
    routes = {
        (route.path, method)
        for route in app.routes
        if isinstance(route, Route)
        for method in (route.methods or ())
        if method != "HEAD"
    }
    assert routes == documented_operations()


def test_every_operation_is_secured_except_the_operational_ones() -> None:
    assert SPEC["security"] == [{"bearerAuth": []}, {"apiKeyAuth": []}]
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            public = operation.get("security") == []
            assert public == (not path.startswith("/v1/")), (method, path)
            if not public:
                assert {"401", "403", "429"} <= set(operation["responses"]), (method, path)
                assert operation["x-required-scope"] in SCOPES, (method, path)


def test_schema_patterns_are_the_ones_the_api_enforces() -> None:
    schemas = SPEC["components"]["schemas"]
    assert schemas["TargetUrl"]["pattern"] == validation.TARGET_URL.pattern
    assert schemas["BaseUrl"]["pattern"] == validation.BASE_URL.pattern
    assert schemas["BaseUrl"]["not"]["pattern"] == validation.NOT_VISIBLE_ASCII.pattern
    assert schemas["Username"]["not"]["pattern"] == validation.CONTROL_OR_SPACE.pattern
    headers = schemas["CustomHeaders"]
    assert headers["propertyNames"]["pattern"] == validation.HEADER_NAME.pattern
    assert headers["propertyNames"]["not"]["anyOf"][1]["pattern"] == (RESERVED_HEADER.pattern)
    assert headers["additionalProperties"]["pattern"] == validation.HEADER_VALUE.pattern
    assert headers["additionalProperties"]["not"]["pattern"] == (
        validation.HEADER_VALUE_FORBIDDEN.pattern
    )
    cursor = SPEC["components"]["parameters"]["Cursor"]["schema"]["pattern"]
    assert cursor == validation.CURSOR.pattern


def test_every_example_validates_against_its_schema() -> None:
    for name, schema in SPEC["components"]["schemas"].items():
        if "example" in schema:
            validator(f"#/components/schemas/{name}").validate(schema["example"])
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body and "example" in body:
                pointer = (
                    f"#/paths/{escape(path)}/{method}/requestBody/content/application~1json/schema"
                )
                validator(pointer).validate(body["example"])


def escape(path: str) -> str:
    return path.replace("~", "~0").replace("/", "~1")


def validator(pointer: str) -> jsonschema.protocols.Validator:
    return jsonschema.Draft202012Validator(
        {"$ref": f"{BASE}{pointer}"},
        registry=REGISTRY,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def resolve(node: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A response object and its JSON pointer, following `$ref`s."""
    pointer = ""
    while "$ref" in node:
        pointer = node["$ref"]
        node = SPEC
        for part in pointer.lstrip("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return pointer, node


def check(method: str, template: str, response: httpx.Response) -> None:
    """`response` is documented for this operation and its body validates."""
    operation = SPEC["paths"][template][method.lower()]
    status = str(response.status_code)
    assert status in operation["responses"], (method, template, status, response.text)
    pointer, documented = resolve(operation["responses"][status])
    if not pointer:
        pointer = f"#/paths/{escape(template)}/{method.lower()}/responses/{status}"
    content = documented.get("content")
    if content is None:
        assert response.content == b""
        return
    media_type = response.headers["content-type"].split(";")[0].strip()
    assert media_type in content, (method, template, media_type)
    if media_type.endswith("json"):
        validator(f"{pointer}/content/{escape(media_type)}/schema").validate(response.json())
    for header in documented.get("headers", {}):
        assert header.lower() in response.headers, (method, template, header)


class Walker:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.seen: set[tuple[str, str, str]] = set()

    async def __call__(
        self, method: str, template: str, expect: int, *, ids: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:  # fmt: skip
        path = template.format(**(ids or {}))
        response = await self.client.request(method, path, **kwargs)
        assert response.status_code == expect, (method, path, response.text)
        check(method, template, response)
        self.seen.add((template, method, str(expect)))
        return response


@pytest.fixture
def walk(client: httpx.AsyncClient) -> Walker:
    return Walker(client)


async def test_scripted_walk_matches_the_schemas(
    walk: Walker,
    anonymous: httpx.AsyncClient,
    receiver: tuple[Receiver, str],
    add_events: Callable[..., Any],
    store: Any,
) -> None:
    _, url = receiver
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.yaml"):
        await walk("GET", path, 200)

    for template in ("/v1/sources", "/v1/subscriptions", "/v1/events", "/v1/dead-letters"):
        await walk("GET", template, 200)
        await walk("GET", template, 422, params={"limit": "0"})
        check("GET", template, await anonymous.get(template))

    source = (
        await walk("POST", "/v1/sources", 201, json={"username": "u", "password": "p"})
    ).json()
    src = {"source_id": source["id"]}
    await walk("POST", "/v1/sources", 409, json={"username": "u", "password": "p"})
    await walk("POST", "/v1/sources", 422, json={"username": "u"})
    await walk(
        "POST", "/v1/sources", 400, content=b"{", headers={"content-type": "application/json"}
    )
    await walk("POST", "/v1/sources", 415, content=b"{}", headers={"content-type": "text/plain"})
    await walk(
        "POST",
        "/v1/sources",
        413,
        content=b" " * 70000,
        headers={"content-type": "application/json"},
    )
    await walk("GET", "/v1/sources/{source_id}", 200, ids=src)
    await walk("PATCH", "/v1/sources/{source_id}", 200, ids=src, json={"status": "paused"})
    await walk("PATCH", "/v1/sources/{source_id}", 422, ids=src, json={"status": "x"})
    await walk("GET", "/v1/sources", 200)

    created = await walk(
        "POST", "/v1/subscriptions", 201, json={"url": url, "headers": {"X-A": "1"}}
    )
    sub = {"subscription_id": created.json()["id"]}
    await walk("POST", "/v1/subscriptions", 422, json={"url": "ftp://x"})
    await walk("GET", "/v1/subscriptions", 200)
    await walk("GET", "/v1/subscriptions/{subscription_id}", 200, ids=sub)
    await walk(
        "PATCH", "/v1/subscriptions/{subscription_id}", 200, ids=sub, json={"description": "d"}
    )
    await walk("GET", "/v1/subscriptions/{subscription_id}/secret", 200, ids=sub)
    await walk("POST", "/v1/subscriptions/{subscription_id}/secret/rotate", 200, ids=sub)
    await walk(
        "POST",
        "/v1/subscriptions/{subscription_id}/secret/rotate",
        422,
        ids=sub,
        json={"overlap_seconds": -1},
    )
    await walk("POST", "/v1/subscriptions/{subscription_id}/test", 200, ids=sub)
    await walk("GET", "/v1/subscriptions/{subscription_id}/attempts", 200, ids=sub)
    await walk(
        "POST", "/v1/subscriptions/{subscription_id}/replay", 202, ids=sub, json={"since": 0}
    )
    await walk("POST", "/v1/subscriptions/{subscription_id}/replay", 422, ids=sub, json={})

    (event,) = await add_events(message("walk-1"))
    evt = {"event_id": event.id}
    await walk("GET", "/v1/events", 200, params={"type": "message.received"})
    await walk("GET", "/v1/events/{event_id}", 200, ids=evt)
    await walk("GET", "/v1/events/samples", 200, params={"format": "flat"})
    await walk("GET", "/v1/events/samples", 422, params={"format": "xml"})
    await walk("POST", "/v1/events/{event_id}/redeliver", 202, ids=evt)
    await walk(
        "POST",
        "/v1/events/{event_id}/redeliver",
        404,
        ids=evt,
        json={"subscription_id": "sub_no"},
    )

    dead = await store.dead_letters.add(
        event_id=event.id, subscription_id=sub["subscription_id"], attempts=4,
        last_error="HTTP 500", last_status_code=500, failed_at=1700000000,
    )  # fmt: skip
    dl = {"dead_letter_id": dead.id}
    deliveries = await walk("GET", "/v1/events/{event_id}/deliveries", 200, ids=evt)
    assert [row["state"] for row in deliveries.json()["data"]] == ["dead"]
    await walk("GET", "/v1/events/{event_id}/deliveries", 422, ids=evt, params={"x": "1"})
    await walk("GET", "/v1/events/{event_id}/attempts", 200, ids=evt)
    await walk("GET", "/v1/events/{event_id}/attempts", 404, ids={"event_id": "evt_no"})
    searched = await walk("GET", "/v1/events", 200, params={"document_id": "walk-1"})
    assert [e["id"] for e in searched.json()["data"]] == [event.id]
    await walk("GET", "/v1/events", 200, params={"phone": "61555879987", "since": 0})
    await walk("GET", "/v1/events", 422, params={"documentId": "walk-1"})
    await walk("GET", "/v1/events", 422, params={"until": "soon"})
    await walk(
        "GET", "/v1/subscriptions/{subscription_id}/attempts", 200, ids=sub,
        params={"outcome": "failed", "event_id": event.id},
    )  # fmt: skip
    await walk(
        "GET", "/v1/subscriptions/{subscription_id}/attempts", 422, ids=sub,
        params={"outcome": "maybe"},
    )  # fmt: skip
    await walk("GET", "/v1/dead-letters", 200)
    await walk("GET", "/v1/dead-letters/{dead_letter_id}", 200, ids=dl)
    await walk("POST", "/v1/dead-letters/{dead_letter_id}/retry", 202, ids=dl)
    await walk("POST", "/v1/dead-letters/{dead_letter_id}/retry", 404, ids=dl)
    await walk(
        "POST", "/v1/subscriptions/{subscription_id}/recover", 202, ids=sub, json={"since": 0}
    )
    await walk("POST", "/v1/subscriptions/{subscription_id}/recover", 422, ids=sub, json={})
    await store.dead_letters.add(
        event_id=event.id, subscription_id=sub["subscription_id"], attempts=4,
        last_error="HTTP 500", last_status_code=500, failed_at=1700000000,
    )  # fmt: skip
    await walk("POST", "/v1/dead-letters/retry", 202, json={"since": 1700000000})
    await walk("POST", "/v1/dead-letters/retry", 422, json={"since": "yesterday"})
    await walk("POST", "/v1/dead-letters/retry", 404, json={"subscription_id": "sub_no"})

    await walk(
        "PATCH", "/v1/subscriptions/{subscription_id}", 200, ids=sub, json={"enabled": False}
    )
    await walk(
        "POST", "/v1/subscriptions/{subscription_id}/replay", 409, ids=sub, json={"since": 0}
    )
    await walk("DELETE", "/v1/subscriptions/{subscription_id}", 204, ids=sub)
    await walk("DELETE", "/v1/sources/{source_id}", 204, ids=src)

    tenant = (await walk("POST", "/v1/tenants", 201, json={"name": "Acme"})).json()
    ten = {"tenant_id": tenant["id"]}
    await walk("GET", "/v1/tenants", 200)
    await walk("PATCH", "/v1/tenants/{tenant_id}", 200, ids=ten, json={"name": "Acme Ltd"})
    owned = {"username": "t", "password": "p", "tenant_id": tenant["id"]}
    owned_source = (await walk("POST", "/v1/sources", 201, json=owned)).json()
    await walk("DELETE", "/v1/tenants/{tenant_id}", 409, ids=ten)
    await walk("DELETE", "/v1/sources/{source_id}", 204, ids={"source_id": owned_source["id"]})
    key_body = {"name": "portal", "scopes": ["events:read"], "tenant_id": tenant["id"]}
    key = (await walk("POST", "/v1/keys", 201, json=key_body)).json()
    await walk("POST", "/v1/keys", 422, json={**key_body, "scopes": ["keys:write"]})
    await walk("GET", "/v1/keys", 200)
    await walk("GET", "/v1/keys/{key_id}", 200, ids={"key_id": key["id"]})
    await walk("DELETE", "/v1/keys/{key_id}", 204, ids={"key_id": key["id"]})
    await walk("GET", "/v1/audit-log", 200)
    await walk("GET", "/v1/tenants/{tenant_id}", 200, ids=ten)
    await walk("DELETE", "/v1/tenants/{tenant_id}", 204, ids=ten)
    for template, method in documented_operations():
        if "{" in template:
            names = re.findall(r"{(\w+)}", template)
            params = {name: "missing" for name in names}
            body = SPEC["paths"][template][method.lower()].get("requestBody", {})
            kwargs: dict[str, Any] = {}
            if body.get("required"):
                kwargs["json"] = body["content"]["application/json"]["example"]
            await walk(method, template, 404, ids=params, **kwargs)

    assert {(t, m) for t, m, _ in walk.seen} == documented_operations()
