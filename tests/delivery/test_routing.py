"""The routing index: a superset of the matching subscriptions, kept current by changes."""

from __future__ import annotations

from dataclasses import replace

from relay.core.models import Event, Secret, Subscription
from relay.delivery.routing import RoutingIndex


def _sub(
    sub_id: str,
    *,
    sources: tuple[str, ...] | None = None,
    types: tuple[str, ...] | None = None,
    enabled: bool = True,
) -> Subscription:
    return Subscription(
        id=sub_id,
        url="https://example.com/",
        secrets=(Secret("whsec_x"),),
        created_at=0.0,
        event_types=types,
        source_ids=sources,
        enabled=enabled,
    )


def _event(source: str | None, kind: str = "message.received") -> Event:
    return Event("evt_1", kind, source, 0, 0, b"{}")


def _routed(index: RoutingIndex, event: Event) -> set[str]:
    return {sub.id for sub in index.candidates(event) if sub.matches(event)}


def test_candidates_are_the_subscriptions_that_match_and_only_once_each() -> None:
    subs = [
        _sub("any"),
        _sub("src_a", sources=("a",)),
        _sub("src_a_or_b", sources=("a", "b")),
        _sub("sent_anywhere", types=("message.sent",)),
        _sub("received_from_a", sources=("a",), types=("message.received",)),
        _sub("nothing", sources=(), types=()),
        _sub("disabled", enabled=False),
    ]
    index = RoutingIndex()
    index.replace_all(subs, version=1)

    for event in [_event("a"), _event("b"), _event("c"), _event(None), _event("a", "message.sent")]:
        candidates = [sub.id for sub in index.candidates(event)]
        assert len(candidates) == len(set(candidates))
        assert set(candidates) == {sub.id for sub in subs if sub.enabled and sub.matches(event)}


def test_a_source_filtered_event_reads_only_its_own_buckets() -> None:
    index = RoutingIndex()
    index.replace_all([_sub(f"s{i}", sources=(f"src{i}",)) for i in range(1000)], version=1)
    assert [sub.id for sub in index.candidates(_event("src7"))] == ["s7"]


def test_changes_replace_disable_and_remove_subscriptions_in_place() -> None:
    index = RoutingIndex()
    moving = _sub("moving", sources=("a",))
    index.replace_all([moving, _sub("gone"), _sub("off")], version=3)

    index.apply(
        ["gone"],
        [replace(moving, source_ids=("b",)), _sub("off", enabled=False), _sub("new")],
        version=5,
    )

    assert index.version == 5
    assert _routed(index, _event("a")) == {"new"}
    assert _routed(index, _event("b")) == {"moving", "new"}
    assert index.get("gone") is None
    off = index.get("off")
    assert off is not None and not off.enabled  # known (explicit deliveries check it)


def test_disabled_subscriptions_are_kept_apart_and_follow_changes() -> None:
    index = RoutingIndex()
    index.replace_all([_sub("on"), _sub("off", enabled=False)], version=1)
    assert [sub.id for sub in index.disabled()] == ["off"]
    assert _routed(index, _event("a")) == {"on"}

    index.apply([], [_sub("on", enabled=False), _sub("off")], version=2)
    assert [sub.id for sub in index.disabled()] == ["on"]
    assert _routed(index, _event("a")) == {"off"}

    index.apply(["on"], [], version=3)
    assert index.disabled() == []
    index.replace_all([_sub("later", enabled=False)], version=4)
    assert [sub.id for sub in index.disabled()] == ["later"]
