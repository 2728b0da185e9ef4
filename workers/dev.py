"""`relay dev`: the whole relay on one laptop, with demo traffic and a demo receiver.

Starts an embedded Redis when REDIS_URL is unset, the MC5 simulator generating messages, a
demo receiver that verifies and prints each webhook, and every relay role; subscribes the
receiver and points a source at the simulator; prints the admin URL, token and a curl line.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys

from relay.demo.seed import DEMO_PASSWORD, DEMO_USERNAME, seed_demo
from relay.settings import Settings
from relay.store.connection import check_redis, embedded_redis
from workers.supervisor import ROLES, ChildSpec, Supervisor, role_spec


def run_dev(
    settings: Settings,
    *,
    rate: float,
    simulator_port: int,
    receiver_port: int,
    verbose: bool = False,
) -> int:
    """Run everything until Ctrl-C; returns the exit status. The children log warnings and
    errors only, so the verified webhooks stand out, unless `verbose`."""
    with contextlib.ExitStack() as stack:
        redis_url = settings.redis_url or stack.enter_context(embedded_redis())
        check_redis(redis_url)
        if settings.admin_tokens:
            settings.require_admin_tokens()  # a weak token fails here, not in every child
        token = settings.admin_tokens[0] if settings.admin_tokens else secrets.token_urlsafe(24)
        settings = settings.replace(redis_url=redis_url, allow_private_targets=True)
        simulator_url = f"http://127.0.0.1:{simulator_port}"
        receiver_url = f"http://127.0.0.1:{receiver_port}/"
        secret = asyncio.run(
            seed_demo(settings, simulator_url=simulator_url, receiver_url=receiver_url)
        )
        env = {
            "REDIS_URL": redis_url,
            "RELAY_ADMIN_TOKEN": ",".join(settings.admin_tokens or (token,)),
            "RELAY_ALLOW_PRIVATE_TARGETS": "true",
            "RELAY_ALLOW_WEAK_TOKENS": "true" if settings.allow_weak_tokens else "false",
            "RELAY_DEMO_SECRET": secret,
            "RELAY_LOG_LEVEL": settings.log_level if verbose else "WARNING",
        }
        python = sys.executable
        children = [
            ChildSpec(
                "simulator",
                [
                    python,
                    "-m",
                    "workers.cli",
                    "simulate",
                    "--port",
                    str(simulator_port),
                    "--rate",
                    str(rate),
                    "--account",
                    f"{DEMO_USERNAME}:{DEMO_PASSWORD}",
                ],
                env,
            ),
            ChildSpec(
                "demo-receiver",
                [python, "-m", "workers.cli", "demo-receiver", "--port", str(receiver_port)],
                env,
            ),
            *(role_spec(role, env) for role in ROLES),
        ]
        _print_banner(settings, token=token, simulator_url=simulator_url, receiver_url=receiver_url)
        return Supervisor(children, grace_s=settings.delivery_timeout_s + 5).run()
    return 0


def _print_banner(settings: Settings, *, token: str, simulator_url: str, receiver_url: str) -> None:
    api = f"http://{settings.api_host}:{settings.api_port}"
    print(
        f"""
relay dev is starting (Ctrl-C stops everything)
  admin API      {api}   (OpenAPI: {api}/openapi.yaml)
  web console    {api}/ui/   (log in with the admin token)
  admin token    {token}
  MC5 simulator  {simulator_url}   (source {DEMO_USERNAME})
  demo receiver  {receiver_url}   (subscribed; prints each verified webhook below)

try:
  curl -s -H 'Authorization: Bearer {token}' {api}/v1/events?limit=3
""",
        flush=True,
    )
