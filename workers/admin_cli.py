"""The admin commands of `relay` (`sources`, `subscriptions`, `events`, `replay`, `recover`,
`dead-letters`, `keys`): thin clients of the REST API over httpx, so they work against any
relay the token reaches and go through the same validation and audit as every other client.

`RELAY_URL` (default http://127.0.0.1:8080) and `RELAY_TOKEN` (an admin token or an `rk_`
key), or `--url` / `--token`. Human tables on stdout by default; `--json` prints the API's
JSON unchanged. Exit codes: 0 done, 1 the API refused (its problem+json detail on stderr),
2 bad usage or no token, 4 relay unreachable (or the URL answers, but is not its API).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from relay import __version__
from relay.settings import DEFAULT_CLIENT_URL, ClientSettings

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 4
SCOPES = (
    "sources:read",
    "sources:write",
    "subscriptions:read",
    "subscriptions:write",
    "events:read",
    "deliveries:write",
    "keys:write",
    "tenants:write",
)


class CliError(Exception):
    """A failure to report as `relay: <message>` with exit code `code`."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class Api:
    """The REST API at `url` with a bearer token; every failure becomes a CliError."""

    def __init__(self, url: str, token: str, *, timeout_s: float = 30.0) -> None:
        self._http = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "User-Agent": f"relay-cli/{__version__}"},
            timeout=timeout_s,
        )

    def close(self) -> None:
        self._http.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """The decoded JSON answer (None for 204)."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(
                method, path, params=query, json=body, headers=dict(headers or {})
            )
        except httpx.HTTPError as exc:
            raise CliError(
                f"cannot reach relay at {_shown(self._http.base_url)}: {exc}", EXIT_UNREACHABLE
            ) from exc
        if response.status_code >= 400:
            raise CliError(_problem_text(response), EXIT_REFUSED)
        if response.status_code == 204:
            return None
        try:
            if not response.is_success:
                raise ValueError("not a 2xx")
            return response.json()
        except ValueError:
            # A redirect to a login page, an HTML page: RELAY_URL points elsewhere.
            raise CliError(_not_the_api(response), EXIT_UNREACHABLE) from None


def _shown(url: httpx.URL) -> httpx.URL:
    """The URL without what may be secret in it: a user:password and the query."""
    return url.copy_with(userinfo=b"", query=None)


def _not_the_api(response: httpx.Response) -> str:
    status = f"{response.status_code} {response.reason_phrase}"
    if "location" in response.headers:
        status += f" (to {response.headers['location']})"
    else:
        status += f" ({response.headers.get('content-type', 'no content type')})"
    return (
        f"{_shown(response.request.url)} answered {status}, not the relay admin API's"
        " JSON: is RELAY_URL (--url) the API's base URL, without /v1?"
    )


def _problem_text(response: httpx.Response) -> str:
    """`404 Not Found: subscription sub_x not found` (+ one line per field error)."""
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        return f"{response.status_code} {response.reason_phrase}: {response.text[:200]}"
    title = problem.get("title") or response.reason_phrase
    lines = [f"{response.status_code} {title}: {problem.get('detail', '')}".rstrip(": ")]
    errors = problem.get("errors") or []
    if len(errors) > 1:
        lines += [f"  {e.get('field')}: {e.get('detail')}" for e in errors if isinstance(e, dict)]
    return "\n".join(lines)


# ---- output


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple) and not any(isinstance(v, dict | list) for v in value):
        return ",".join(str(v) for v in value) or "-"
    if isinstance(value, dict | list | tuple):
        # JSON, not Python's repr: `{"expires_at":null}`, as --json and the API spell it.
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    text = str(value).replace("\n", " ")
    return text if len(text) <= 60 else text[:59] + "…"


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Rows as left-aligned columns under an upper-case header; `(none)` when empty."""
    if not rows:
        return "(none)"
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [
        max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)
    ]
    header = [column.upper() for column in columns]
    return "\n".join(
        "  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)).rstrip()
        for line in [header, *cells]
    )


def fields(record: Mapping[str, Any], names: Sequence[str] | None = None) -> str:
    """One `name: value` line per field."""
    keys = list(names or record.keys())
    width = max(len(k) for k in keys)
    return "\n".join(f"{k.ljust(width)}  {_cell(record.get(k))}" for k in keys)


