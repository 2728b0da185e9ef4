"""The fast receiver: a raw ASGI app on uvicorn with httptools, run in its own process.

Every POST is answered 200 at once, except under `/hang`, which never answers (the
connection stays open until the client gives up), and under `/down`, answered 503 (and not
recorded) until `POST /_bench/up`. It counts deliveries and records the
arrival time of each (webhook-id, path), plus one sample request per path so the bench can
check the signatures afterwards. Control routes (JSON):

    GET  /_bench/stats     {"total", "duplicates", "per_path": {path: n}}
    GET  /_bench/arrivals  {"arrivals": {path: {webhook_id: epoch_s}}, "documents": {id: doc}}
    GET  /_bench/samples   {path: {"headers": {...}, "body": str}}
    POST /_bench/up        `/down` paths answer 200 from now on
    POST /_bench/reset     forget everything (and `/down` is down again)

Run: `python -m bench.receiver --port P`.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_OK_START = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]}
_OK_BODY = {"type": "http.response.body", "body": b""}


class Receiver:
    """The ASGI app and what it recorded."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total = 0
        self.duplicates = 0
        self.arrivals: dict[str, dict[str, float]] = {}
        self.bodies: dict[str, bytes] = {}  # first body per webhook-id, parsed only on dump
        self.samples: dict[str, dict[str, object]] = {}
        self.down = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/_bench/"):
            await self._control(scope, path, send)
            return
        body = await _read_body(receive)
        now = time.time()
        if path.startswith("/hang"):
            await _wait_for_disconnect(receive)
            return
        if self.down and path.startswith("/down"):
            await _respond(send, 503, b"")
            return
        webhook_id = ""
        for name, value in scope["headers"]:
            if name == b"webhook-id":
                webhook_id = value.decode()
                break
        seen = self.arrivals.get(path)
        if seen is None:
            seen = self.arrivals[path] = {}
            self.samples[path] = {
                "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
                "body": body.decode(),
            }
        if webhook_id in seen:
            self.duplicates += 1
        else:
            seen[webhook_id] = now
        self.bodies.setdefault(webhook_id, body)
        self.total += 1
        await send(_OK_START)
        await send(_OK_BODY)

    async def _control(self, scope: Scope, path: str, send: Send) -> None:
        if path == "/_bench/stats":
            per_path = {p: len(ids) for p, ids in self.arrivals.items()}
            payload: object = {
                "total": self.total,
                "duplicates": self.duplicates,
                "per_path": per_path,
            }
        elif path == "/_bench/arrivals":
            payload = {"arrivals": self.arrivals, "documents": self._documents()}
        elif path == "/_bench/samples":
            payload = self.samples
        elif path == "/_bench/up" and scope["method"] == "POST":
            self.down = False
            payload = {"ok": True}
        elif path == "/_bench/reset" and scope["method"] == "POST":
            self.reset()
            payload = {"ok": True}
        else:
            await _respond(send, 404, b'{"error":"not found"}')
            return
        await _respond(send, 200, json.dumps(payload).encode())

    def _documents(self) -> dict[str, str]:
        documents: dict[str, str] = {}
        for webhook_id, body in self.bodies.items():
            try:
                documents[webhook_id] = str(json.loads(body)["data"]["documentId"])
            except (ValueError, KeyError, TypeError):
                continue
        return documents


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _respond(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.receiver")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        Receiver(),
        host=args.host,
        port=args.port,
        http="httptools",
        loop="uvloop",
        access_log=False,
        log_level="warning",
        backlog=4096,
        timeout_keep_alive=60,
    )


if __name__ == "__main__":
    main()
