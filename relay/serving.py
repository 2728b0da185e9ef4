"""Running an ASGI app on uvicorn until an asyncio.Event says stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import uvicorn
from starlette.types import ASGIApp


async def serve_asgi(app: ASGIApp, *, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve `app` until `stop` is set, then finish open requests and return.

    Signals are left to the caller (uvicorn's own handlers are not installed)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        http="httptools",
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    # The caller owns signals: uvicorn would replace its handlers while serving.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopper.cancel()
    await task
    if not server.started:
        logging.getLogger("relay.serving").error(
            "server could not start", extra={"host": host, "port": port}
        )
        raise OSError(f"could not listen on {host}:{port}")
