"""When each source a poller holds is next due: a heap of next-poll times.

Taking the sources due now costs O(k log n) for k due of n held, so a round's work follows
the polls due, not the accounts held. A source is in the schedule only while it waits: the
poller pops it to poll it and puts it back when the poll is over, so one account never has
two requests in flight. Entries are deleted lazily: `set` and `remove` only touch the
`due` map, and stale heap entries are skipped when they reach the top.
"""

from __future__ import annotations

import heapq
import itertools


class Schedule:
    """Next-poll times (on the poller's clock) of the sources that wait for their poll."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str]] = []
        self._due: dict[str, float] = {}
        self._seq = itertools.count()  # ties keep insertion order; ids are never compared

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, source_id: object) -> bool:
        return source_id in self._due

    def due_at(self, source_id: str) -> float | None:
        """When the source is next due, None when it is not waiting."""
        return self._due.get(source_id)

    def set(self, source_id: str, due: float) -> None:
        """(Re)schedule the source at `due`."""
        self._due[source_id] = due
        heapq.heappush(self._heap, (due, next(self._seq), source_id))
        if len(self._heap) > 4 * len(self._due) + 64:
            self._compact()

    def remove(self, source_id: str) -> None:
        """Forget the source (no longer held)."""
        self._due.pop(source_id, None)

    def pop_due(self, now: float, *, limit: int) -> list[tuple[str, float]]:
        """Up to `limit` sources due at or before `now`, most overdue first, with their due
        times; they leave the schedule until `set` puts them back."""
        taken: list[tuple[str, float]] = []
        while self._heap and len(taken) < limit and self._heap[0][0] <= now:
            due, _, source_id = heapq.heappop(self._heap)
            if self._due.get(source_id) == due:
                del self._due[source_id]
                taken.append((source_id, due))
        return taken

    def next_due(self) -> float | None:
        """The earliest due time, None when nothing waits."""
        while self._heap:
            due, _, source_id = self._heap[0]
            if self._due.get(source_id) == due:
                return due
            heapq.heappop(self._heap)
        return None

    def latest(self, count: int) -> list[str]:
        """The `count` sources due last (the ones to hand over first when shedding)."""
        return heapq.nlargest(count, self._due, key=self._due.__getitem__)

    def _compact(self) -> None:
        self._heap = [(due, next(self._seq), sid) for sid, due in self._due.items()]
        heapq.heapify(self._heap)
