"""One JSON object per log line on stderr, with secrets redacted.

Every line has the keys of `FIELDS`, in that order, `null` when they do not apply:
`time` (RFC 3339 UTC, milliseconds), `level` (debug|info|warning|error|critical), `role`
(api, poller, dispatcher, worker, supervisor, dev, simulator), `logger`, `event` (what happened,
a fixed phrase), then the context of the record: `source_id`, `subscription_id`, `event_id`,
`attempt` (number, 1 = first), `status` (the HTTP status of an attempt) and `duration_ms`.
Other context follows under its own name (`error`, `url`, `count`, ...), and `traceback` for
an exception. Values of keys that name a secret (`password`, `secret`, `token`,
`authorization`) are replaced by "***", and webhook secrets, bearer tokens and URL passwords
anywhere in the line are masked. The level comes from RELAY_LOG_LEVEL.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from relay.core.redaction import redact

FIELDS = (
    "time",
    "level",
    "role",
    "logger",
    "event",
    "source_id",
    "subscription_id",
    "event_id",
    "attempt",
    "status",
    "duration_ms",
)
_SECRET_KEYS = ("password", "secret", "token", "authorization")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, *, role: str) -> None:
        super().__init__()
        self._role = role

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = dict.fromkeys(FIELDS)
        entry.update(
            time=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            level=record.levelname.lower(),
            role=self._role,
            logger=record.name,
            event=record.getMessage(),
        )
        for name, value in vars(record).items():
            if name in _STANDARD or name.startswith("_") or name in FIELDS[:5]:
                continue
            entry[name] = "***" if _names_secret(name) else value
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


def _names_secret(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_KEYS)


def configure_logging(*, role: str, level: str = "INFO") -> None:
    """Send every log record to stderr as one JSON line tagged with `role`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(role=role))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "httpx", "httpcore", "rq.worker", "rq.scheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
