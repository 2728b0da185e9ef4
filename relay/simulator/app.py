"""create_app() and serve(): the simulator as a Starlette app, and running it on uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from relay.core.errors import InvalidInput, NotFound
from relay.serving import serve_asgi
from relay.simulator.all_messages import (
    ALL_MESSAGES_PATH,
    all_messages,
    is_reset_due,
    reset_connection,
)
from relay.simulator.config import SimulatorConfig
from relay.simulator.control import control_routes, error_response
from relay.simulator.simulator import Simulator
from relay.simulator.traffic import TrafficGenerator

__all__ = ["SimulatorApp", "SimulatorConfig", "create_app", "serve"]


class SimulatorApp(Starlette):
    """Starlette, plus the one thing middleware cannot do: drop a connection unanswered
    (Starlette's outermost middleware hides the server's own `send`)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        simulator: Simulator = self.state.simulator
        if is_reset_due(scope, simulator):
            await reset_connection(scope, receive, send, simulator)
            return
        await super().__call__(scope, receive, send)


def create_app(
    config: SimulatorConfig | None = None, *, clock: Callable[[], float] = time.time
) -> Starlette:
    """The simulator app; `app.state.simulator` is its Simulator, `app.state.traffic` its
    TrafficGenerator. `clock` stamps messages added without a timestamp. Raises InvalidInput
    for an unusable config."""
    simulator = Simulator(config or SimulatorConfig(), clock=clock)
    traffic = TrafficGenerator(simulator)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await traffic.stop()

    app = SimulatorApp(
        routes=[
            Route(ALL_MESSAGES_PATH, all_messages, methods=["GET", "POST"]),
            *control_routes(),
        ],
        exception_handlers={InvalidInput: error_response, NotFound: error_response},
        lifespan=lifespan,
    )
    app.state.simulator = simulator
    app.state.traffic = traffic
    return app


async def serve(
    *, host: str, port: int, config: SimulatorConfig | None = None, traffic_rate: float = 0.0
) -> None:
    """Serve the simulator until cancelled, generating `traffic_rate` messages per second over
    every account. Raises OSError when it cannot listen; signals are left to the caller."""
    app = create_app(config)
    traffic: TrafficGenerator = app.state.traffic
    stop = asyncio.Event()
    server = asyncio.create_task(serve_asgi(app, host=host, port=port, stop=stop))
    if traffic_rate > 0:
        traffic.start(traffic_rate)
    try:
        # Shielded so a cancel becomes a graceful stop rather than killing uvicorn mid-request.
        await asyncio.shield(server)
    except asyncio.CancelledError:
        stop.set()
        await server
        raise
    finally:
        await traffic.stop()
