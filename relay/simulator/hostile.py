"""Answers of a hostile upstream: huge, trickled, poisoned, from the future, never ending.

Each is built from the answer the call would have had (`body`), so the stored messages stay
reachable and a client that survives the fault still gets them.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

from starlette.responses import Response, StreamingResponse

from relay.simulator import statuses
from relay.simulator.faults import Fault

_CHUNK_BYTES = 64 * 1024
_PLACEHOLDER = "__relay_sim_raw__"
_NON_UTF8 = b'"caf\xe9 \xff\xfe"'  # Latin-1 and stray bytes: invalid as UTF-8


def oversize_response(fault: Fault) -> Response:
    """A valid status-0 body of about `size_bytes`, streamed without a Content-Length."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"status": 0, "incomingMessages": [], "padding": "'
        left = fault.size_bytes
        while left > 0:
            size = min(left, _CHUNK_BYTES)
            left -= size
            yield b"x" * size
            await asyncio.sleep(0)
        yield b'"}'

    return StreamingResponse(chunks(), media_type="application/json")


def hostile_response(fault: Fault, body: dict[str, object], *, since: int, now: int) -> Response:
    """The answer `body` bent by a trickle, poison, non_utf8, future or endless fault."""
    if fault.kind == "trickle":
        return _trickle(json.dumps(body).encode(), delay_s=fault.delay_s)
    if fault.kind == "endless":
        endless = {
            "status": statuses.OK,
            "hasMoreMessages": True,
            "newestMessageTimestamp": since,
            "incomingMessages": [_fresh_message(since, prefix="endless")],
            "outgoingMessages": [],
        }
        return Response(json.dumps(endless), media_type="application/json")
    incoming = list(body.get("incomingMessages") or [])  # type: ignore[call-overload]
    if fault.kind == "future":
        incoming.append(_fresh_message(now + fault.offset_s, prefix="future"))
        return Response(
            json.dumps({**body, "incomingMessages": incoming}), media_type="application/json"
        )
    field = "text" if fault.kind == "non_utf8" else fault.field
    message = _fresh_message(max(since, 1), prefix=fault.kind)
    message[field] = _PLACEHOLDER
    incoming.insert(0, message)
    raw = _NON_UTF8 if fault.kind == "non_utf8" else fault.raw.encode()
    text = json.dumps({**body, "incomingMessages": incoming}).encode()
    return Response(text.replace(f'"{_PLACEHOLDER}"'.encode(), raw), media_type="application/json")


def _fresh_message(timestamp: int, *, prefix: str) -> dict[str, object]:
    return {
        "documentId": f"{prefix}-{uuid.uuid4().hex[:12]}",
        "text": prefix,
        "timestamp": timestamp,
        "from": "61400000000",
        "recipient": "61400000001",
    }


def _trickle(content: bytes, *, delay_s: float) -> Response:
    async def bytes_one_by_one() -> AsyncIterator[bytes]:
        for index in range(len(content)):
            yield content[index : index + 1]
            await asyncio.sleep(delay_s)

    return StreamingResponse(bytes_one_by_one(), media_type="application/json")
