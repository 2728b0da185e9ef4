"""The admin commands built on the search and recovery API of issue 17, against a live relay:
`relay events find --document-id/--phone/--from/--recipient/--since/--until`, `relay events
show` (each subscription's delivery) and `relay recover`.

NEEDS THE `search` BRANCH. Until it is merged the API ignores these `GET /v1/events` filters
and has neither `GET /v1/events/{id}/deliveries` nor `POST /v1/subscriptions/{id}/recover`,
so these tests fail on a branch without it, by design: they assert the real behaviour, not
today's. Merge this file with or after `search`.

Each test polls its own simulator account through its own source, with numbers and message
times no other test uses, so the shared live relay's other traffic cannot satisfy it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support import serve, wait_until_sync
from tests.workers.live_relay import LiveRelay
from tests.workers.test_admin_cli import Run, ok, ok_json, relay_cli
from workers.admin_cli import EXIT_REFUSED

__all__ = ["relay_cli"]  # the fixture, imported to be used here


def _number() -> str:
    """A phone number no other test sends from or to."""
    return "615" + "".join(secrets.choice("0123456789") for _ in range(8))


@dataclass(frozen=True)
class Account:
    """One simulator account polled by its own relay source."""

    relay: LiveRelay
    username: str
    source_id: str

    def send(self, **message: Any) -> str:
        """Put one message upstream (kind, from, recipient, text, timestamp?); its documentId."""
        response = httpx.post(
            f"{self.relay.simulator_url}/_sim/messages",
            json={"username": self.username, "messages": [message]},
        )
        response.raise_for_status()
        return str(response.json()["documentIds"][0])

    def events(self) -> list[dict[str, Any]]:
        """This source's stored events, newest first (the unfiltered feed of main)."""
        response = httpx.get(
            f"{self.relay.url}/v1/events",
            params={"source_id": self.source_id, "limit": 100},
            headers=self.relay.auth,
        )
        response.raise_for_status()
        return list(response.json()["data"])

    def wait_for(self, document_ids: list[str]) -> dict[str, str]:
        """documentId -> event id, once every one of them is polled and stored."""
        found: dict[str, str] = {}

        def stored() -> bool:
            found.clear()
            found.update({e["payload"]["data"]["documentId"]: e["id"] for e in self.events()})
            return set(document_ids) <= set(found)

        wait_until_sync(stored, timeout_s=30, what=f"{len(document_ids)} SMS to be polled")
        return {document_id: found[document_id] for document_id in document_ids}


@pytest.fixture
def account(live_relay: LiveRelay, relay_cli: Run) -> Account:
    username = f"search-{secrets.token_hex(4)}@cli"
    httpx.post(
        f"{live_relay.simulator_url}/_sim/accounts",
        json={"username": username, "password": "pw"},
    ).raise_for_status()
    source = ok_json(
        relay_cli, "sources", "add", "--username", username, "--password", "pw",
        "--base-url", live_relay.simulator_url, "--poll-interval", "0.2", "--start-from", "0",
    )  # fmt: skip
    return Account(relay=live_relay, username=username, source_id=source["id"])


@dataclass
class Receiver:
    """A subscriber on loopback answering 204, recording each webhook-id it got."""

    url: str
    ids: list[str]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    ids: list[str] = []

    async def hook(request: Request) -> Response:
        await request.body()
        ids.append(request.headers["webhook-id"])
        return Response(status_code=204)

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    with serve(app) as base_url:
        yield Receiver(url=f"{base_url}/hook", ids=ids)


def _found_ids(run: Run, *argv: str) -> list[str]:
    return [event["id"] for event in ok_json(run, "events", "find", *argv)["data"]]


def test_events_find_by_document_id_returns_only_that_message(
    relay_cli: Run, account: Account
) -> None:
    sender = _number()
    wanted = account.send(kind="incoming", **{"from": sender}, recipient=_number(), text="one")
    other = account.send(kind="incoming", **{"from": sender}, recipient=_number(), text="two")
    events = account.wait_for([wanted, other])

    assert _found_ids(relay_cli, "--document-id", wanted) == [events[wanted]]
    table = ok(relay_cli, "events", "find", "--document-id", wanted).splitlines()
    assert table[0].split()[:3] == ["ID", "TYPE", "TIMESTAMP"] and len(table) == 2
    assert table[1].startswith(events[wanted]) and sender in table[1] and "one" in table[1]
    assert _found_ids(relay_cli, "--document-id", "0" * 24) == []
    assert ok(relay_cli, "events", "find", "--document-id", "0" * 24).strip() == "(none)"


def test_events_find_by_phone_matches_either_number_and_from_recipient_each_one(
    relay_cli: Run, account: Account
) -> None:
    phone, other = _number(), _number()
    sent_by = account.send(kind="incoming", **{"from": phone}, recipient=other, text="a")
    sent_to = account.send(kind="incoming", **{"from": other}, recipient=phone, text="b")
    unrelated = account.send(kind="incoming", **{"from": other}, recipient=other, text="c")
    events = account.wait_for([sent_by, sent_to, unrelated])

    newest_first = [events[sent_to], events[sent_by]]
    assert _found_ids(relay_cli, "--phone", phone) == newest_first
    assert _found_ids(relay_cli, "--from", phone) == [events[sent_by]]
    assert _found_ids(relay_cli, "--recipient", phone) == [events[sent_to]]
    assert _found_ids(relay_cli, "--phone", phone, "--type", "message.sent") == []
    lines = ok(relay_cli, "events", "find", "--phone", phone).splitlines()[1:]
    assert [line.split()[0] for line in lines] == newest_first


