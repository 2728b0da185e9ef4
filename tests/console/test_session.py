"""Console login, logout, cookie flags, CSRF and Origin checks, against the real app and Redis."""

from __future__ import annotations

import hashlib

import httpx
import redis.asyncio

from relay.settings import Settings
from relay.store import Store
from tests.api.conftest import SECOND_TOKEN, TOKEN
from tests.console.conftest import ORIGIN, Console, csrf_of, log_in


def _set_cookie(response: httpx.Response) -> str:
    return response.headers["set-cookie"]


async def test_login_with_a_valid_token_sets_a_secure_httponly_strict_session_cookie(
    browser: httpx.AsyncClient,
) -> None:
    response = await log_in(browser)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/"
    cookie = _set_cookie(response)
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"secure", "httponly", "samesite=strict", "path=/ui"} <= flags
    assert TOKEN not in cookie


async def test_every_configured_token_logs_in(browser: httpx.AsyncClient) -> None:
    assert (await log_in(browser, SECOND_TOKEN)).status_code == 303


async def test_a_wrong_token_is_refused_without_a_cookie(browser: httpx.AsyncClient) -> None:
    response = await log_in(browser, "not-the-token")
    assert response.status_code == 401
    assert "That token is not valid." in response.text
    assert "set-cookie" not in response.headers
    assert (await browser.get("/ui/")).status_code == 303


async def test_the_session_id_is_stored_hashed_with_a_ttl(
    browser: httpx.AsyncClient, aredis: redis.asyncio.Redis, api_settings: Settings, store: Store
) -> None:
    response = await log_in(browser)
    session_id = _set_cookie(response).split(";")[0].split("=", 1)[1]
    key = store.keys.ui_session(hashlib.sha256(session_id.encode()).hexdigest())
    assert await aredis.exists(key) == 1
    assert 0 < await aredis.ttl(key) <= 8 * 3600
    assert await aredis.exists(store.keys.ui_session(session_id)) == 0


async def test_pages_redirect_to_login_without_a_session(browser: httpx.AsyncClient) -> None:
    response = await browser.get("/ui/subscriptions?cursor=x")
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login?next=%2Fui%2Fsubscriptions%3Fcursor%3Dx"


async def test_login_returns_to_the_page_asked_for_but_never_off_site(
    browser: httpx.AsyncClient,
) -> None:
    for target, expected in (
        ("/ui/events", "/ui/events"),
        ("https://evil.example/", "/ui/"),
        ("//evil.example/ui/", "/ui/"),
        ("/ui//evil.example", "/ui/"),
    ):
        response = await browser.post(
            "/ui/login", data={"token": TOKEN, "next": target}, headers=ORIGIN
        )
        assert response.headers["location"] == expected, target


async def test_logout_ends_the_session_server_side(console: Console) -> None:
    cookie = console.http.cookies.get("relay_console")
    response = await console.post("/ui/logout")
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login?done=logged-out"
    assert 'relay_console=""' in _set_cookie(response) or "Max-Age=0" in _set_cookie(response)
    # Replaying the old cookie does not get back in.
    console.http.cookies.set("relay_console", cookie or "", domain="relay.test", path="/ui")
    assert (await console.get("/ui/")).status_code == 303


async def test_a_post_without_the_csrf_token_changes_nothing(
    console: Console, store: Store
) -> None:
    for csrf in ("", "forged"):
        response = await console.http.post(
            "/ui/sources",
            data={"csrf": csrf, "username": "u", "password": "p"},
            headers=ORIGIN,
        )
        assert response.status_code == 403
        assert "stale or came from another site" in response.text
    assert (await store.sources.page(limit=10, cursor=None)).items == ()


async def test_a_post_from_another_origin_is_refused_even_with_the_token(
    console: Console, store: Store
) -> None:
    response = await console.http.post(
        "/ui/sources",
        data={"csrf": console.csrf, "username": "u", "password": "p"},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert (await store.sources.page(limit=10, cursor=None)).items == ()


async def test_login_from_another_origin_is_refused(browser: httpx.AsyncClient) -> None:
    response = await browser.post(
        "/ui/login", data={"token": TOKEN}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


async def test_each_session_has_its_own_csrf_token(
    console: Console, browser: httpx.AsyncClient
) -> None:
    await log_in(browser)  # a second login in the same client: a new session
    page = await browser.get("/ui/")
    assert csrf_of(page.text) != console.csrf


async def test_a_plain_http_non_local_address_warns_that_the_cookie_will_be_dropped(
    app: object,
) -> None:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://10.1.2.3:8080") as http:
        assert "browsers will not keep" in (await http.get("/ui/login")).text
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080") as http:
        assert "browsers will not keep" not in (await http.get("/ui/login")).text
