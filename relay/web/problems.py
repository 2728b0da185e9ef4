"""RFC 9457 problem details: the one place where errors become HTTP responses.

Every error the API answers with is `application/problem+json` with `type`, `title`, `status`
and `detail`; validation problems add `field` and `errors` (a list of `{field, detail}`).
The RelayError tree, Starlette's HTTP errors and Redis failures are all mapped here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from redis.exceptions import OutOfMemoryError, RedisError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ExceptionHandler

from relay.core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    RedisUnavailable,
    RelayError,
    UnsafeTarget,
)
from relay.core.redaction import redact

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "urn:relay:problem:"

log = logging.getLogger("relay.api")

# status -> problem type slug for errors that are only their HTTP meaning
_SLUGS = {
    400: "malformed-request",
    401: "unauthorized",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "invalid-input",
    500: "internal-error",
    503: "unavailable",
}


# RFC 9110 reason phrases (Python 3.11's http.HTTPStatus still has the RFC 7231 ones).
_TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}


class RequestProblem(RelayError):
    """An HTTP-level rejection raised by the API itself (bad JSON, wrong media type, ...)."""

    def __init__(
        self, status: int, detail: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})


class FieldErrors(InvalidInput):
    """Several fields failed validation at once (e.g. unknown fields)."""

    def __init__(self, errors: Sequence[InvalidInput], *, detail: str | None = None) -> None:
        super().__init__(detail or errors[0].detail, field=errors[0].field)
        self.errors = tuple(errors)


def problem(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (slug or _SLUGS.get(status, "error")),
        "title": _TITLES.get(status) or HTTPStatus(status).phrase,
        "status": status,
        "detail": redact(detail),
    }
    body.update(extra or {})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def invalid_input(exc: InvalidInput) -> Response:
    errors = exc.errors if isinstance(exc, FieldErrors) else (exc,)
    listed = [{"field": e.field, "detail": redact(e.detail)} for e in errors]
    slug = "unsafe-target" if isinstance(exc, UnsafeTarget) else "invalid-input"
    return problem(422, exc.detail, slug=slug, extra={"field": exc.field, "errors": listed})


async def _on_request_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestProblem)
    return problem(exc.status, exc.detail, headers=exc.headers)


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = {
        404: f"no route for {request.url.path}",
        405: f"{request.method} is not allowed on {request.url.path}",
    }.get(exc.status_code, str(exc.detail))
    return problem(exc.status_code, detail, headers=exc.headers)


async def _on_not_found(request: Request, exc: Exception) -> Response:
    return problem(404, str(exc) or "not found")


async def _on_conflict(request: Request, exc: Exception) -> Response:
    return problem(409, str(exc) or "conflict")


async def _on_invalid_input(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidInput)
    return invalid_input(exc)


async def _on_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("redis unavailable", extra={"error": str(exc), "path": request.url.path})
    if isinstance(exc, OutOfMemoryError):  # noeviction at maxmemory: nothing lost, writes wait
        detail = "Redis is out of memory; try again once memory frees"
        return problem(503, detail, headers={"Retry-After": "30"})
    return problem(503, "Redis is unavailable; try again shortly", headers={"Retry-After": "5"})


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    return problem(500, "internal error; see the server log")


EXCEPTION_HANDLERS: dict[Any, ExceptionHandler] = {
    RequestProblem: _on_request_problem,
    HTTPException: _on_http_exception,
    NotFound: _on_not_found,
    Conflict: _on_conflict,
    InvalidInput: _on_invalid_input,
    RedisUnavailable: _on_unavailable,
    RedisError: _on_unavailable,
    Exception: _on_unexpected,
}
