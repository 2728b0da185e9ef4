"""Log lines: one JSON object each, the same leading fields, secrets masked, level from
RELAY_LOG_LEVEL."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from relay.observability.logs import FIELDS
from tests.observability.scrape import ROOT

LOGGING = """
import logging
from relay.observability.logs import configure_logging
from relay.settings import Settings
settings = Settings.from_env()
configure_logging(role="dispatcher", level=settings.log_level)
log = logging.getLogger("relay.test")
log.info("quiet info", extra={"subscription_id": "sub_1"})
log.warning(
    "delivery attempt",
    extra={"subscription_id": "sub_1", "event_id": "evt_1", "attempt": 2, "status": 500,
           "duration_ms": 12, "password": "pw-sekrit", "url": "redis://u:pw2@h:6379/0",
           "error": "secret whsec_c2VjcmV0c2VjcmV0"},
)
"""


def _lines(level: str) -> list[dict[str, object]]:
    env = {**os.environ, "RELAY_LOG_LEVEL": level}
    result = subprocess.run(
        [sys.executable, "-c", LOGGING], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stderr.splitlines()]


def test_every_line_starts_with_the_same_fields_in_order() -> None:
    lines = _lines("INFO")
    assert [line["event"] for line in lines] == ["quiet info", "delivery attempt"]
    assert all(tuple(line)[: len(FIELDS)] == FIELDS for line in lines)
    quiet, attempt = lines
    assert (quiet["role"], quiet["level"], quiet["attempt"], quiet["status"]) == (
        "dispatcher",
        "info",
        None,
        None,
    )
    assert (attempt["attempt"], attempt["status"], attempt["duration_ms"]) == (2, 500, 12)


def test_secrets_are_masked_by_key_and_by_pattern() -> None:
    attempt = _lines("INFO")[-1]
    assert attempt["password"] == "***"
    assert attempt["url"] == "redis://u:***@h:6379/0"
    assert attempt["error"] == "secret whsec_***"


def test_relay_log_level_filters_lines() -> None:
    assert [line["event"] for line in _lines("WARNING")] == ["delivery attempt"]
