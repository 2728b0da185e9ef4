"""The `/_sim/...` control routes (JSON in and out; not part of MC5).

Errors: 400 for a body that is not a JSON object, 422 for a bad field, 404 for an unknown
account, each as `{"error": "...", "field": ...}`."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from relay.core.errors import InvalidInput
from relay.simulator.control_input import (
    BulkInput,
    MalformedBody,
    parse_account,
    parse_fault,
    parse_messages,
    parse_traffic,
)
from relay.simulator.page import describe_message
from relay.simulator.simulator import Simulator
from relay.simulator.traffic import TrafficGenerator


def control_routes() -> list[BaseRoute]:
    """Every control route, to mount next to the upstream one."""
    return [
        Route("/_sim/messages", add_messages, methods=["POST"]),
        Route("/_sim/messages", list_messages, methods=["GET"]),
        Route("/_sim/messages", clear_messages, methods=["DELETE"]),
        Route("/_sim/config", get_config, methods=["GET"]),
        Route("/_sim/config", update_config, methods=["POST"]),
        Route("/_sim/accounts", set_account, methods=["POST"]),
        Route("/_sim/faults", add_fault, methods=["POST"]),
        Route("/_sim/faults", clear_faults, methods=["DELETE"]),
        Route("/_sim/stats", get_stats, methods=["GET"]),
        Route("/_sim/traffic", get_traffic, methods=["GET"]),
        Route("/_sim/traffic", set_traffic, methods=["POST"]),
    ]


async def error_response(request: Request, exc: Exception) -> Response:
    """InvalidInput as 422 (400 when the body is malformed); anything else (NotFound) as 404."""
    if isinstance(exc, InvalidInput):
        code = 400 if isinstance(exc, MalformedBody) else 422
        return JSONResponse({"error": exc.detail, "field": exc.field}, status_code=code)
    return JSONResponse({"error": str(exc), "field": None}, status_code=404)


async def add_messages(request: Request) -> Response:
    """Store explicit or generated messages; 201 with their documentIds as strings."""
    simulator = _simulator(request)
    body = parse_messages(await _json(request))
    username = simulator.resolve_username(body.username)
    integer_ids = simulator.switches.integer_ids
    if isinstance(body, BulkInput):
        stored = simulator.add_generated(
            username,
            count=body.count,
            kind=body.kind,
            timestamp=body.timestamp,
            per_second=body.per_second,
        )
    else:
        stored = [simulator.add(username, message) for message in body.messages]
    ids = [str(message.document_id(integer_ids=integer_ids)) for message in stored]
    return JSONResponse({"documentIds": ids}, status_code=201)


async def list_messages(request: Request) -> Response:
    """Every kept message of `?username=` (default: the first account), oldest first."""
    simulator = _simulator(request)
    username = simulator.resolve_username(request.query_params.get("username"))
    integer_ids = simulator.switches.integer_ids
    messages = [
        describe_message(message, integer_ids=integer_ids)
        for message in simulator.messages(username)
    ]
    return JSONResponse({"username": username, "messages": messages})


async def clear_messages(request: Request) -> Response:
    """Forget all messages (only `?username=`'s when given)."""
    _simulator(request).clear(request.query_params.get("username"))
    return Response(status_code=204)


async def get_config(request: Request) -> Response:
    """The current switches."""
    return JSONResponse(_simulator(request).switches.switches())


async def update_config(request: Request) -> Response:
    """Change some switches (not accounts); answers with all of them."""
    body = await _json(request)
    if not isinstance(body, dict):
        raise MalformedBody("the body must be a JSON object")
    return JSONResponse(_simulator(request).update_config(body).switches())


async def set_account(request: Request) -> Response:
    """Create or update an account; its messages are kept."""
    account = parse_account(await _json(request))
    _simulator(request).set_account(account)
    return JSONResponse({"username": account.username, "status": account.status})


async def add_fault(request: Request) -> Response:
    """Queue a fault for the next `times` allMessages calls; answers with the queue length."""
    body = parse_fault(await _json(request))
    simulator = _simulator(request)
    simulator.faults.add(body.fault, times=body.times)
    return JSONResponse({"pending": len(simulator.faults)}, status_code=201)


async def clear_faults(request: Request) -> Response:
    """Drop every pending fault."""
    _simulator(request).faults.clear()
    return Response(status_code=204)


async def get_stats(request: Request) -> Response:
    """allMessages call counts (total and per username) and kept messages."""
    return JSONResponse(_simulator(request).stats())


async def get_traffic(request: Request) -> Response:
    """The generator's rate, accounts and messages produced."""
    return JSONResponse(_traffic(request).describe())


async def set_traffic(request: Request) -> Response:
    """Start the generator at `rate` messages per second (0 stops it)."""
    body = parse_traffic(await _json(request))
    traffic = _traffic(request)
    if body.rate == 0:
        await traffic.stop()
    else:
        traffic.start(body.rate, body.usernames)
    return JSONResponse(traffic.describe())


async def _json(request: Request) -> object:
    try:
        body: object = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedBody("the body is not valid JSON") from exc
    return body


def _simulator(request: Request) -> Simulator:
    simulator: Simulator = request.app.state.simulator
    return simulator


def _traffic(request: Request) -> TrafficGenerator:
    traffic: TrafficGenerator = request.app.state.traffic
    return traffic
