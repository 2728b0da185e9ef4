"""Realistic generated content: short SMS texts (some with leading spaces) and AU numbers."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

from relay.simulator.messages import NewMessage, StoredMessage

GeneratedKind = Literal["incoming", "outgoing", "mix"]
GENERATED_KINDS: tuple[GeneratedKind, ...] = ("incoming", "outgoing", "mix")

_INCOMING_TEXTS = (
    "Running 10 min late, sorry!",
    "Can we move Tuesday to 3pm?",
    " ggghhh",
    "  ok see you then",
    "Is the order ready for pickup?",
    "STOP",
    "Thanks 👍",
    "Café on George St at 5?",
    "What time do you close today",
    "Got it,\nthanks heaps",
)
_OUTGOING_TEXTS = (
    "Hello mommy",
    "Your appointment is confirmed for tomorrow at 10:30am. Reply Y to confirm.",
    "Your verification code is 482913",
    "Reminder: your parcel arrives today between 9am and 1pm.",
    "Reply> ggghhh",
    "Hi! Your table for 4 is booked. Reply STOP to opt out",
    "Your order #10492 has shipped.",
)
_REPLY_TEXTS = ("Y", " Y", "yes please", "No thanks", "STOP", "Can you call me?", " ggghhh")
_CUSTOMERS = 40  # a small pool, so the same numbers come back like real conversations
_MIX_WEIGHTS = {"incoming": 40, "outgoing": 35, "reply": 25}


class MessageSamples:
    """Makes NewMessages that look like real traffic, from an injected random source."""

    def __init__(self, *, rng: random.Random) -> None:
        self._rng = rng
        self._customers = [self.number() for _ in range(_CUSTOMERS)]

    def number(self) -> str:
        """A fresh 11-digit Australian-style number such as 61555879987."""
        return "61" + "".join(self._rng.choice("0123456789") for _ in range(9))

    def text(self, kind: Literal["incoming", "outgoing"]) -> str:
        """A short text typical for that direction."""
        return self._rng.choice(_INCOMING_TEXTS if kind == "incoming" else _OUTGOING_TEXTS)

    def customer(self) -> str:
        """A number from the pool of customers the account talks to."""
        return self._rng.choice(self._customers)

    def new_message(
        self,
        kind: GeneratedKind,
        *,
        own_number: str,
        timestamp: int,
        recent_outgoing: Sequence[StoredMessage],
    ) -> NewMessage:
        """A complete message; under "mix", replies answer one of `recent_outgoing`."""
        choice: str = kind
        if kind == "mix":
            weights = dict(_MIX_WEIGHTS)
            if not recent_outgoing:
                weights["reply"] = 0
            choice = self._rng.choices(list(weights), weights=list(weights.values()))[0]
        if choice == "reply":
            answered = self._rng.choice(recent_outgoing)
            return NewMessage(
                kind="incoming",
                text=self._rng.choice(_REPLY_TEXTS),
                sender=answered.recipient,
                recipient=own_number,
                timestamp=timestamp,
                origin_document_id=answered.object_id,
            )
        if choice == "outgoing":
            return NewMessage(
                kind="outgoing",
                text=self.text("outgoing"),
                recipient=self.customer(),
                timestamp=timestamp,
            )
        return NewMessage(
            kind="incoming",
            text=self.text("incoming"),
            sender=self.customer(),
            recipient=own_number,
            timestamp=timestamp,
        )
