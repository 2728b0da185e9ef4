"""`relay subscriptions add --rate-limit/--concurrency/--timeout` against a live relay."""

from __future__ import annotations

from tests.workers.test_admin_cli import Run, ok_json, relay_cli
from workers.admin_cli import EXIT_REFUSED

__all__ = ["relay_cli"]  # the fixture, used by name


def test_subscriptions_add_sets_delivery_limits(relay_cli: Run) -> None:
    created = ok_json(
        relay_cli, "subscriptions", "add", "http://127.0.0.1:9/limited",
        "--rate-limit", "2.5", "--concurrency", "1", "--timeout", "4",
    )  # fmt: skip
    assert (created["rate_limit_per_s"], created["concurrency"], created["timeout_s"]) == (
        2.5,
        1,
        4,
    )
    plain = ok_json(relay_cli, "subscriptions", "add", "http://127.0.0.1:9/plain")
    assert (plain["rate_limit_per_s"], plain["concurrency"], plain["timeout_s"]) == (None,) * 3


def test_subscriptions_add_refuses_an_out_of_range_limit(relay_cli: Run) -> None:
    code, _, err = relay_cli("subscriptions", "add", "http://127.0.0.1:9/x", "--concurrency", "0")
    assert code == EXIT_REFUSED
    assert "concurrency must be between 1 and 1000" in err
