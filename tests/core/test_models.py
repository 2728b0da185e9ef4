"""Values that carry credentials never show them in their repr (logs, tracebacks, asserts)."""

from __future__ import annotations

from relay.core.models import Secret, Source, Subscription


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