def test_events_find_since_until_bound_the_message_time_inclusively(
    relay_cli: Run, account: Account
) -> None:
    # Message times in 2020, a second no other test's message has.
    start = 1_600_000_000 + secrets.randbelow(1_000_000) * 1000
    number = _number()
    ids = [
        account.send(kind="incoming", **{"from": number}, text=f"t{i}", timestamp=start + 100 * i)
        for i in range(3)
    ]
    events = account.wait_for(ids)

    window = ("--since", str(start + 100), "--until", str(start + 200))
    assert _found_ids(relay_cli, *window) == [events[ids[2]], events[ids[1]]]
    iso_until = _iso(start + 199)
    assert _found_ids(relay_cli, "--since", _iso(start), "--until", iso_until) == [
        events[ids[1]],
        events[ids[0]],
    ]
    assert _found_ids(relay_cli, "--since", str(start + 201), "--until", str(start + 299)) == []
    text = ok(relay_cli, "events", "find", *window)
    assert events[ids[0]] not in text and events[ids[1]] in text and events[ids[2]] in text


def _iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _deliveries(run: Run, event_id: str) -> dict[str, dict[str, Any]]:
    rows = ok_json(run, "events", "show", event_id)["deliveries"]
    assert rows is not None, "this relay has no GET /v1/events/{id}/deliveries (the search API)"
    return {row["subscription_id"]: row for row in rows}


def test_events_show_lists_each_subscriptions_delivery(
    relay_cli: Run, account: Account, receiver: Receiver
) -> None:
    good = ok_json(
        relay_cli, "subscriptions", "add", receiver.url, "--source-id", account.source_id
    )
    bad = ok_json(
        relay_cli, "subscriptions", "add", "http://127.0.0.1:9/x", "--source-id", account.source_id
    )
    document_id = account.send(kind="incoming", **{"from": _number()}, text="deliveries")
    event_id = account.wait_for([document_id])[document_id]
    wait_until_sync(lambda: event_id in receiver.ids, timeout_s=30, what="the good delivery")
    wait_until_sync(
        lambda: _deliveries(relay_cli, event_id).get(bad["id"], {}).get("attempts", 0) >= 1,
        timeout_s=30,
        what="a failed attempt to the bad subscription",
    )

    rows = _deliveries(relay_cli, event_id)
    assert set(rows) == {good["id"], bad["id"]}  # only the subscriptions it went to
    assert rows[good["id"]]["state"] == "delivered" and rows[good["id"]]["attempts"] == 1
    assert rows[good["id"]]["last_status_code"] == 204 and rows[good["id"]]["url"] == receiver.url
    assert rows[bad["id"]]["state"] in ("retrying", "pending", "dead")

    text = ok(relay_cli, "events", "show", event_id)
    assert "deliveries:\nSUBSCRIPTION_ID" in text
    [good_line] = [line for line in text.splitlines() if line.startswith(good["id"])]
    assert good_line.split()[1:4] == ["delivered", "1", "204"]
    assert bad["id"] in text and "not available" not in text


def test_recover_redelivers_only_what_did_not_get_through(
    relay_cli: Run, account: Account, receiver: Receiver
) -> None:
    start = 1_500_000_000 + secrets.randbelow(1_000_000) * 1000
    number = _number()
    before = account.send(kind="incoming", **{"from": number}, text="before", timestamp=start)
    account.wait_for([before])  # stored before the subscription exists: never delivered to it
    sub = ok_json(relay_cli, "subscriptions", "add", receiver.url, "--source-id", account.source_id)
    after = account.send(kind="incoming", **{"from": number}, text="after", timestamp=start + 1)
    events = account.wait_for([before, after])
    wait_until_sync(lambda: events[after] in receiver.ids, timeout_s=30, what="live delivery")

    window = ("--since", str(start), "--until", str(start + 1))
    out = ok(relay_cli, "recover", sub["id"], *window)
    assert out.strip() == f"queued 1 undelivered event to {sub['id']}"  # `after` is skipped
    wait_until_sync(
        lambda: _deliveries(relay_cli, events[before])[sub["id"]]["state"] == "delivered",
        timeout_s=30,
        what="the recovered delivery",
    )
    assert events[before] in receiver.ids and receiver.ids.count(events[after]) == 1

    assert ok_json(relay_cli, "recover", sub["id"], *window) == {"queued": 0}  # all delivered


def test_recover_refuses_an_unknown_subscription_readably(relay_cli: Run) -> None:
    for extra in ((), ("--json",)):
        code, out, err = relay_cli("recover", "sub_missing", "--since", "0", *extra)
        assert code == EXIT_REFUSED and out == ""
        assert err.strip() == "relay: 404 Not Found: subscription sub_missing not found"
