"""The values relay passes around: reprs without credentials, the created-after rule at its
millisecond boundary, and what an attempt's outcome is."""

from __future__ import annotations

import pytest

from relay.core.models import Attempt, Event, Secret, Source, Subscription
from relay.core.retry import Outcome


def test_source_repr_leaves_the_password_out() -> None:
    source = Source(
        id="src_1",
        username="alice",
        password="hunter2-secret",
        base_url="https://mc5.example",
        poll_interval_s=5.0,
        cursor=0,
        status="ok",
        created_at=0.0,
    )
    assert "hunter2-secret" not in repr(source)
    assert "alice" in repr(source)


def test_secret_and_subscription_reprs_leave_the_signing_secret_out() -> None:
    secret = Secret("whsec_c2VjcmV0LXNpZ25pbmcta2V5LXRoYXQtbXVzdC1zdGF5")
    subscription = Subscription(
        id="sub_1",
        url="https://example.com/hook",
        event_types=None,
        source_ids=None,
        description=None,
        headers={},
        enabled=True,
        secrets=(secret,),
        created_at=0.0,
    )
    assert secret.value not in repr(secret)
    assert secret.value not in repr(subscription)


def _subscription(created_at: float) -> Subscription:
    return Subscription(id="sub_1", url="https://example.com/", secrets=(), created_at=created_at)


def _event(created_at_ms: int) -> Event:
    return Event("evt_1", "message.received", "src_1", 0, created_at_ms, b"{}")


@pytest.mark.parametrize(
    ("subscribed_at", "recorded_at_ms", "expected"),
    [
        (1_700_000_000.0008, 1_700_000_000_000, True),  # 0.2 ms before, same millisecond
        (1_700_000_000.0008, 1_700_000_000_001, True),
        (1_700_000_000.0, 1_700_000_000_000, True),
        (1_700_000_000.001, 1_700_000_000_000, False),  # one millisecond after the event
        (1_700_000_001.0, 1_700_000_000_999, False),
    ],
)
def test_a_subscription_gets_events_recorded_in_or_after_its_own_millisecond(
    subscribed_at: float, recorded_at_ms: int, expected: bool
) -> None:
    assert _subscription(subscribed_at).predates(_event(recorded_at_ms)) is expected


def _attempt(status_code: int | None, outcome: Outcome | None = None) -> Attempt:
    return Attempt("att_1", "evt_1", "sub_1", 1, 0.0, status_code, None, None, 0, outcome)


@pytest.mark.parametrize(
    ("status_code", "outcome"),
    [
        (200, Outcome.DELIVERED),
        (299, Outcome.DELIVERED),
        (410, Outcome.GONE),
        (300, Outcome.FAILED),
        (None, Outcome.FAILED),
    ],
)
def test_an_attempt_outcome_follows_its_status_code(
    status_code: int | None, outcome: Outcome
) -> None:
    attempt = _attempt(status_code)
    assert attempt.outcome is outcome
    assert attempt.is_delivered is (outcome is Outcome.DELIVERED)
    assert attempt.was_sent


def test_a_dropped_attempt_was_never_sent() -> None:
    dropped = _attempt(None, Outcome.DROPPED)
    assert not dropped.was_sent
    assert not dropped.is_delivered
