"""The allMessages parameters: where they come from and the status their values earn."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.requests import Request

from relay.simulator import statuses

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
_SINCE = re.compile(r"[0-9]{1,19}")


@dataclass(frozen=True)
class PollParams:
    """A well-formed call: credentials still unchecked."""

    username: str
    password: str
    since: int


async def read_params(request: Request) -> dict[str, str]:
    """Query parameters, plus a form body on POST; the first value of a name wins, query first
    (as a servlet's getParameter does). Other POST bodies are ignored, as the upstream would."""
    pairs = list(request.query_params.multi_items())
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method == "POST" and content_type == FORM_CONTENT_TYPE:
        body = (await request.body()).decode("utf-8", errors="replace")
        pairs += parse_qsl(body, keep_blank_values=True)
    values: dict[str, str] = {}
    for name, value in pairs:
        values.setdefault(name, value)
    return values


def check_params(values: Mapping[str, str]) -> PollParams | int:
    """PollParams when every value is present and valid, else the MC5 status (1 or 2)."""
    username = values.get("username", "")
    password = values.get("password", "")
    since = values.get("since", "")
    if not username or not password or not since:
        return statuses.MISSING_PARAMETER
    if any(char.isspace() for char in username):
        return statuses.INVALID_VALUE
    # Negative or fractional seconds are not "an integer number" of epoch seconds.
    if not _SINCE.fullmatch(since):
        return statuses.INVALID_VALUE
    return PollParams(username=username, password=password, since=int(since))
