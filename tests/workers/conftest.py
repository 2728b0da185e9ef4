"""Fixtures of the workers tests: a live `relay dev` for the clients (see live_relay.py)."""

from tests.workers.live_relay import live_relay

__all__ = ["live_relay"]