# ---- argument types


def epoch(value: str) -> int:
    """Epoch seconds, or an ISO 8601 time (`2026-12-01T10:00:00Z`, a date alone is midnight
    UTC)."""
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is neither epoch seconds nor an ISO 8601 time"
        ) from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def start_point(value: str) -> int | str:
    """`now`, or a moment as `epoch` takes it: the API wants the string or an integer."""
    return "now" if value == "now" else epoch(value)


def header_pair(value: str) -> tuple[str, str]:
    name, sep, content = value.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{value!r} is not NAME:VALUE")
    return name.strip(), content.strip()


# ---- commands

Handler = Callable[[Api, argparse.Namespace], tuple[Any, str]]

SOURCE_COLUMNS = ("id", "username", "status", "poll_interval", "last_polled_at", "last_error")
SUBSCRIPTION_COLUMNS = ("id", "url", "enabled", "event_types", "payload_format", "description")
EVENT_COLUMNS = ("id", "type", "timestamp", "from", "recipient", "text")
DEAD_LETTER_COLUMNS = ("id", "event_id", "subscription_id", "attempts", "last_error", "failed_at")
KEY_COLUMNS = ("id", "name", "scopes", "tenant_id", "expires_at", "last_used_at")
DELIVERY_COLUMNS = (
    "subscription_id",
    "state",
    "attempts",
    "last_status_code",
    "last_attempt_at",
    "next_attempt_at",
)


def _count(number: int, noun: str) -> str:
    """`1 delivery`, `2 deliveries`, `0 undelivered events`."""
    if number == 1:
        return f"1 {noun}"
    return f"{number} {noun[:-1]}ies" if noun.endswith("y") else f"{number} {noun}s"


def _page(args: argparse.Namespace, **params: Any) -> dict[str, Any]:
    return {"limit": args.limit, "cursor": args.cursor, **params}


def _listing(answer: Mapping[str, Any], columns: Sequence[str]) -> str:
    text = table(answer["data"], columns)
    if answer.get("next_cursor"):
        text += f"\n(more: --cursor {answer['next_cursor']})"
    return text


def _sources_add(api: Api, args: argparse.Namespace) -> tuple[Any, str]:
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else args.password
    if not password:
        raise CliError("give --password or --password-stdin", EXIT_USAGE)
    body = {"username": args.username, "password": password}
    body |= {
        k: v
        for k, v in {
            "base_url": args.base_url,
            "poll_interval": args.poll_interval,
            "start_from": args.start_from,
            "tenant_id": args.tenant,
        }.items()
        if v is not None
    }
    source = api.call("POST", "/v1/sources", body=body)
    return source, fields(source, [c for c in source if c != "cursor"])


def _sources_list(api: Api, args: argparse.Namespace) -> tuple[Any, str]:
    answer = api.call("GET", "/v1/sources", params=_page(args))
    return answer, _listing(answer, SOURCE_COLUMNS)


def _source_status(status: str) -> Handler:
    def change(api: Api, args: argparse.Namespace) -> tuple[Any, str]:
        source = api.call("PATCH", f"/v1/sources/{args.id}", body={"status": status})
        return source, f"source {source['id']}: {source['status']}"

    return change


def _subscriptions_add(api: Api, args: argparse.Namespace) -> tuple[Any, str]:
    body: dict[str, Any] = {"url": args.target_url, "enabled": not args.disabled}
    if args.event_type:
        body["event_types"] = args.event_type
    if args.source_id:
        body["source_ids"] = args.source_id
    if args.description is not None:
        body["description"] = args.description
    if args.header:
        body["headers"] = dict(args.header)
    if args.payload_format is not None:
        body["payload_format"] = args.payload_format
    for name, value in (
        ("rate_limit_per_s", args.rate_limit),
        ("concurrency", args.concurrency),
        ("timeout_s", args.timeout),
    ):
        if value is not None:
            body[name] = value
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    created = api.call("POST", "/v1/subscriptions", body=body, headers=headers)
    text = fields(created, ["id", "url", "enabled", "event_types", "payload_format"])
    return created, f"{text}\nsecret          {created['secret']}   (shown here; keep it)"


def _subscriptions_list(api: Api, args: argparse.Namespace) -> tuple[Any, str]:
    answer = api.call("GET", "/v1/subscriptions", params=_page(args))
    return answer, _listing(answer, SUBSCRIPTION_COLUMNS)


