"""Simulator: the in-memory MC5 upstream (accounts, capped collections, faults, call counts)."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter, deque
from collections.abc import Callable, Mapping

from relay.core.errors import InvalidInput, NotFound
from relay.simulator.accounts import Account, login_status
from relay.simulator.collection import MessageCollection, Page
from relay.simulator.config import SimulatorConfig, with_changes
from relay.simulator.faults import FaultQueue
from relay.simulator.messages import NewMessage, StoredMessage
from relay.simulator.objectid import ObjectIdGenerator
from relay.simulator.samples import GeneratedKind, MessageSamples

_RECENT_OUTGOING = 50  # how far back generated replies may reach


class Simulator:
    """The upstream's state. Use it from the event loop that serves the app (not thread-safe).

    In-process code adds messages with `add` / `add_generated`, exactly as the control
    route does; `page` answers the allMessages call once credentials are checked."""

    def __init__(
        self,
        config: SimulatorConfig,
        *,
        clock: Callable[[], float],
        rng: random.Random | None = None,
    ) -> None:
        # The switches; the accounts live in `_accounts` only (see `switches`).
        self._config = dataclasses.replace(with_changes(config, {}), accounts={})
        self._clock = clock
        self._rng = rng or random.Random()
        self._ids = ObjectIdGenerator(rng=self._rng)
        self._samples = MessageSamples(rng=self._rng)
        self._accounts: dict[str, Account] = {}
        self._collections: dict[str, MessageCollection] = {}
        self._recent_outgoing: dict[str, deque[StoredMessage]] = {}
        self._next_integer_id = 1
        self.faults = FaultQueue()
        self._requests = 0
        self._requests_by_username: Counter[str] = Counter()
        for username, password in config.accounts.items():
            self.set_account(Account(username, password))

    @property
    def config(self) -> SimulatorConfig:
        """The current settings and every account (a copy: change them with
        `update_config`); O(accounts), so requests read `switches` instead."""
        accounts = {name: account.password for name, account in self._accounts.items()}
        return dataclasses.replace(self._config, accounts=accounts)

    @property
    def switches(self) -> SimulatorConfig:
        """The current settings without the accounts (`accounts` is empty): what every
        allMessages call reads, at a cost that does not grow with the accounts held.
        Copying and re-checking every account per call took 62 % of the simulator's CPU
        at 1,000 accounts. Treat it as read-only."""
        return self._config

    def update_config(self, changes: Mapping[str, object]) -> SimulatorConfig:
        """Apply a partial change of the switches; raises InvalidInput and changes nothing."""
        self._config = with_changes(self._config, changes)
        for collection in self._collections.values():
            collection.set_capacity(self._config.capacity)
        return self.config

    def now(self) -> int:
        """The injected clock's current epoch second."""
        return int(self._clock())

    # Accounts

    def set_account(self, account: Account) -> None:
        """Create or replace an account; its messages are kept."""
        self._accounts[account.username] = account
        if account.username not in self._collections:
            self._collections[account.username] = MessageCollection(capacity=self._config.capacity)
            self._recent_outgoing[account.username] = deque(maxlen=_RECENT_OUTGOING)

    def account(self, username: str) -> Account | None:
        """The account, or None if it does not exist."""
        return self._accounts.get(username)

    def usernames(self) -> list[str]:
        """Every account, first configured first."""
        return list(self._accounts)

    def resolve_username(self, username: str | None) -> str:
        """`username`, or the first account when None; raises NotFound for an unknown one."""
        if username is None:
            if not self._accounts:
                raise NotFound("there are no accounts")
            return next(iter(self._accounts))
        if username not in self._accounts:
            raise NotFound(f"no account {username!r}")
        return username

    # Messages

    def add(self, username: str, message: NewMessage) -> StoredMessage:
        """Store one message for `username`, filling unset fields; raises NotFound/InvalidInput."""
        account = self._accounts.get(username)
        if account is None:
            raise NotFound(f"no account {username!r}")
        collection = self._collections[username]
        timestamp = self.now() if message.timestamp is None else message.timestamp
        try:
            object_id = self._ids.new_id(timestamp)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="timestamp") from exc
        origin_object_id, origin_integer_id = self._resolve_origin(
            collection, message.origin_document_id
        )
        if message.kind == "incoming":
            sender = message.sender or self._samples.customer()
            recipient = message.recipient or account.number
        else:
            sender = None
            recipient = message.recipient or self._samples.customer()
        stored = StoredMessage(
            object_id=object_id,
            integer_id=self._next_integer_id,
            kind=message.kind,
            text=self._samples.text(message.kind) if message.text is None else message.text,
            timestamp=timestamp,
            sender=sender,
            recipient=recipient,
            origin_object_id=origin_object_id,
            origin_integer_id=origin_integer_id,
        )
        self._next_integer_id += 1
        collection.add(stored)
        if stored.kind == "outgoing":
            self._recent_outgoing[username].append(stored)
        return stored

    def add_generated(
        self,
        username: str,
        *,
        count: int,
        kind: GeneratedKind = "incoming",
        timestamp: int | None = None,
        per_second: int | None = None,
    ) -> list[StoredMessage]:
        """Store `count` realistic messages from `timestamp` (default now), all in that second
        unless `per_second` spreads them over the following seconds; "mix" includes replies."""
        account = self._accounts.get(username)
        if account is None:
            raise NotFound(f"no account {username!r}")
        first_second = self.now() if timestamp is None else timestamp
        added = []
        for index in range(count):
            second = first_second + (index // per_second if per_second else 0)
            new = self._samples.new_message(
                kind,
                own_number=account.number,
                timestamp=second,
                recent_outgoing=self._recent_outgoing[username],
            )
            added.append(self.add(username, new))
        return added

    def messages(self, username: str) -> list[StoredMessage]:
        """Every kept message of `username`, oldest first; raises NotFound."""
        return self._collections[self.resolve_username(username)].all()

    def clear(self, username: str | None = None) -> None:
        """Forget the messages of one account, or of all when `username` is None."""
        names = self.usernames() if username is None else [self.resolve_username(username)]
        for name in names:
            self._collections[name].clear()
            self._recent_outgoing[name].clear()

    def message_count(self) -> int:
        """Messages kept across all accounts."""
        return sum(len(collection) for collection in self._collections.values())

    # The upstream call

    def record_request(self, username: str | None) -> None:
        """Count one allMessages call, whatever its outcome."""
        self._requests += 1
        if username is not None:
            self._requests_by_username[username] += 1

    def login(self, username: str, password: str) -> int:
        """The MC5 status for these credentials; statuses.OK means `page` may be called."""
        return login_status(self._accounts.get(username), password)

    def page(self, username: str, *, since: int) -> Page:
        """One page of `username`'s messages from `since`, per the current switches.

        Credentials are the caller's business (see `login`); raises NotFound for no account."""
        return self._collections[self.resolve_username(username)].page(
            since, inclusive=self._config.inclusive_since, limit=self._config.page_size
        )

    def stats(self) -> dict[str, object]:
        """Call counts and the number of kept messages, for tests and the demo."""
        return {
            "requests": self._requests,
            "requests_by_username": dict(self._requests_by_username),
            "messages": self.message_count(),
        }

    def _resolve_origin(
        self, collection: MessageCollection, origin: str | None
    ) -> tuple[str | None, int | None]:
        if origin is None:
            return None, None
        answered = collection.find(origin.lower())
        if answered is not None:
            return answered.object_id, answered.integer_id
        # Replies may point at messages long gone from the capped collection: keep the id given.
        return origin, int(origin) if origin.isdigit() else None
