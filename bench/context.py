"""What every scenario shares in one bench run: Redis, the simulator, the receivers, options."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from standardwebhooks.webhooks import Webhook

from bench.receiver_client import ReceiverClient
from bench.upstream import Upstream

SOURCES = 4  # accounts polled in every scenario
MC5_PAGE = 100  # what one allMessages call returns at most: the cap per account-second
BACKLOG_PER_SECOND = 90  # backlog messages per account-second: under one page of 100


@dataclass
class Context:
    redis_url: str
    log_dir: Path
    upstream: Upstream
    receiver: ReceiverClient
    profile: bool = False
    hang_receiver: ReceiverClient | None = None
    _names: itertools.count[int] = field(default_factory=itertools.count)

    def hang(self) -> ReceiverClient:
        """A second receiver process whose `/hang` paths never answer (started on first use)."""
        if self.hang_receiver is None:
            self.hang_receiver = ReceiverClient("hang-receiver", self.log_dir)
        return self.hang_receiver

    async def accounts(self, count: int = SOURCES) -> list[str]:
        """Fresh simulator accounts, so no message carries over between scenarios."""
        run = next(self._names)
        usernames = [f"b{run}s{n}@bench" for n in range(count)]
        await self.upstream.add_accounts(usernames)
        return usernames

    async def close(self) -> None:
        await self.upstream.close()
        await self.receiver.close()
        if self.hang_receiver is not None:
            await self.hang_receiver.close()


def split(total: int, parts: int) -> list[int]:
    """`total` as `parts` near-equal counts."""
    return [total // parts + (1 if n < total % parts else 0) for n in range(parts)]


def verify_samples(
    samples: dict[str, dict[str, Any]], secrets_by_path: dict[str, str]
) -> dict[str, int]:
    """Check one received webhook per path with the official standardwebhooks verifier."""
    ok = failed = 0
    for path, secret in secrets_by_path.items():
        sample = samples.get(path)
        if sample is None:
            continue
        try:
            Webhook(secret).verify(sample["body"], sample["headers"])
            ok += 1
        except Exception:  # the library raises its own WebhookVerificationError
            failed += 1
    return {"verified": ok, "failed": failed}


def last_json_line(path: Path) -> dict[str, Any]:
    """The last line of a log that parses as a JSON object."""
    for line in reversed(path.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict) and "level" not in value:
                return value
    raise RuntimeError(f"no result line in {path}")
