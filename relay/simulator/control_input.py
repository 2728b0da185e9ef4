"""Parsing the control routes' JSON bodies into values; InvalidInput names the bad field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, cast

from relay.core.errors import InvalidInput
from relay.simulator import statuses
from relay.simulator.accounts import Account
from relay.simulator.faults import FAULT_KINDS, Fault, FaultKind
from relay.simulator.messages import MESSAGE_KINDS, MessageKind, NewMessage
from relay.simulator.samples import GENERATED_KINDS, GeneratedKind

MAX_BULK = 100_000
_Choice = TypeVar("_Choice", bound=str)


class MalformedBody(InvalidInput):
    """The body is not a JSON object at all (HTTP 400, where a bad field is 422)."""


@dataclass(frozen=True)
class MessagesInput:
    """`{"username"?, "messages": [...]}`: explicit messages."""

    username: str | None
    messages: tuple[NewMessage, ...]


@dataclass(frozen=True)
class BulkInput:
    """`{"username"?, "count", "kind"?, "timestamp"?, "per_second"?}`: generated messages."""

    username: str | None
    count: int
    kind: GeneratedKind
    timestamp: int | None
    per_second: int | None


@dataclass(frozen=True)
class FaultInput:
    """`{"kind", "times"?, "status"?, "delay_s"?, "size_bytes"?, "field"?, "raw"?,
    "offset_s"?}`: a fault and how many calls it hits."""

    fault: Fault
    times: int


@dataclass(frozen=True)
class TrafficInput:
    """`{"rate", "usernames"?}`: None means every account."""

    rate: float
    usernames: tuple[str, ...] | None


def parse_messages(body: object) -> MessagesInput | BulkInput:
    """The POST /_sim/messages body, explicit or bulk form."""
    obj = _object(body)
    if "count" in obj:
        _only(obj, {"username", "count", "kind", "timestamp", "per_second"})
        kind = _choice(obj, "kind", GENERATED_KINDS, default="incoming")
        return BulkInput(
            username=_optional_str(obj, "username"),
            count=cast(int, _int(obj, "count", low=1, high=MAX_BULK)),
            kind=kind,
            timestamp=_int(obj, "timestamp", low=0, high=None, required=False),
            per_second=_int(obj, "per_second", low=1, high=None, required=False),
        )
    _only(obj, {"username", "messages"})
    items = obj.get("messages")
    if not isinstance(items, list) or not items or len(items) > MAX_BULK:
        raise InvalidInput(f"messages must be a list of 1 to {MAX_BULK} objects", field="messages")
    return MessagesInput(
        username=_optional_str(obj, "username"),
        messages=tuple(_new_message(item) for item in items),
    )


def parse_account(body: object) -> Account:
    """The POST /_sim/accounts body."""
    obj = _object(body)
    _only(obj, {"username", "password", "status"})
    username, password = _str(obj, "username"), _str(obj, "password")
    status = _int(obj, "status", low=0, high=None, required=False)
    return Account(username, password, statuses.OK if status is None else status)


def parse_fault(body: object) -> FaultInput:
    """The POST /_sim/faults body."""
    obj = _object(body)
    _only(obj, {"kind", "times", "status", "delay_s", "size_bytes", "field", "raw", "offset_s"})
    kind: FaultKind = _choice(obj, "kind", FAULT_KINDS, default=None)
    status = _int(obj, "status", low=None, high=None, required=False)
    delay_s = obj.get("delay_s", 5.0)
    if isinstance(delay_s, bool) or not isinstance(delay_s, int | float):
        raise InvalidInput("delay_s must be a number of seconds", field="delay_s")
    size_bytes = _int(obj, "size_bytes", low=0, high=None, required=False)
    offset_s = _int(obj, "offset_s", low=None, high=None, required=False)
    defaults = Fault("slow")
    fault = Fault(
        kind,
        status=statuses.INTERNAL_ERROR if status is None else status,
        delay_s=float(delay_s),
        size_bytes=defaults.size_bytes if size_bytes is None else size_bytes,
        field=defaults.field if obj.get("field") is None else _str(obj, "field"),
        raw=defaults.raw if obj.get("raw") is None else _str(obj, "raw"),
        offset_s=defaults.offset_s if offset_s is None else offset_s,
    )
    times = _int(obj, "times", low=1, high=None, required=False)
    return FaultInput(fault, 1 if times is None else times)


def parse_traffic(body: object) -> TrafficInput:
    """The POST /_sim/traffic body."""
    obj = _object(body)
    _only(obj, {"rate", "usernames"})
    rate = obj.get("rate")
    if isinstance(rate, bool) or not isinstance(rate, int | float):
        raise InvalidInput("rate must be a number of messages per second", field="rate")
    usernames = obj.get("usernames")
    if usernames is None:
        return TrafficInput(float(rate), None)
    if not isinstance(usernames, list) or not all(isinstance(u, str) for u in usernames):
        raise InvalidInput("usernames must be a list of strings", field="usernames")
    return TrafficInput(float(rate), tuple(usernames))


def _new_message(item: object) -> NewMessage:
    if not isinstance(item, dict):
        raise InvalidInput("each message must be an object", field="messages")
    obj = cast(dict[str, object], item)
    _only(obj, {"kind", "text", "from", "recipient", "timestamp", "originDocumentId"})
    kind: MessageKind = _choice(obj, "kind", MESSAGE_KINDS, default=None)
    return NewMessage(
        kind=kind,
        text=_optional_str(obj, "text"),
        sender=_optional_str(obj, "from"),
        recipient=_optional_str(obj, "recipient"),
        timestamp=_int(obj, "timestamp", low=None, high=None, required=False),
        origin_document_id=_optional_str(obj, "originDocumentId"),
    )


def _object(body: object) -> dict[str, object]:
    if not isinstance(body, dict):
        raise MalformedBody("the body must be a JSON object")
    return cast(dict[str, object], body)


def _only(obj: dict[str, object], allowed: set[str]) -> None:
    # Unknown keys are refused so a typo ("recpient") fails loudly instead of being ignored.
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}", field=unknown[0])


def _str(obj: dict[str, object], name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string", field=name)
    return value


def _optional_str(obj: dict[str, object], name: str) -> str | None:
    return None if obj.get(name) is None else _str(obj, name)


def _int(
    obj: dict[str, object], name: str, *, low: int | None, high: int | None, required: bool = True
) -> int | None:
    value = obj.get(name)
    if value is None and not required:
        return None
    if type(value) is not int or (low is not None and value < low):
        raise InvalidInput(f"{name} must be an integer" + (f" >= {low}" if low else ""), field=name)
    if high is not None and value > high:
        raise InvalidInput(f"{name} must be at most {high}", field=name)
    return value


def _choice(
    obj: dict[str, object], name: str, choices: tuple[_Choice, ...], *, default: _Choice | None
) -> _Choice:
    value = obj.get(name, default)
    for choice in choices:
        if value == choice:
            return choice
    raise InvalidInput(f"{name} must be one of {', '.join(choices)}", field=name)
