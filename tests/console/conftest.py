"""Fixtures for the web console: the real app over a real Redis (the admin API's fixtures),
an HTTPS-addressed client (the session cookie is Secure) and a logged-in console client."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from starlette.applications import Starlette

from tests.api.conftest import (  # noqa: F401  (fixtures shared with the API tests)
    TOKEN,
    add_events,
    api_settings,
    app,
    receiver,
    store,
)

BASE_URL = "https://relay.test"
ORIGIN = {"Origin": BASE_URL}
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = _CSRF.search(html)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)


@dataclass
class Console:
    """A logged-in browser-like client: posts forms with the session's CSRF token."""

    http: httpx.AsyncClient
    csrf: str

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(path)

    async def post(
        self, path: str, data: dict[str, str] | None = None, **kw: object
    ) -> httpx.Response:
        fields = {"csrf": self.csrf, **(data or {})}
        return await self.http.post(path, data=fields, headers=ORIGIN, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def browser(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    """An anonymous client that keeps cookies, addressed over HTTPS like a real deployment."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield http


async def log_in(http: httpx.AsyncClient, token: str = TOKEN) -> httpx.Response:
    return await http.post("/ui/login", data={"token": token, "next": "/ui/"}, headers=ORIGIN)


@pytest.fixture
async def console(browser: httpx.AsyncClient) -> Console:
    response = await log_in(browser)
    assert response.status_code == 303, response.text
    page = await browser.get("/ui/")
    assert page.status_code == 200
    return Console(browser, csrf_of(page.text))
