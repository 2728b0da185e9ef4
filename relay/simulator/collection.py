"""One account's messages: a capped collection kept sorted by (second, insertion order)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from relay.simulator.messages import StoredMessage


@dataclass(frozen=True)
class Page:
    """Messages answering one call, oldest first, and whether more follow them."""

    messages: tuple[StoredMessage, ...]
    has_more: bool


class MessageCollection:
    """At most `capacity` messages; past it the oldest (by second, then insertion) silently go.

    `since` lookups bisect a sorted key list, so paging a large backlog stays O(log n + page)."""

    def __init__(self, *, capacity: int) -> None:
        self._capacity = capacity
        self._keys: list[tuple[int, int]] = []  # (timestamp, integer_id), parallel to _messages
        self._messages: list[StoredMessage] = []
        self._by_id: dict[str, StoredMessage] = {}

    def __len__(self) -> int:
        return len(self._messages)

    def add(self, message: StoredMessage) -> None:
        """Store `message` in order, then drop the oldest beyond capacity."""
        key = (message.timestamp, message.integer_id)
        # Messages usually arrive in time order: appending then is O(1).
        index = bisect.bisect_right(self._keys, key)
        self._keys.insert(index, key)
        self._messages.insert(index, message)
        self._by_id[message.object_id] = message
        self._by_id[str(message.integer_id)] = message
        self._trim()

    def set_capacity(self, capacity: int) -> None:
        """Change the cap; a smaller one drops the oldest messages at once."""
        self._capacity = capacity
        self._trim()

    def find(self, document_id: str) -> StoredMessage | None:
        """The stored message with this ObjectId or integer id, if still kept."""
        return self._by_id.get(document_id)

    def page(self, since: int, *, inclusive: bool, limit: int) -> Page:
        """The first `limit` messages at or after `since` (after it when not `inclusive`)."""
        first_second = since if inclusive else since + 1
        start = bisect.bisect_left(self._keys, (first_second, -1))
        end = start + limit
        return Page(tuple(self._messages[start:end]), has_more=end < len(self._messages))

    def all(self) -> list[StoredMessage]:
        """Every kept message, oldest first."""
        return list(self._messages)

    def clear(self) -> None:
        """Forget every message."""
        self._keys.clear()
        self._messages.clear()
        self._by_id.clear()

    def _trim(self) -> None:
        excess = len(self._messages) - self._capacity
        if excess <= 0:
            return
        for message in self._messages[:excess]:
            del self._by_id[message.object_id]
            del self._by_id[str(message.integer_id)]
        del self._keys[:excess]
        del self._messages[:excess]