def _subscriptions_show(api: Api, args: argparse.Namespace) -> tuple[Any, str]:
    subscription = api.call("GET", f"/v1/subscriptions/{args.id}")
    text = fields(subscription)
    attempts = api.call("GET", f"/v1/subscriptions/{args.id}/attempts", params={"limit": 10})
    columns = ("at", "event_id", "attempt", "status_code", "error", "duration_ms")
    return subscription, f"{text}\n\nlatest attempts:\n{table(attempts['data'], columns)}"


def _subscription_enabled(enabled: bool) -> Handler:
    def change(api: Api, args: argparse.Namespace) -> tuple[Any, str]:
        sub = api.call("PATCH", f"/v1/subscriptions/{args.id}", body={"enabled": enabled})
        return sub, f"subscription {sub['id']}: {'enabled' if sub['enabled'] else 'disabled'}"

    return change


def _subscriptions_rotate(api: Api, args: argparse.Namespace) -> tuple[Any, str]:
    body = {} if args.overlap_seconds is None else {"overlap_seconds": args.overlap_seconds}
    answer = api.call("POST", f"/v1/subscriptions/{args.id}/secret/rotate", body=body)
    text = f"new secret  {answer['secret']}"
    if args.overlap_seconds == 0:
        text += "\nevery earlier secret stopped signing"
    elif answer.get("previous_expires_at"):
        text += f"\nthe previous secret signs too until {answer['previous_expires_at']}"
    return answer, text


def _summary(event: Mapping[str, Any]) -> dict[str, Any]:
    data = event.get("payload", {}).get("data", {})
    return {**event, **{k: data.get(k) for k in ("from", "recipient", "text", "documentId")}}


def _events_find(api: Api, args: argparse.Namespace) -> tuple[Any, str]:
    params = _page(
        args,
        type=args.type,
        source_id=args.source_id,
        document_id=args.document_id,
        phone=args.phone,
        since=args.since,
        until=args.until,
    )
    params["from"] = args.sender
    params["recipient"] = args.recipient
    answer = api.call("GET", "/v1/events", params=params)
    rows = [_summary(e) for e in answer["data"]]
    return answer, _listing({**answer, "data": rows}, EVENT_COLUMNS)


def _events_show(api: Api, args: argparse.Namespace) -> tuple[Any, str]:
    event = api.call("GET", f"/v1/events/{args.id}")
    summary = _summary(event)
    names = ["id", "type", "source_id", "timestamp", "created_at", "documentId"]
    text = fields(summary, [*names, "from", "recipient", "text"])
    try:
        deliveries = api.call("GET", f"/v1/events/{args.id}/deliveries")
    except CliError as exc:
        if "no route for" not in str(exc):
            raise
        # A relay older than the deliveries route: the event is still worth showing.
        text += "\n\ndeliveries: not available (this relay has no /v1/events/{id}/deliveries)"
        return {**event, "deliveries": None}, text
    rows = deliveries["data"] if isinstance(deliveries, dict) else deliveries
    text += f"\n\ndeliveries:\n{table(rows, DELIVERY_COLUMNS)}"
    return {**event, "deliveries": rows}, text


def _replay(api: Api, args: argparse.Namespace) -> tuple[Any, str]:
    body = {"since": args.since, **({"until": args.until} if args.until is not None else {})}
    answer = api.call("POST", f"/v1/subscriptions/{args.subscription_id}/replay", body=body)
    return answer, f"queued {_count(answer['queued'], 'delivery')} to {args.subscription_id}"


def _recover(api: Api, args: argparse.Namespace) -> tuple[Any, str]:
    body = {"since": args.since, **({"until": args.until} if args.until is not None else {})}
    answer = api.call("POST", f"/v1/subscriptions/{args.subscription_id}/recover", body=body)
    return (
        answer,
        f"queued {_count(answer['queued'], 'undelivered event')} to {args.subscription_id}",
    )


def _dead_letters_list(api: Api, args: argparse.Namespace) -> tuple[Any, str]:
    answer = api.call("GET", "/v1/dead-letters", params=_page(args))
    return answer, _listing(answer, DEAD_LETTER_COLUMNS)


