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
import time
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
from workers.admin_cli import EXIT_REFUSED, EXIT_USAGE

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
    """A subscriber on loopback recording the webhook-id of each SMS it accepted (204);
    it answers 500 to an SMS whose text is in `refused`."""

    url: str
    ids: list[str]
    refused: set[str]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    ids: list[str] = []
    refused: set[str] = set()

    async def hook(request: Request) -> Response:
        body = await request.json()
        if body.get("data", {}).get("text") in refused:
            return Response(status_code=500)
        ids.append(request.headers["webhook-id"])
        return Response(status_code=204)

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    with serve(app) as base_url:
        yield Receiver(url=f"{base_url}/hook", ids=ids, refused=refused)


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
    now = int(time.time())  # one second apart, so "newest first" has one answer
    sent_by = account.send(
        kind="incoming", **{"from": phone}, recipient=other, text="a", timestamp=now - 2
    )
    sent_to = account.send(
        kind="incoming", **{"from": other}, recipient=phone, text="b", timestamp=now - 1
    )
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
    elsewhere = ok_json(
        relay_cli, "subscriptions", "add", receiver.url, "--source-id", account.source_id,
        "--event-type", "message.sent",
    )  # fmt: skip
    document_id = account.send(kind="incoming", **{"from": _number()}, text="deliveries")
    event_id = account.wait_for([document_id])[document_id]
    wait_until_sync(lambda: event_id in receiver.ids, timeout_s=30, what="the good delivery")
    wait_until_sync(
        lambda: _deliveries(relay_cli, event_id).get(bad["id"], {}).get("attempts", 0) >= 1,
        timeout_s=30,
        what="a failed attempt to the bad subscription",
    )

    rows = _deliveries(relay_cli, event_id)
    assert {good["id"], bad["id"]} <= set(rows)  # with dev's demo receiver, subscribed to all
    assert elsewhere["id"] not in rows  # only the subscriptions it went to
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

    def send(text: str, offset_s: int) -> str:
        return account.send(
            kind="incoming", **{"from": number}, text=text, timestamp=start + offset_s
        )

    older = send("older", 0)
    account.wait_for([older])  # stored before the subscription: replay's, not recover's
    sub = ok_json(relay_cli, "subscriptions", "add", receiver.url, "--source-id", account.source_id)
    receiver.refused.add("refused")
    delivered, refused = send("delivered", 1), send("refused", 2)
    events = account.wait_for([older, delivered, refused])
    wait_until_sync(lambda: events[delivered] in receiver.ids, timeout_s=30, what="delivery")
    wait_until_sync(  # dev retries 1, 2 and 4 s apart
        lambda: _deliveries(relay_cli, events[refused])[sub["id"]]["state"] == "dead",
        timeout_s=60,
        what="the refused delivery to be dead",
    )

    receiver.refused.clear()  # the endpoint is fixed
    window = ("--since", str(start), "--until", str(start + 2))
    out = ok(relay_cli, "recover", sub["id"], *window)
    assert out.strip() == f"queued 1 undelivered event to {sub['id']}"
    wait_until_sync(
        lambda: _deliveries(relay_cli, events[refused])[sub["id"]]["state"] == "delivered",
        timeout_s=30,
        what="the recovered delivery",
    )
    assert receiver.ids.count(events[refused]) == 1 and receiver.ids.count(events[delivered]) == 1
    assert events[older] not in receiver.ids
    assert ok_json(relay_cli, "recover", sub["id"], *window) == {"queued": 0}  # all delivered


def test_recover_refuses_an_unknown_subscription_readably(relay_cli: Run) -> None:
    for extra in ((), ("--json",)):
        code, out, err = relay_cli("recover", "sub_missing", "--since", "0", *extra)
        assert code == EXIT_REFUSED and out == ""
        assert err.strip() == "relay: 404 Not Found: subscription sub_missing not found"


# From the search branch's own version of this file (commit 93a87c8), kept here so the two
# merge into one: a message found by number, its delivery dead, then recovered. Here on a
# source of its own, so the recovered window holds no other test's messages.
def _state(live_relay: LiveRelay, event_id: str, subscription_id: str) -> str | None:
    rows = httpx.get(
        f"{live_relay.url}/v1/events/{event_id}/deliveries", headers=live_relay.auth
    ).json()["data"]
    return next((r["state"] for r in rows if r["subscription_id"] == subscription_id), None)


def test_find_a_message_then_recover_its_dead_delivery(
    relay_cli: Run, live_relay: LiveRelay, account: Account
) -> None:
    since = int(time.time()) - 5
    refused = ok_json(
        relay_cli, "subscriptions", "add", "http://127.0.0.1:9/recover",
        "--source-id", account.source_id,
    )  # fmt: skip
    sender, recipient = _number(), _number()
    document_id = account.send(
        kind="incoming", **{"from": sender}, recipient=recipient, text=" recover me"
    )

    def found() -> list[dict[str, object]]:
        answer = ok_json(relay_cli, "events", "find", "--document-id", document_id)
        return list(answer["data"])

    wait_until_sync(lambda: len(found()) == 1, timeout_s=30, what="the SMS to be polled")
    (event,) = found()
    by_number = ok(relay_cli, "events", "find", "--phone", sender)
    assert str(event["id"]) in by_number and " recover me" in by_number
    assert ok_json(relay_cli, "events", "find", "--from", recipient)["data"] == []

    # dev retries 1, 2 and 4 s apart: then the delivery is a dead letter.
    wait_until_sync(
        lambda: _state(live_relay, str(event["id"]), refused["id"]) == "dead",
        timeout_s=40,
        what="the refused delivery to be dead",
    )
    shown = ok(relay_cli, "events", "show", str(event["id"]))
    assert refused["id"] in shown and "dead" in shown

    out = ok(relay_cli, "recover", refused["id"], "--since", str(since))
    assert out.strip() == f"queued 1 undelivered event to {refused['id']}"
    dead_letters = ok_json(relay_cli, "dead-letters", "list", "--limit", "100")["data"]
    assert (event["id"], refused["id"]) not in {
        (d["event_id"], d["subscription_id"]) for d in dead_letters
    }
    code, _, err = relay_cli("recover", refused["id"])
    assert code == EXIT_USAGE and "--since" in err
