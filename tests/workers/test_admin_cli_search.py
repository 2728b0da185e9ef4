"""`relay events find` by documentId and number, `relay events show` with the deliveries, and
`relay recover`, against a live `relay dev` (its fixtures are those of test_admin_cli)."""

from __future__ import annotations

import time

import httpx

from tests.support import wait_until_sync
from tests.workers.live_relay import LiveRelay
from tests.workers.test_admin_cli import Run, ok, ok_json, relay_cli
from workers.admin_cli import EXIT_REFUSED, EXIT_USAGE

__all__ = ["relay_cli"]  # the fixture, used by name


def _state(live_relay: LiveRelay, event_id: str, subscription_id: str) -> str | None:
    rows = httpx.get(
        f"{live_relay.url}/v1/events/{event_id}/deliveries", headers=live_relay.auth
    ).json()["data"]
    return next((r["state"] for r in rows if r["subscription_id"] == subscription_id), None)


def test_find_a_message_then_recover_its_dead_delivery(
    relay_cli: Run, live_relay: LiveRelay
) -> None:
    since = int(time.time()) - 5
    refused = ok_json(relay_cli, "subscriptions", "add", "http://127.0.0.1:9/recover")
    document_id = live_relay.add_sms(
        kind="incoming", **{"from": "61555000999"}, recipient="61500000333", text=" recover me"
    )

    def found() -> list[dict[str, object]]:
        answer = ok_json(relay_cli, "events", "find", "--document-id", document_id)
        return list(answer["data"])

    wait_until_sync(lambda: len(found()) == 1, timeout_s=30, what="the SMS to be polled")
    (event,) = found()
    by_number = ok(relay_cli, "events", "find", "--phone", "61555000999")
    assert str(event["id"]) in by_number and " recover me" in by_number
    assert ok_json(relay_cli, "events", "find", "--from", "61500000333")["data"] == []

    # dev retries 1, 2 and 4 s apart: then the delivery is a dead letter.
    wait_until_sync(
        lambda: _state(live_relay, str(event["id"]), refused["id"]) == "dead",
        timeout_s=40,
        what="the refused delivery to be dead",
    )
    shown = ok(relay_cli, "events", "show", str(event["id"]))
    assert refused["id"] in shown and "dead" in shown

    out = ok(relay_cli, "recover", refused["id"], "--since", str(since))
    assert out.strip() == f"queued 1 undelivered events to {refused['id']}"
    dead_letters = ok_json(relay_cli, "dead-letters", "list", "--limit", "100")["data"]
    assert (event["id"], refused["id"]) not in {
        (d["event_id"], d["subscription_id"]) for d in dead_letters
    }
    code, _, err = relay_cli("recover", "sub_missing", "--since", "0")
    assert code == EXIT_REFUSED and "404" in err
    code, _, err = relay_cli("recover", refused["id"])
    assert code == EXIT_USAGE and "--since" in err
