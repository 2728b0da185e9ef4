"""The upstream route, `/services/rest/user/allMessages`, faults included.

Every API-level outcome is HTTP 200 with a JSON `status`; only injected faults answer otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from relay.simulator import statuses
from relay.simulator.faults import Fault
from relay.simulator.hostile import hostile_response, oversize_response
from relay.simulator.page import render_page
from relay.simulator.params import check_params, read_params
from relay.simulator.simulator import Simulator

ALL_MESSAGES_PATH = "/services/rest/user/allMessages"
_RESET_WAIT_S = 1.0
_HTML_502 = """<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>nginx</center>
</body>
</html>
"""
# Cut mid-value, the way a proxy or a crashed worker truncates a body.
_TRUNCATED_JSON = '{"newestMessageTimestamp": 1366624802, "hasMoreMessages": tru'


async def all_messages(request: Request) -> Response:
    """Answer one allMessages call (GET query or POST form), after any queued fault."""
    simulator: Simulator = request.app.state.simulator
    values = await read_params(request)
    simulator.record_request(values.get("username"))
    fault = simulator.faults.take()
    if fault is not None and fault.kind in _INSTEAD:
        return fault_response(fault)
    if fault is not None and fault.kind == "slow":
        await asyncio.sleep(fault.delay_s)
    params = check_params(values)
    if isinstance(params, int):
        return JSONResponse({"status": params})
    status = simulator.login(params.username, params.password)
    if status != statuses.OK:
        return JSONResponse({"status": status})
    page = simulator.page(params.username, since=params.since)
    body = render_page(
        page.messages, has_more=page.has_more, since=params.since, config=simulator.switches
    )
    if fault is not None and fault.kind != "slow":
        return hostile_response(fault, body, since=params.since, now=simulator.now())
    return JSONResponse(body)


_INSTEAD = frozenset({"http_500", "html_502", "invalid_json", "status", "oversize"})


def fault_response(fault: Fault) -> Response:
    """What a call gets instead of its answer (the kinds in `_INSTEAD`)."""
    if fault.kind == "oversize":
        return oversize_response(fault)
    if fault.kind == "http_500":
        return PlainTextResponse("Internal Server Error", status_code=500)
    if fault.kind == "html_502":
        return Response(_HTML_502, status_code=502, media_type="text/html")
    if fault.kind == "invalid_json":
        return Response(_TRUNCATED_JSON, media_type="application/json")
    return JSONResponse({"status": fault.status})


def is_reset_due(scope: Scope, simulator: Simulator) -> bool:
    """True when this request is an allMessages call and the next queued fault is a reset."""
    fault = simulator.faults.peek()
    return (
        scope["type"] == "http"
        and scope["path"] == ALL_MESSAGES_PATH
        and fault is not None
        and fault.kind == "reset"
    )


async def reset_connection(
    scope: Scope, receive: Receive, send: Send, simulator: Simulator
) -> None:
    """Use up the reset fault: read the request, then drop the connection without a byte back.

    ASGI has no "close unanswered"; uvicorn's `send` is a method of its per-request cycle,
    which holds the socket transport, so the transport is aborted directly. Under a server
    without that, the answer is a response cut short: still a transport failure to a client."""
    simulator.faults.take()
    request = Request(scope, receive)
    simulator.record_request((await read_params(request)).get("username"))
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    abort = getattr(transport, "abort", None)
    if not callable(abort):
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]}
        )
        await send({"type": "http.response.body", "body": b'{"status"', "more_body": True})
        return
    abort()
    # Returning before the server notices the disconnect would make it answer 500 instead.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_RESET_WAIT_S):
            while (await receive())["type"] != "http.disconnect":
                pass