def _dead_letters_retry(api: Api, args: argparse.Namespace) -> tuple[Any, str]:
    if args.id is not None:
        if args.subscription_id is not None or args.since is not None:
            raise CliError(
                "give a dead-letter ID or --subscription-id/--since, not both", EXIT_USAGE
            )
        answer = api.call("POST", f"/v1/dead-letters/{args.id}/retry")
        return answer, f"dead letter {answer['id']} queued again"
    body = {"subscription_id": args.subscription_id, "since": args.since}
    body = {k: v for k, v in body.items() if v is not None}
    answer = api.call("POST", "/v1/dead-letters/retry", body=body)
    return answer, f"queued {_count(answer['queued'], 'delivery')} again"


def _keys_create(api: Api, args: argparse.Namespace) -> tuple[Any, str]:
    body: dict[str, Any] = {"name": args.name, "scopes": args.scope}
    if args.tenant is not None:
        body["tenant_id"] = args.tenant
    if args.expires_at is not None:
        body["expires_at"] = args.expires_at
    key = api.call("POST", "/v1/keys", body=body)
    text = fields(key, [c for c in key if c != "key"])
    return key, f"{text}\nkey           {key['key']}   (shown only now; store it safely)"


def _keys_list(api: Api, args: argparse.Namespace) -> tuple[Any, str]:
    answer = api.call("GET", "/v1/keys", params=_page(args))
    return answer, _listing(answer, KEY_COLUMNS)


def _keys_revoke(api: Api, args: argparse.Namespace) -> tuple[Any, str]:
    api.call("DELETE", f"/v1/keys/{args.id}")
    return {"id": args.id, "revoked": True}, f"key {args.id} revoked"


# ---- wiring


def _run(args: argparse.Namespace) -> int:
    client = ClientSettings.from_env()
    token = args.token or client.token
    if not token:
        print("relay: no token: set RELAY_TOKEN or pass --token", file=sys.stderr)
        return EXIT_USAGE
    api = Api(args.url or client.url, token)
    try:
        answer, text = args.admin(api, args)
    except CliError as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return exc.code
    finally:
        api.close()
    print(json.dumps(answer, indent=2, ensure_ascii=False) if args.json else text)
    return 0


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection and output")
    group.add_argument(
        "--url", help=f"relay admin API (env RELAY_URL, default {DEFAULT_CLIENT_URL})"
    )
    group.add_argument("--token", help="admin token or API key (env RELAY_TOKEN)")
    group.add_argument("--json", action="store_true", help="print the API's JSON answer")
    return common


def _paged(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, help="rows per page (1-100, default 50)")
    parser.add_argument("--cursor", help="the next_cursor of the previous page")


def _window(parser: argparse.ArgumentParser, *, required: bool) -> None:
    help_ = "message time, epoch seconds or ISO 8601"
    parser.add_argument("--since", type=epoch, required=required, help=help_)
    parser.add_argument("--until", type=epoch, help=f"{help_} (inclusive; default now)")


