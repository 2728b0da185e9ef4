"""A subscription's filter on the SMS itself: recipient and sender prefixes, first keyword.

One MC5 account often serves several numbers or apps, so the type and source filters are too
coarse. Numbers compare as the upstream sent them (a prefix of the string, no normalization:
"+4477" and "4477" are different prefixes); the keyword is the text's first word,
case-insensitive. Pure, like the rest of relay.core.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any


@dataclass(frozen=True, slots=True)
class SmsFields:
    """What a match filter looks at in one event's message (None when absent)."""

    sender: str | None
    recipient: str | None
    keyword: str | None  # the first word of the text, casefolded


@dataclass(frozen=True, slots=True)
class SmsMatch:
    """Every list given must match (any item of it); None means no filter on that field."""

    recipients: tuple[str, ...] | None = None
    senders: tuple[str, ...] | None = None
    keywords: tuple[str, ...] | None = None  # casefolded

    def matches(self, body: bytes) -> bool:
        """Whether the message in an event's body passes this filter. A message without the
        field a list filters on (an outgoing SMS has no `from`) does not pass it."""
        sms = sms_fields(body)
        return (
            _prefixed(sms.recipient, self.recipients)
            and _prefixed(sms.sender, self.senders)
            and (self.keywords is None or sms.keyword in self.keywords)
        )

    def as_dict(self) -> dict[str, list[str]]:
        """The given lists only, as the API shows and the store keeps them."""
        given = {"recipients": self.recipients, "senders": self.senders, "keywords": self.keywords}
        return {name: list(items) for name, items in given.items() if items is not None}


def sms_match_from_dict(value: dict[str, Any]) -> SmsMatch:
    """The inverse of `SmsMatch.as_dict` (for stored, already validated values)."""

    def items(name: str) -> tuple[str, ...] | None:
        given = value.get(name)
        return None if given is None else tuple(given)

    return SmsMatch(items("recipients"), items("senders"), items("keywords"))


@lru_cache(maxsize=4096)
def sms_fields(body: bytes) -> SmsFields:
    """The fields a filter reads, parsed once per body: the dispatcher asks for each
    subscription with a filter, and bodies repeat across them."""
    data: Any = json.loads(body).get("data")
    if not isinstance(data, dict):
        return SmsFields(None, None, None)
    text = data.get("text")
    words = text.split(maxsplit=1) if isinstance(text, str) else []
    return SmsFields(
        sender=_string(data.get("from")),
        recipient=_string(data.get("recipient")),
        keyword=words[0].casefold() if words else None,
    )


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _prefixed(number: str | None, prefixes: tuple[str, ...] | None) -> bool:
    if prefixes is None:
        return True
    return number is not None and number.startswith(prefixes)
