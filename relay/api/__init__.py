"""The admin REST API: `create_app(settings, ...)` builds the Starlette app, `serve_api` runs it."""

from __future__ import annotations

from relay.api.app import create_app, serve_api

__all__ = ["create_app", "serve_api"]