def add_admin_commands(commands: Any) -> None:
    """Add the admin commands to `relay`'s subcommands (an argparse subparsers object)."""
    common = _common()

    def group(name: str, text: str) -> Any:
        parser = commands.add_parser(name, help=text, description=text)
        return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")

    def leaf(
        parent: Any, name: str, text: str, handler: Handler, *, id_of: str | None = None
    ) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = parent.add_parser(
            name, help=text, description=text, parents=[common]
        )
        if id_of is not None:
            parser.add_argument("id", metavar="ID", help=f"the {id_of} id")
        parser.set_defaults(handler=_run, admin=handler)
        return parser

    sources = group("sources", "upstream MC5 accounts that relay polls")
    add = leaf(sources, "add", "add an MC5 account to poll", _sources_add)
    add.add_argument("--username", required=True, help="MC5 user name")
    secret = add.add_mutually_exclusive_group()
    secret.add_argument("--password", help="MC5 password (visible in ps: prefer stdin)")
    secret.add_argument("--password-stdin", action="store_true", help="read it from stdin")
    add.add_argument("--base-url", help="MC5 API base URL (default: the relay's)")
    add.add_argument("--poll-interval", type=float, help="seconds between idle polls")
    add.add_argument("--tenant", help="the tenant id whose account this is (default: yours)")
    add.add_argument(
        "--start-from",
        type=start_point,
        help='"now" (default), epoch seconds or ISO 8601: only messages from then on',
    )
    _paged(leaf(sources, "list", "list sources", _sources_list))
    leaf(sources, "pause", "stop polling a source", _source_status("paused"), id_of="source")
    leaf(sources, "resume", "poll a paused source again", _source_status("ok"), id_of="source")

    subs = group("subscriptions", "webhook subscribers")
    add = leaf(subs, "add", "subscribe a URL (prints its secret)", _subscriptions_add)
    add.add_argument("target_url", metavar="URL", help="where webhooks are POSTed")
    add.add_argument(
        "--event-type",
        action="append",
        choices=("message.received", "message.sent"),
        help="only this type (repeatable; default every type)",
    )
    add.add_argument("--source-id", action="append", help="only this source (repeatable)")
    add.add_argument("--description")
    add.add_argument(
        "--header", action="append", type=header_pair, metavar="NAME:VALUE", help="custom header"
    )
    add.add_argument("--payload-format", choices=("standard", "flat"))
    add.add_argument(
        "--rate-limit", type=float, metavar="PER_S", help="most deliveries started per second"
    )
    add.add_argument("--concurrency", type=int, help="most deliveries in flight at once")
    add.add_argument(
        "--timeout", type=float, metavar="S", help="seconds per POST (default: the relay's)"
    )
    add.add_argument("--disabled", action="store_true", help="create it disabled")
    add.add_argument("--idempotency-key", help="a retry with the same key creates nothing")
    _paged(leaf(subs, "list", "list subscriptions", _subscriptions_list))
    leaf(
        subs,
        "show",
        "a subscription and its latest attempts",
        _subscriptions_show,
        id_of="subscription",
    )
    leaf(subs, "disable", "stop deliveries", _subscription_enabled(False), id_of="subscription")
    leaf(subs, "enable", "resume deliveries", _subscription_enabled(True), id_of="subscription")
    rotate = leaf(
        subs, "rotate", "rotate the signing secret", _subscriptions_rotate, id_of="subscription"
    )
    rotate.add_argument(
        "--overlap-seconds",
        type=int,
        help="how long the old secret signs too (default 24 h; 0 ends it now)",
    )

    events = group("events", "stored events (one per upstream message)")
    find = leaf(events, "find", "find events by phone, message id, type or time", _events_find)
    _paged(find)
    find.add_argument("--phone", help="sender or recipient number")
    find.add_argument("--from", dest="sender", help="sender number")
    find.add_argument("--recipient", help="recipient number")
    find.add_argument("--document-id", help="the upstream documentId")
    find.add_argument("--type", choices=("message.received", "message.sent"))
    find.add_argument("--source-id")
    _window(find, required=False)
    leaf(events, "show", "an event and its deliveries", _events_show, id_of="event")

    for name, text, handler in (
        ("replay", "deliver again every event of a window to a subscription", _replay),
        ("recover", "redeliver a window's undelivered events to a subscription", _recover),
    ):
        parser = leaf(commands, name, text, handler)
        parser.add_argument("subscription_id", metavar="SUBSCRIPTION_ID")
        _window(parser, required=True)

    dead = group("dead-letters", "deliveries that used up their retries")
    _paged(leaf(dead, "list", "list dead letters", _dead_letters_list))
    retry = leaf(dead, "retry", "retry one dead letter, or many at once", _dead_letters_retry)
    retry.add_argument("id", metavar="ID", nargs="?", help="one dead letter (else every one)")
    retry.add_argument("--subscription-id", help="only this subscription's")
    retry.add_argument("--since", type=epoch, help="only those failed since (epoch or ISO 8601)")

    keys = group("keys", "API keys (scoped, optionally limited to one tenant)")
    create = leaf(keys, "create", "create a key (prints it once)", _keys_create)
    create.add_argument("--name", required=True)
    create.add_argument(
        "--scope", action="append", required=True, choices=SCOPES, help="repeatable"
    )
    create.add_argument("--tenant", help="limit the key to this tenant id")
    create.add_argument("--expires-at", type=epoch, help="epoch seconds or ISO 8601")
    _paged(leaf(keys, "list", "list keys (never their values)", _keys_list))
    leaf(keys, "revoke", "revoke a key (effective on its next request)", _keys_revoke, id_of="key")
