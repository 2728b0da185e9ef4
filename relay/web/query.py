"""Query-string parameters shared by the API and the console: paging and simple filters."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from starlette.requests import Request

from relay.admin.validation import CURSOR, DEFAULT_LIMIT, INTEGER, MAX_LIMIT, integer, text
from relay.core.errors import InvalidInput


def _query_integer(request: Request, name: str, *, low: int, high: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not INTEGER.search(raw) or raw.endswith("\n"):
        raise InvalidInput(f"{name} must be an integer between {low} and {high}", field=name)
    return integer(int(float(raw)) if "." in raw else int(raw), name, low=low, high=high)


def query_integer(request: Request, name: str, *, low: int, high: int) -> int | None:
    """An optional integer parameter in [low, high]."""
    return _query_integer(request, name, low=low, high=high)


def page_params(request: Request) -> tuple[int, str | None]:
    """`?limit=` (1-100, default 50) and the opaque `?cursor=`."""
    limit = _query_integer(request, "limit", low=1, high=MAX_LIMIT)
    cursor = request.query_params.get("cursor")
    if cursor is not None and not CURSOR.search(cursor):
        raise InvalidInput("cursor is not one this API returned", field="cursor")
    return (DEFAULT_LIMIT if limit is None else limit), cursor


def reject_unknown(request: Request, known: Iterable[str]) -> None:
    """InvalidInput (422) for a query parameter the route does not take, or one given more
    than once: a typo (`?documentId=`) must not silently widen a search to everything."""
    allowed = set(known)
    names = Counter(name for name, _ in request.query_params.multi_items())
    for name, count in names.items():
        if name not in allowed:
            takes = ", ".join(sorted(allowed)) or "none"
            raise InvalidInput(f"unknown query parameter {name!r} (this route takes: {takes})",
                               field=name)  # fmt: skip
        if count > 1:
            raise InvalidInput(f"query parameter {name} is given more than once", field=name)


def list_params(request: Request, *, filters: Sequence[str] = ()) -> tuple[int, str | None]:
    """`page_params` of an API list route that takes `filters` besides `limit` and `cursor`;
    any other parameter is 422 (`reject_unknown`)."""
    reject_unknown(request, ("limit", "cursor", *filters))
    return page_params(request)


def query_choice(request: Request, name: str, choices: Sequence[str]) -> str | None:
    raw = request.query_params.get(name)
    if raw is not None and raw not in choices:
        raise InvalidInput(f"{name} must be one of {', '.join(choices)}", field=name)
    return raw


def query_text(request: Request, name: str, *, max_length: int) -> str | None:
    raw = request.query_params.get(name)
    if raw is not None:
        text(raw, name, max_length=max_length)
    return raw
