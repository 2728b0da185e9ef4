"""Reading request bodies: size limit, media type, JSON parsing, unknown fields."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from starlette.requests import Request

from relay.core.errors import InvalidInput
from relay.web.problems import FieldErrors, RequestProblem

MAX_BODY_BYTES = 64 * 1024


def _is_json_media_type(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def read_body(request: Request) -> bytes:
    """The raw body, or 413 when it is larger than MAX_BODY_BYTES (declared or streamed)."""
    declared = request.headers.get("content-length")
    too_large = RequestProblem(413, f"the request body must be at most {MAX_BODY_BYTES} bytes")
    if declared is not None and declared.strip().isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json_object(
    request: Request, *, known: Collection[str], required: bool = True
) -> dict[str, Any]:
    """The body as a JSON object with no field outside `known`.

    An empty body is `{}` when not `required`. Raises RequestProblem (413, 415, 400) or
    FieldErrors (422: not an object, unknown fields)."""
    raw = await read_body(request)
    if not raw.strip():
        if required:
            raise RequestProblem(400, "a JSON request body is required")
        return {}
    content_type = request.headers.get("content-type", "")
    if not _is_json_media_type(content_type):
        raise RequestProblem(
            415,
            f"the body must be application/json, got {content_type or 'no Content-Type'}",
            headers={"Accept-Post": "application/json"},
        )
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise RequestProblem(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object", field=None)
    unknown = sorted(name for name in data if name not in known)
    if unknown:
        raise FieldErrors(
            [InvalidInput(f"unknown field {name!r}", field=name) for name in unknown],
            detail="unknown field(s): " + ", ".join(repr(name) for name in unknown),
        )
    return data
