"""The `relay` admin commands against a live relay (`relay dev`): text and --json output,
problem+json details as readable errors, exit codes, --help everywhere. Commands run
in-process (`main`), talking HTTP to the live API; one runs as the installed console script."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from tests.support import free_port, serve, wait_until_sync
from tests.workers.live_relay import LiveRelay
from workers import cli
from workers.admin_cli import EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def relay_cli(
    live_relay: LiveRelay, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Run:
    """`relay_cli("sources", "list")` -> (exit code, stdout, stderr)."""
    monkeypatch.setenv("RELAY_URL", live_relay.url)
    monkeypatch.setenv("RELAY_TOKEN", live_relay.token)

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            cli.main(list(argv))
        out, err = capsys.readouterr()
        return int(exit_info.value.code or 0), out, err

    return run


def ok(run: Run, *argv: str) -> str:
    code, out, err = run(*argv)
    assert code == 0, err
    return out


def ok_json(run: Run, *argv: str) -> Any:
    return json.loads(ok(run, *argv, "--json"))


@pytest.fixture(scope="module")
def sms_event(live_relay: LiveRelay) -> Iterator[dict[str, Any]]:
    """A live incoming SMS, polled from the simulator into an event."""
    document_id = live_relay.add_sms(
        kind="incoming", **{"from": "61555000111"}, recipient="61500000222", text=" cli test"
    )

    def stored() -> dict[str, Any] | None:
        feed = httpx.get(f"{live_relay.url}/v1/events", headers=live_relay.auth).json()
        found = [e for e in feed["data"] if e["payload"]["data"]["documentId"] == document_id]
        return found[0] if found else None

    wait_until_sync(lambda: stored() is not None, timeout_s=30, what="the SMS to be polled")
    event = stored()
    assert event is not None
    yield event


def test_sources_add_list_pause_resume(relay_cli: Run) -> None:
    out = ok(relay_cli, "sources", "add", "--username", "acct@cli", "--password", "pw")
    assert "acct@cli" in out and "pw" not in out.split()
    created = ok_json(relay_cli, "sources", "add", "--username", "acct2@cli", "--password", "pw")
    assert created["username"] == "acct2@cli" and "password" not in created

    listing = ok(relay_cli, "sources", "list")
    assert listing.splitlines()[0].split()[:3] == ["ID", "USERNAME", "STATUS"]
    assert created["id"] in listing
    assert created["id"] in [s["id"] for s in ok_json(relay_cli, "sources", "list")["data"]]

    assert ok(relay_cli, "sources", "pause", created["id"]).strip().endswith("paused")
    assert ok_json(relay_cli, "sources", "resume", created["id"])["status"] == "ok"
    assert ok_json(relay_cli, "sources", "pause", created["id"])["status"] == "paused"


def test_sources_add_reads_the_password_from_stdin(
    relay_cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO("secret-pw\n"))
    created = ok_json(relay_cli, "sources", "add", "--username", "stdin@cli", "--password-stdin")
    assert created["username"] == "stdin@cli"


def test_sources_errors_are_readable_with_exit_codes(relay_cli: Run) -> None:
    code, out, err = relay_cli("sources", "pause", "src_missing")
    assert code == EXIT_REFUSED and out == ""
    assert err.startswith("relay: 404 Not Found: ") and "src_missing" in err
    code, _, err = relay_cli(
        "sources", "add", "--username", "x@cli", "--password", "p", "--poll-interval", "-1"
    )
    assert code == EXIT_REFUSED and "422" in err and "poll_interval" in err
    code, _, err = relay_cli("sources", "add", "--username", "x@cli")
    assert code == EXIT_USAGE and "--password" in err


def test_subscriptions_add_list_show_disable_enable_rotate(
    relay_cli: Run, live_relay: LiveRelay
) -> None:
    url = "http://127.0.0.1:9/hook"
    out = ok(
        relay_cli, "subscriptions", "add", url, "--event-type", "message.received",
        "--header", "X-Team: ops", "--payload-format", "flat", "--description", "cli",
    )  # fmt: skip
    assert "whsec_" in out and "flat" in out
    created = ok_json(relay_cli, "subscriptions", "add", url)
    sub_id = created["id"]
    assert created["secret"].startswith("whsec_") and created["payload_format"] == "standard"

    assert sub_id in ok(relay_cli, "subscriptions", "list")
    assert sub_id in [s["id"] for s in ok_json(relay_cli, "subscriptions", "list")["data"]]
    shown = ok(relay_cli, "subscriptions", "show", sub_id)
    assert url in shown and "latest attempts:" in shown and "whsec_" not in shown
    assert ok_json(relay_cli, "subscriptions", "show", sub_id)["id"] == sub_id

    assert ok(relay_cli, "subscriptions", "disable", sub_id).strip().endswith("disabled")
    assert ok_json(relay_cli, "subscriptions", "enable", sub_id)["enabled"] is True
    assert ok_json(relay_cli, "subscriptions", "disable", sub_id)["enabled"] is False

    rotated = ok(relay_cli, "subscriptions", "rotate", sub_id, "--overlap-seconds", "60")
    assert "new secret  whsec_" in rotated
    new_secret = ok_json(relay_cli, "subscriptions", "rotate", sub_id)["secret"]
    current = httpx.get(
        f"{live_relay.url}/v1/subscriptions/{sub_id}/secret", headers=live_relay.auth
    ).json()
    assert current["secret"] == new_secret


def test_subscriptions_add_with_an_idempotency_key_creates_one(relay_cli: Run) -> None:
    argv = ("subscriptions", "add", "http://127.0.0.1:9/idem", "--idempotency-key", "cli-k1")
    first, again = ok_json(relay_cli, *argv), ok_json(relay_cli, *argv)
    assert first["id"] == again["id"]


def test_subscriptions_errors_list_field_details(relay_cli: Run) -> None:
    code, _, err = relay_cli("subscriptions", "add", "ftp://example.com/x")
    assert code == EXIT_REFUSED and err.startswith("relay: 422 Unprocessable Content: url")
    code, _, err = relay_cli("subscriptions", "show", "sub_missing", "--json")
    assert code == EXIT_REFUSED and "404 Not Found: subscription sub_missing not found" in err
    code, _, err = relay_cli("subscriptions", "add", "http://x", "--header", "novalue")
    assert code == EXIT_USAGE and "NAME:VALUE" in err


def test_events_find_and_show(relay_cli: Run, sms_event: dict[str, Any]) -> None:
    found = ok(relay_cli, "events", "find", "--type", "message.received")
    assert sms_event["id"] in found and "61555000111" in found and " cli test" in found
    rows = ok_json(relay_cli, "events", "find", "--type", "message.received", "--limit", "100")
    assert sms_event["id"] in [e["id"] for e in rows["data"]]

    shown = ok(relay_cli, "events", "show", sms_event["id"])
    assert sms_event["id"] in shown and "61500000222" in shown and "deliveries" in shown
    as_json = ok_json(relay_cli, "events", "show", sms_event["id"])
    assert as_json["payload"]["data"]["from"] == "61555000111" and "deliveries" in as_json

    code, _, err = relay_cli("events", "show", "evt_missing")
    assert code == EXIT_REFUSED and "404" in err
    code, _, err = relay_cli("events", "find", "--since", "yesterday")
    assert code == EXIT_USAGE and "ISO 8601" in err


def test_replay_queues_the_window(relay_cli: Run, sms_event: dict[str, Any]) -> None:
    sub = ok_json(relay_cli, "subscriptions", "add", "http://127.0.0.1:9/replay")
    since = str(sms_event["timestamp"])
    out = ok(relay_cli, "replay", sub["id"], "--since", since, "--until", since)
    assert out.strip() == f"queued 1 delivery to {sub['id']}"
    answer = ok_json(relay_cli, "replay", sub["id"], "--since", "1970-01-01T00:00:00Z")
    assert answer["queued"] >= 1
    code, _, err = relay_cli("replay", "sub_missing", "--since", "0")
    assert code == EXIT_REFUSED and "404" in err
    code, _, err = relay_cli("replay", sub["id"])
    assert code == EXIT_USAGE and "--since" in err


def test_dead_letters_list_and_retry(relay_cli: Run) -> None:
    listing = ok(relay_cli, "dead-letters", "list")
    assert listing.startswith("ID") or listing.strip() == "(none)"
    assert isinstance(ok_json(relay_cli, "dead-letters", "list")["data"], list)
    code, _, err = relay_cli("dead-letters", "retry", "dl_missing")
    assert code == EXIT_REFUSED and "404 Not Found" in err
    code, _, err = relay_cli("dead-letters", "retry", "dl_x", "--subscription-id", "sub_x")
    assert code == EXIT_USAGE and "not both" in err


def test_connection_errors_exit_codes(relay_cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = relay_cli("sources", "list", "--token", "wrong")
    assert code == EXIT_REFUSED and err.startswith("relay: 401 Unauthorized")
    port = free_port()
    code, _, err = relay_cli("sources", "list", "--url", f"http://op:pw-in-url@127.0.0.1:{port}")
    assert code == EXIT_UNREACHABLE and f"cannot reach relay at http://127.0.0.1:{port}" in err
    assert "pw-in-url" not in err
    monkeypatch.delenv("RELAY_TOKEN")
    code, _, err = relay_cli("sources", "list")
    assert code == EXIT_USAGE and "RELAY_TOKEN" in err


def test_a_url_that_is_not_the_api_is_said_so(relay_cli: Run, live_relay: LiveRelay) -> None:
    # The console redirects to its login page; a web page answers 200 with HTML.
    code, out, err = relay_cli("sources", "list", "--url", f"{live_relay.url}/ui")
    assert code == EXIT_UNREACHABLE and out == "" and "Traceback" not in err
    assert err.startswith(f"relay: {live_relay.url}/ui/v1/sources answered 303 See Other (to ")
    assert "is RELAY_URL (--url) the API's base URL" in err and live_relay.token not in err

    async def page(request: Request) -> Response:
        return HTMLResponse("<html>a web site</html>")

    with serve(Starlette(routes=[Route("/{path:path}", page)])) as site:
        with_userinfo = site.replace("http://", "http://op:pw-in-url@")
        code, out, err = relay_cli("keys", "list", "--json", "--url", with_userinfo)
    assert code == EXIT_UNREACHABLE and out == "" and "pw-in-url" not in err
    assert "answered 200 OK (text/html; charset=utf-8), not the relay admin API's JSON" in err


def _leaf_commands() -> list[list[str]]:
    """Every admin command path, e.g. ["subscriptions", "rotate"]."""
    admin = {"sources", "subscriptions", "events", "replay", "recover", "dead-letters", "keys"}

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> Iterator[list[str]]:
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subparsers:
            yield path
        for action in subparsers:
            for name, child in action.choices.items():
                if path or name in admin:
                    yield from walk(child, [*path, name])

    return list(walk(cli._parser(), []))


def test_every_admin_command_has_help(relay_cli: Run) -> None:
    commands = _leaf_commands()
    assert len(commands) == 19  # sources 4, subscriptions 6, events 2, replay, recover, ...
    for group in ("sources", "subscriptions", "events", "dead-letters", "keys"):
        code, out, _ = relay_cli(group, "--help")
        assert code == 0 and out.startswith(f"usage: relay {group}"), group
    for command in commands:
        code, out, _ = relay_cli(*command, "--help")
        assert code == 0 and out.startswith("usage: relay " + " ".join(command)), command
        assert "--json" in out and "--token" in out, command


def test_console_script_runs_the_admin_commands(live_relay: LiveRelay) -> None:
    env = {"RELAY_URL": live_relay.url, "RELAY_TOKEN": live_relay.token, "PATH": ""}
    script = Path(sys.executable).with_name("relay")  # what pyproject's [project.scripts] made
    assert script.exists(), f"{script}: install the package (make .venv/.installed)"
    result = subprocess.run(
        [str(script), "subscriptions", "list", "--json"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "data" in json.loads(result.stdout)


def test_dead_letters_retry_many_by_subscription(relay_cli: Run) -> None:
    sub = ok_json(relay_cli, "subscriptions", "add", "http://127.0.0.1:9/bulk")
    out = ok(relay_cli, "dead-letters", "retry", "--subscription-id", sub["id"])
    assert out.strip() == "queued 0 deliveries again"
    since = ("--since", "2023-11-14T22:13:20Z")  # other tests' dead letters are not its
    by_both = ("--subscription-id", sub["id"], *since)
    assert ok_json(relay_cli, "dead-letters", "retry", *by_both) == {"queued": 0}
    code, _, err = relay_cli("dead-letters", "retry", "--subscription-id", "sub_missing")
    assert code == EXIT_REFUSED and "404 Not Found: subscription sub_missing not found" in err


def test_emergency_rotation_says_when_earlier_secrets_stop(relay_cli: Run) -> None:
    sub = ok_json(relay_cli, "subscriptions", "add", "http://127.0.0.1:9/rotate")
    ok(relay_cli, "subscriptions", "rotate", sub["id"], "--overlap-seconds", "3600")
    out = ok(relay_cli, "subscriptions", "rotate", sub["id"], "--overlap-seconds", "0")
    assert "new secret  whsec_" in out and "every earlier secret stopped signing" in out
    shown = ok_json(relay_cli, "subscriptions", "show", sub["id"])
    assert shown["secrets"] == [{"expires_at": None}]
    [secrets_line] = [
        line for line in ok(relay_cli, "subscriptions", "show", sub["id"]).splitlines()
        if line.startswith("secrets ")
    ]  # fmt: skip
    assert secrets_line.split() == ["secrets", '[{"expires_at":null}]']  # JSON, not a repr


def test_source_resume_and_subscription_enable_say_what_they_did(relay_cli: Run) -> None:
    source = ok_json(relay_cli, "sources", "add", "--username", "resume@cli", "--password", "pw")
    ok(relay_cli, "sources", "pause", source["id"])
    assert ok(relay_cli, "sources", "resume", source["id"]).strip() == f"source {source['id']}: ok"
    sub = ok_json(relay_cli, "subscriptions", "add", "http://127.0.0.1:9/enable", "--disabled")
    assert sub["enabled"] is False
    out = ok(relay_cli, "subscriptions", "enable", sub["id"])
    assert out.strip() == f"subscription {sub['id']}: enabled"


def _dead_letters_of(run: Run, subscription_id: str) -> list[dict[str, Any]]:
    rows = ok_json(run, "dead-letters", "list", "--limit", "100")["data"]
    return [row for row in rows if row["subscription_id"] == subscription_id]


def test_dead_letters_list_and_retry_a_real_dead_letter(
    relay_cli: Run, sms_event: dict[str, Any]
) -> None:
    # Nothing listens on port 9: every attempt fails, and dev's retries (1, 2, 4 s) run out.
    sub = ok_json(relay_cli, "subscriptions", "add", "http://127.0.0.1:9/dead")
    moment = str(sms_event["timestamp"])
    ok(relay_cli, "replay", sub["id"], "--since", moment, "--until", moment)
    wait_until_sync(
        lambda: bool(_dead_letters_of(relay_cli, sub["id"])),
        timeout_s=60,
        what="the replayed delivery to become a dead letter",
    )
    [dead] = _dead_letters_of(relay_cli, sub["id"])
    assert dead["event_id"] == sms_event["id"] and dead["attempts"] >= 1

    listing = ok(relay_cli, "dead-letters", "list", "--limit", "100")
    assert listing.splitlines()[0].split()[:3] == ["ID", "EVENT_ID", "SUBSCRIPTION_ID"]
    [line] = [line for line in listing.splitlines() if line.startswith(dead["id"])]
    assert sms_event["id"] in line and sub["id"] in line

    out = ok(relay_cli, "dead-letters", "retry", dead["id"])
    assert out.strip() == f"dead letter {dead['id']} queued again"
    code, _, err = relay_cli("dead-letters", "retry", dead["id"])  # taken off the list
    assert code == EXIT_REFUSED and f"dead letter {dead['id']} not found" in err
    # Delivered again, it fails again: a dead letter again, retried this time with --json.
    wait_until_sync(
        lambda: bool(_dead_letters_of(relay_cli, sub["id"])),
        timeout_s=60,
        what="the retried delivery to become a dead letter again",
    )
    [again] = _dead_letters_of(relay_cli, sub["id"])
    retried = ok_json(relay_cli, "dead-letters", "retry", again["id"])
    assert retried["id"] == again["id"] and retried["event_id"] == sms_event["id"]
    assert retried["subscription_id"] == sub["id"]


def test_keys_create_list_revoke(relay_cli: Run, live_relay: LiveRelay) -> None:
    out = ok(relay_cli, "keys", "create", "--name", "cli-text", "--scope", "events:read")
    [key] = [line.split()[1] for line in out.splitlines() if line.startswith("key ")]
    assert key.startswith("rk_") and "(shown only now" in out and "cli-text" in out

    created = ok_json(
        relay_cli, "keys", "create", "--name", "cli-json", "--scope", "events:read",
        "--expires-at", "2036-01-01T00:00:00Z",
    )  # fmt: skip
    assert created["key"].startswith("rk_") and created["scopes"] == ["events:read"]
    assert created["expires_at"] == "2036-01-01T00:00:00Z" and created["tenant_id"] is None

    listing = ok(relay_cli, "keys", "list", "--limit", "100")
    assert listing.splitlines()[0].split()[:3] == ["ID", "NAME", "SCOPES"]
    assert created["id"] in listing and "cli-json" in listing
    assert key not in listing and created["key"] not in listing
    rows = ok_json(relay_cli, "keys", "list", "--limit", "100")["data"]
    assert created["id"] in [row["id"] for row in rows]
    assert not any("key" in row for row in rows)  # never a key's value

    # The key works for its scope only, until it is revoked.
    as_key = ("--token", created["key"])
    assert "data" in ok_json(relay_cli, "events", "find", *as_key)
    code, out, err = relay_cli("subscriptions", "add", "http://127.0.0.1:9/k", *as_key)
    assert code == EXIT_REFUSED and out == "" and err.startswith("relay: 403 Forbidden: ")
    assert "subscriptions:write" in err and created["key"] not in err

    assert ok(relay_cli, "keys", "revoke", created["id"]).strip() == f"key {created['id']} revoked"
    code, out, err = relay_cli("events", "find", *as_key)
    assert code == EXIT_REFUSED and out == "" and err.startswith("relay: 401 Unauthorized")
    assert created["key"] not in err
    other = ok_json(relay_cli, "keys", "create", "--name", "cli-revoke", "--scope", "events:read")
    assert ok_json(relay_cli, "keys", "revoke", other["id"]) == {"id": other["id"], "revoked": True}
    assert other["id"] not in [r["id"] for r in ok_json(relay_cli, "keys", "list")["data"]]


def test_a_tenant_key_lists_only_its_tenants_rows(relay_cli: Run, live_relay: LiveRelay) -> None:
    with httpx.Client(base_url=live_relay.url, headers=live_relay.auth) as admin:
        tenant = admin.post("/v1/tenants", json={"name": "cli tenant"}).json()["id"]
    operator_source = ok_json(
        relay_cli, "sources", "add", "--username", "op@cli", "--password", "p"
    )
    operator_sub = ok_json(relay_cli, "subscriptions", "add", "http://127.0.0.1:9/op")
    key = ok_json(
        relay_cli, "keys", "create", "--name", "cli-tenant", "--tenant", tenant,
        "--scope", "sources:write", "--scope", "subscriptions:write",
    )  # fmt: skip
    assert key["tenant_id"] == tenant
    as_tenant = ("--token", key["key"])

    own = ok_json(
        relay_cli, "sources", "add", "--username", "ten@cli", "--password", "p", *as_tenant
    )
    assert own["tenant_id"] == tenant
    given = ok_json(
        relay_cli, "sources", "add", "--username", "given@cli", "--password", "p",
        "--tenant", tenant,
    )  # fmt: skip
    assert given["tenant_id"] == tenant  # the operator adds the tenant's account for them
    sources = ok_json(relay_cli, "sources", "list", "--limit", "100", *as_tenant)["data"]
    assert [s["id"] for s in sources] == [given["id"], own["id"]]  # newest first
    assert operator_source["id"] not in ok(relay_cli, "sources", "list", *as_tenant)
    assert ok(relay_cli, "subscriptions", "list", *as_tenant).strip() == "(none)"
    assert ok_json(relay_cli, "subscriptions", "list", *as_tenant)["data"] == []
    code, _, err = relay_cli("subscriptions", "show", operator_sub["id"], *as_tenant)
    assert code == EXIT_REFUSED and err.startswith("relay: 404 Not Found")  # never 403


# Every command, once with a problem the API refuses: (argv, status line, a detail fragment).
# The password, the token and any secret must appear nowhere in what is printed.
PASSWORD = "pw-never-printed-7d1f"
REFUSED: list[tuple[list[str], str, str]] = [
    (["sources", "add", "--username", "x@cli", "--password", PASSWORD, "--poll-interval", "-1"],
     "422 Unprocessable Content", "poll_interval"),
    (["sources", "list", "--limit", "0"], "422 Unprocessable Content", "limit"),
    (["sources", "pause", "src_missing"], "404 Not Found", "src_missing"),
    (["sources", "resume", "src_missing"], "404 Not Found", "src_missing"),
    (["subscriptions", "add", "ftp://example.com/x"], "422 Unprocessable Content", "url"),
    (["subscriptions", "list", "--limit", "101"], "422 Unprocessable Content", "limit"),
    (["subscriptions", "show", "sub_missing"], "404 Not Found", "subscription sub_missing"),
    (["subscriptions", "disable", "sub_missing"], "404 Not Found", "subscription sub_missing"),
    (["subscriptions", "enable", "sub_missing"], "404 Not Found", "subscription sub_missing"),
    (["subscriptions", "rotate", "sub_missing"], "404 Not Found", "subscription sub_missing"),
    (["events", "find", "--limit", "0"], "422 Unprocessable Content", "limit"),
    (["events", "show", "evt_missing"], "404 Not Found", "evt_missing"),
    (["replay", "sub_missing", "--since", "0"], "404 Not Found", "sub_missing"),
    (["recover", "sub_missing", "--since", "0"], "404 Not Found", "sub_missing"),
    (["dead-letters", "list", "--limit", "0"], "422 Unprocessable Content", "limit"),
    (["dead-letters", "retry", "dl_missing"], "404 Not Found", "dl_missing"),
    (["keys", "create", "--name", "x", "--scope", "events:read", "--tenant", "ten_missing"],
     "404 Not Found", "ten_missing"),
    (["keys", "list", "--limit", "0"], "422 Unprocessable Content", "limit"),
    (["keys", "revoke", "key_missing"], "404 Not Found", "key_missing"),
]  # fmt: skip


def test_the_refusal_table_covers_every_command() -> None:
    covered = {tuple(argv[: 1 if argv[0] in ("replay", "recover") else 2]) for argv, *_ in REFUSED}
    assert covered == {tuple(command) for command in _leaf_commands()}


@pytest.mark.parametrize("output", ["text", "json"])
@pytest.mark.parametrize(
    ("argv", "status", "detail"), REFUSED, ids=[" ".join(c[0][:2]) for c in REFUSED]
)
def test_every_command_turns_a_refusal_into_a_readable_error(
    relay_cli: Run, live_relay: LiveRelay, argv: list[str], status: str, detail: str, output: str
) -> None:
    code, out, err = relay_cli(*argv, *(["--json"] if output == "json" else []))
    assert code == EXIT_REFUSED
    assert out == ""  # nothing on stdout, not even with --json: scripts see no partial answer
    assert err.startswith(f"relay: {status}: "), err
    assert (
        detail in err and "Traceback" not in err and not err.removeprefix("relay: ").startswith("{")
    )
    for secret in (PASSWORD, live_relay.token, "whsec_", "rk_"):
        assert secret not in out + err


def test_sources_add_start_from_takes_now_epoch_or_iso(relay_cli: Run) -> None:
    def cursor(*start: str) -> int:
        username = f"start-{uuid.uuid4().hex[:8]}@cli"  # one source per account and base URL
        argv = ("sources", "add", "--username", username, "--password", "p", *start)
        return int(ok_json(relay_cli, *argv)["cursor"])

    assert cursor("--start-from", "1700000000") == 1700000000
    assert cursor("--start-from", "2023-11-14T22:13:20Z") == 1700000000
    assert cursor("--start-from", "now") >= 1700000000
    code, _, err = relay_cli("sources", "add", "--username", "s@cli", "--password", "p",
                             "--start-from", "soon")  # fmt: skip
    assert code == EXIT_USAGE and "ISO 8601" in err
