"""Reading HTML form posts (urlencoded, size-limited) and turning fields into API values.

The console converts each form into the same field names and JSON-like values the REST API
takes, then calls the API's own validators, so both apply identical rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from relay.core.errors import InvalidInput
from relay.web.bodies import read_body
from relay.web.problems import RequestProblem

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 200
_LIST_SEPARATOR = re.compile(r"[\s,]+")
_INTEGER = re.compile(r"^[0-9]{1,18}$")


@dataclass(frozen=True, slots=True)
class Form:
    """The fields of one form post, in order (a name may repeat, as checkboxes do)."""

    pairs: tuple[tuple[str, str], ...] = ()

    def get(self, name: str, default: str = "") -> str:
        """The first value of `name`, or `default`."""
        return next((value for key, value in self.pairs if key == name), default)

    def getlist(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]

    def has(self, name: str) -> bool:
        return any(key == name for key, _ in self.pairs)


async def read_form(request: Request) -> Form:
    """The urlencoded body; RequestProblem (413, 415, 400) when it is not a sane form."""
    raw = await read_body(request)
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if raw and media_type != FORM_MEDIA_TYPE:
        raise RequestProblem(415, f"the form must be sent as {FORM_MEDIA_TYPE}")
    try:
        pairs = parse_qsl(
            raw.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise RequestProblem(400, "the form could not be read") from None
    return Form(tuple(pairs))


def optional_text(value: str) -> str | None:
    """None for a blank field, the text otherwise."""
    return value if value.strip() else None


def word_list(value: str) -> list[str] | None:
    """Comma- or space-separated words; None (meaning "all") when blank."""
    words = [word for word in _LIST_SEPARATOR.split(value) if word]
    return words or None


def number(value: str, name: str) -> float:
    """A decimal number typed into a field (InvalidInput naming the field otherwise)."""
    try:
        parsed = float(value.strip())
    except ValueError:
        raise InvalidInput(f"{name} must be a number", field=name) from None
    return parsed


def integer_or_text(value: str) -> int | str:
    """An integer when the field holds only digits, else the text (for the API to reject)."""
    stripped = value.strip()
    return int(stripped) if _INTEGER.search(stripped) else stripped


def header_lines(value: str, name: str = "headers") -> dict[str, str]:
    """`Name: value` lines into a dict (blank lines skipped); InvalidInput on a bad line."""
    headers: dict[str, str] = {}
    for number_, line in enumerate(value.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, item = line.partition(":")
        if not sep:
            raise InvalidInput(f"{name} line {number_} must look like 'Name: value'", field=name)
        key = key.strip()
        if key.lower() in (k.lower() for k in headers):
            raise InvalidInput(f"{name} line {number_} repeats {key!r}", field=name)
        headers[key] = item.strip()
    return headers


def header_text(headers: Mapping[str, str]) -> str:
    """The textarea text for stored headers."""
    return "\n".join(f"{key}: {value}" for key, value in dict(headers).items())


def joined(values: Iterable[str] | None) -> str:
    return "" if values is None else ", ".join(values)


def error_messages(problems: Iterable[InvalidInput]) -> dict[str, str]:
    """{form field: message} with the first problem of each field (`headers.X-Y` is shown
    at `headers`), so a form shows every field's error at once."""
    messages: dict[str, str] = {}
    for problem in problems:
        messages.setdefault((problem.field or "form").split(".", 1)[0], problem.detail)
    return messages


def converted(
    data: dict[str, Any], name: str, convert: Callable[[], Any], problems: list[InvalidInput]
) -> None:
    """Set `data[name] = convert()`, or note its InvalidInput in `problems` and go on."""
    try:
        data[name] = convert()
    except InvalidInput as exc:
        problems.append(exc)
