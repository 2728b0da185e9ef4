"""The results as rows (scenario, figure, value, target, met?), printed, as Markdown, as JSON."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DEDUPE_TARGET_BYTES = 100
EVENT_TARGET_RATIO = 2.0
LIMIT_TARGET_RATIO = 0.5
NAIVE_TARGET_RATIO = 20.0
ISOLATION_TARGET_RATIO = 1.10
LATENCY_MARGIN_MS = 250.0
END_TO_END_TARGET_RATIO = 0.75
ROUTING_TARGET_RATIO = 0.90
RETRY_DRAIN_TARGET_RATIO = 0.50
FAIR_LATENESS_TARGET_S = 1.0  # a healthy subscriber's retry runs within 1 s of its due time


@dataclass(frozen=True)
class Row:
    scenario: str
    figure: str
    value: str
    target: str = ""
    met: bool | None = None


def _rate(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:,.0f} /s"


def _ms(value: float) -> str:
    return f"{value:,.0f} ms"


def _mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 1024 / 1024:,.0f} MiB"


def build_rows(scenarios: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    relay = scenarios.get("throughput")
    limit = scenarios.get("limit")
    naive_runs = scenarios.get("naive") or []
    if relay:
        size = f"{relay['messages']:,} msgs x {relay['subscribers']} subs"
        size += f", {relay.get('dispatchers', 1)} dispatcher(s)"
        figure = f"relay end to end (roles start -> last delivery, ingest included), {size}"
        rows.append(Row("throughput", figure, _rate(_end_to_end_rate(relay))))
        figure = f"relay dispatch only (first -> last arrival), {size}"
        rows.append(Row("throughput", figure, _rate(relay["rate_per_s"])))
        if relay["delivered_unique"] < relay["expected"]:
            missing = relay["expected"] - relay["delivered_unique"]
            rows.append(Row("throughput", "relay: deliveries missing", str(missing), "0", False))
    if limit:
        figure = f"limit: plain aiohttp loop, {limit['concurrency']} concurrent"
        rows.append(Row("throughput", figure, _rate(limit["rate_per_s"])))
    for run in naive_runs:
        figure = f"naive: RQ job per delivery, {run['workers']} SimpleWorker(s)"
        rows.append(Row("throughput", figure, _rate(run["rate_per_s"])))
    if relay and limit and limit["rate_per_s"]:
        ratio = relay["rate_per_s"] / limit["rate_per_s"]
        rows.append(
            Row(
                "throughput",
                "relay / limit",
                f"{ratio:.2f}",
                f">= {LIMIT_TARGET_RATIO:.2f}",
                ratio >= LIMIT_TARGET_RATIO,
            )
        )
    end_to_end = _end_to_end_rate(relay) if relay else None
    if end_to_end and limit and limit["rate_per_s"]:
        # Reported only: the end-to-end target is judged in the one-account scenario, against
        # the fastest of three plain clients, not this one aiohttp loop.
        ratio = end_to_end / limit["rate_per_s"]
        what = "relay end to end / limit (target judged in one account)"
        rows.append(Row("throughput", what, f"{ratio:.2f}", "reported"))
    if relay and naive_runs:
        best = max(run["rate_per_s"] for run in naive_runs)
        if best:
            ratio = relay["rate_per_s"] / best
            rows.append(
                Row(
                    "throughput",
                    "relay / naive (best of the naive runs)",
                    f"{ratio:.1f}x",
                    f">= {NAIVE_TARGET_RATIO:.0f}x",
                    ratio >= NAIVE_TARGET_RATIO,
                )
            )
    rows += _cpu_rows(relay, limit, naive_runs)
    rows += _latency_rows(scenarios)
    rows += _memory_rows(scenarios.get("memory"))
    rows += _scale_rows([run for run in (relay, scenarios.get("scaleout")) if run])
    rows += _routing_rows(scenarios.get("routing") or [])
    rows += _storm_rows(scenarios.get("storm"))
    rows += _fairness_rows(scenarios.get("fairness"))
    rows += _one_account_rows(scenarios.get("oneaccount"))
    return rows


def _scale_rows(runs: list[dict[str, Any]]) -> list[Row]:
    """The same backlog drained with different dispatcher counts (the throughput and
    scale-out runs)."""
    by_count = {run.get("dispatchers", 1): run["rate_per_s"] for run in runs}
    rows = []
    for count, rate in sorted(by_count.items()):
        rows.append(Row("scale-out", f"{count} dispatcher{'s' if count > 1 else ''}", _rate(rate)))
    if len(by_count) == 2:
        (low, low_rate), (high, high_rate) = sorted(by_count.items())
        if low_rate:
            what = f"{high} / {low} dispatchers"
            rows.append(Row("scale-out", what, f"{high_rate / low_rate:.2f}", "reported"))
    return rows


def _one_account_rows(one: dict[str, Any] | None) -> list[Row]:
    """One account's backlog end to end (source created -> last delivery), beside the plain
    aiohttp client on the standard loop and on uvloop (the issue's reference client) and the
    plain loop on the relay's own HTTP client; the target is judged against the fastest."""
    if not one:
        return []
    relay = one["relay"]
    aiohttp_runs = [one["limit"], *([one["limit_uvloop"]] if "limit_uvloop" in one else [])]
    own = one.get("limit_relay_client")
    limits = [*aiohttp_runs, *([own] if own else [])]
    size = f"{relay['messages']:,} x {relay['subscribers']}"
    end_to_end = _end_to_end_rate(relay)
    rows = [
        Row("one account", f"relay end to end, {size}, ingest included", _rate(end_to_end)),
        Row("one account", "ingest", f"{relay['ingest_rate_per_s']:,.0f} messages/s"),
    ]
    for limit in limits:
        client, loop = limit.get("client", "aiohttp"), limit.get("event_loop", "asyncio")
        what = f"plain loop on {client}'s HTTP client ({loop} loop), same deliveries"
        rows.append(Row("one account", what, _rate(limit["rate_per_s"])))
    fastest_aiohttp = max(limit["rate_per_s"] for limit in aiohttp_runs)
    if end_to_end and fastest_aiohttp and own:
        what = "relay end to end / the faster aiohttp client"
        rows.append(Row("one account", what, f"{end_to_end / fastest_aiohttp:.2f}", "reported"))
    fastest = max(limit["rate_per_s"] for limit in limits)
    if end_to_end and fastest:
        ratio = end_to_end / fastest
        target = f">= {END_TO_END_TARGET_RATIO:.2f}"
        met = ratio >= END_TO_END_TARGET_RATIO
        what = "relay end to end / the fastest plain client"
        rows.append(Row("one account", what, f"{ratio:.2f}", target, met))
    us = relay["cpu_us_per_delivery"]
    rows.append(Row("one account", "CPU per delivery: relay roles", f"{us:,.0f} us"))
    shared = {
        "Redis server": "redis_cpu_us_per_delivery",
        "receiver": "receiver_cpu_us_per_delivery",
    }
    for what, key in shared.items():
        if key in relay:  # Redis's is in runs from 2026-12-08 on
            rows.append(Row("one account", f"CPU per delivery: {what}", f"{relay[key]:,.0f} us"))
    if "redis_commands_per_delivery" in relay:  # in runs from 2026-12-08 on
        calls = relay["redis_calls_per_delivery"]
        top = ", ".join(f"{name} {n:.2f}" for name, n in list(calls.items())[:4])
        what = "Redis commands per delivery (scripts' own included)"
        rows.append(Row("one account", what, f"{relay['redis_commands_per_delivery']:.1f} ({top})"))
    for run in limits:
        client, loop = run.get("client", "aiohttp"), run.get("event_loop", "asyncio")
        what = f"CPU per delivery: plain loop on {client}'s client ({loop} loop)"
        rows.append(Row("one account", what, f"{run['cpu_us_per_delivery']:,.0f} us"))
    return rows


def _fairness_rows(fairness: dict[str, Any] | None) -> list[Row]:
    """How late a healthy subscriber's retries run while another hangs with a backlog."""
    if not fairness:
        return []
    late = fairness["lateness"]
    what = (
        f"retry lateness p99, {fairness['retries']} retries while another subscriber hangs "
        f"with {fairness['parked_hanging']:,} queued"
    )
    p99_s = late["p99_ms"] / 1000
    met = p99_s <= FAIR_LATENESS_TARGET_S and fairness["delivered"] == fairness["retries"]
    return [
        Row("fairness", what, f"{late['p99_ms']:,.0f} ms", f"<= {FAIR_LATENESS_TARGET_S:g} s", met),
        Row(
            "fairness",
            "retry lateness p50 / max",
            f"{late['p50_ms']:,.0f} / {late['max_ms']:,.0f} ms",
        ),
    ]


def _storm_rows(storm: dict[str, Any] | None) -> list[Row]:
    """Retry drain after a subscriber comes back, beside the first attempts of the same run."""
    if not storm:
        return []
    size = f"{storm['messages']:,} retries, {storm['workers']} worker(s)"
    rows = [
        Row(
            "storm",
            "first attempts to the healthy subscriber",
            _rate(storm["first_attempt_rate_per_s"]),
        ),
        Row(
            "storm",
            f"retry drain after recovery, all due at once, {size}",
            _rate(storm["retry_drain_rate_per_s"]),
        ),
    ]
    if storm["first_attempt_rate_per_s"]:
        ratio = storm["retry_drain_rate_per_s"] / storm["first_attempt_rate_per_s"]
        target = f">= {RETRY_DRAIN_TARGET_RATIO:.2f}"
        met = ratio >= RETRY_DRAIN_TARGET_RATIO
        rows.append(Row("storm", "retry drain / first attempts", f"{ratio:.2f}", target, met))
    live = storm.get("as_scheduled")
    if live:
        late = live["lateness"]
        rows += [
            Row(
                "storm",
                f"as scheduled: retries due over {live['due_span_s']:.1f} s, drained at",
                _rate(live["retry_drain_rate_per_s"]),
            ),
            Row(
                "storm",
                "as scheduled: retry lateness behind due p50 / p99",
                f"{late['p50_ms']:,.0f} / {late['p99_ms']:,.0f} ms",
            ),
        ]
    return rows


def _end_to_end_rate(relay: dict[str, Any]) -> float | None:
    span = relay.get("start_to_last_s")
    return relay["delivered_unique"] / span if span else None


def _routing_rows(runs: list[dict[str, Any]]) -> list[Row]:
    """Dispatch rate by number of subscriptions (each filtered to one source), and the admin
    store operations at that number."""
    rows = []
    for run in runs:
        n = f"{run['subscriptions']:,} subscriptions"
        rows.append(Row("routing", f"dispatch only, {n}", _rate(run["rate_per_s"])))
        cpu = f"{run['cpu_us_per_delivery']:,.0f} us"
        rows.append(Row("routing", f"dispatcher CPU per delivery, {n}", cpu))
        ops = f"{run['create_p99_ms']:.1f} / {run['read_p99_ms']:.1f} / {run['page_ms']:.1f} ms"
        rows.append(Row("routing", f"create p99 / read p99 / page of 100, {n}", ops, "<= 10 ms"))
    if len(runs) >= 2 and runs[0]["rate_per_s"]:
        ratio = runs[-1]["rate_per_s"] / runs[0]["rate_per_s"]
        figure = f"{runs[-1]['subscriptions']:,} / {runs[0]['subscriptions']:,} subscriptions"
        target = f">= {ROUTING_TARGET_RATIO:.2f}"
        rows.append(Row("routing", figure, f"{ratio:.2f}", target, ratio >= ROUTING_TARGET_RATIO))
        cpu_ratio = runs[0]["cpu_us_per_delivery"] / runs[-1]["cpu_us_per_delivery"]
        figure += ", by CPU per delivery"
        rows.append(
            Row("routing", figure, f"{cpu_ratio:.2f}", target, cpu_ratio >= ROUTING_TARGET_RATIO)
        )
    return rows


def _cpu_rows(
    relay: dict[str, Any] | None, limit: dict[str, Any] | None, naive_runs: list[dict[str, Any]]
) -> list[Row]:
    """CPU time per delivery: less sensitive to a busy machine than rates are."""
    rows = []
    if relay and "cpu_us_per_delivery" in relay:
        shown = ", ".join(f"{name} {sec:.1f} s" for name, sec in relay["cpu_s"].items())
        figure = f"CPU per delivery: relay roles ({shown})"
        rows.append(Row("throughput", figure, f"{relay['cpu_us_per_delivery']:,.0f} us"))
    if limit and "cpu_us_per_delivery" in limit:
        figure = "CPU per delivery: limit client"
        rows.append(Row("throughput", figure, f"{limit['cpu_us_per_delivery']:,.0f} us"))
    for run in naive_runs:
        if "cpu_us_per_delivery" in run:
            figure = f"CPU per delivery: naive, {run['workers']} worker(s)"
            rows.append(Row("throughput", figure, f"{run['cpu_us_per_delivery']:,.0f} us"))
    return rows


def _latency_rows(scenarios: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    base = scenarios.get("latency")
    if base:
        lat = base["latency"]
        target_ms = base["poll_interval_s"] * 1000 + LATENCY_MARGIN_MS
        where = f"{base['rate_per_s']:.0f}/s, poll {base['poll_interval_s']:g} s"
        rows.append(Row("latency", f"p50 ({where})", _ms(lat["p50_ms"])))
        rows.append(Row("latency", "p90", _ms(lat["p90_ms"])))
        rows.append(
            Row(
                "latency",
                "p99",
                _ms(lat["p99_ms"]),
                f"<= {target_ms:.0f} ms",
                lat["p99_ms"] <= target_ms,
            )
        )
        rows.append(Row("latency", "max", _ms(lat["max_ms"])))
        rows += _legs("latency", base)
        if base["measured"] < base["expected"]:
            missing = base["expected"] - base["measured"]
            rows.append(Row("latency", "deliveries missing", str(missing), "0", False))
    iso = scenarios.get("isolation")
    if iso:
        lat = iso["latency"]
        rows.append(
            Row("isolation", "healthy p50 with a hanging 5th subscriber", _ms(lat["p50_ms"]))
        )
        rows.append(
            Row("isolation", "healthy p99 with a hanging 5th subscriber", _ms(lat["p99_ms"]))
        )
        rows += _legs("isolation", iso)
        if base:
            ratio = lat["p99_ms"] / base["latency"]["p99_ms"]
            rows.append(
                Row(
                    "isolation",
                    "healthy p99 / p99 without it",
                    f"{ratio:.2f}",
                    f"<= {ISOLATION_TARGET_RATIO:.2f}",
                    ratio <= ISOLATION_TARGET_RATIO,
                )
            )
        if iso["measured"] < iso["expected"]:
            missing = iso["expected"] - iso["measured"]
            rows.append(Row("isolation", "healthy deliveries missing", str(missing), "0", False))
    return rows


def _legs(scenario: str, run: dict[str, Any]) -> list[Row]:
    rows = []
    for key, label in (
        ("upstream_to_recorded", "poll + ingest"),
        ("recorded_to_arrival", "dispatch"),
    ):
        leg = run.get(key, {})
        if leg.get("count"):
            shown = f"{_ms(leg['p50_ms'])} / {_ms(leg['p99_ms'])}"
            rows.append(Row(scenario, f"  of which {label} p50 / p99", shown))
    return rows


def _memory_rows(memory: dict[str, Any] | None) -> list[Row]:
    if not memory:
        return []
    n = memory["messages"]
    rows = [
        Row(
            "memory",
            f"Redis bytes per message kept ({n:,} msgs)",
            f"{memory['bytes_per_message_total']:,.0f} B",
        ),
        Row(
            "memory",
            "  by key family",
            ", ".join(
                f"{family} {size:,.0f}"
                for family, size in memory["bytes_per_message_by_family"].items()
                if size >= 1
            ),
        ),
        Row(
            "memory",
            "dedupe bytes per id",
            f"{memory['dedupe_bytes_per_id']:,.0f} B",
            f"<= {DEDUPE_TARGET_BYTES} B",
            memory["dedupe_bytes_per_id"] <= DEDUPE_TARGET_BYTES,
        ),
    ]
    ratio = memory["event_to_json_ratio"]
    rows.append(
        Row(
            "memory",
            f"stored event / its JSON ({memory['event_json_bytes']:.0f} B)",
            "n/a" if ratio is None else f"{ratio:.2f}",
            f"<= {EVENT_TARGET_RATIO:.1f}",
            None if ratio is None else ratio <= EVENT_TARGET_RATIO,
        )
    )
    ttl = memory["ttl_s"]
    bounded = ttl.get("seen") is not None and ttl.get("ev") is not None
    shown = ", ".join(f"{family} {value}" for family, value in ttl.items())
    rows.append(Row("memory", "dedupe and event TTLs (s)", shown or "none", "both set", bounded))
    for name, peak in memory["peak_rss_bytes"].items():
        rows.append(Row("memory", f"peak RSS {name}", _mib(peak)))
    return rows


def format_table(rows: list[Row]) -> str:
    header = Row("scenario", "figure", "value", "target", None)
    cells = [(r.scenario, r.figure, r.value, r.target, _met(r.met)) for r in rows]
    head = (header.scenario, header.figure, header.value, header.target, "met?")
    widths = [max(len(row[i]) for row in [head, *cells]) for i in range(5)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * width for width in widths))
    for row in cells:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return "\n".join(lines)


def format_markdown(rows: list[Row]) -> str:
    lines = ["| scenario | figure | value | target | met? |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.scenario} | {r.figure} | {r.value} | {r.target} | {_met(r.met)} |")
    return "\n".join(lines)


def _met(met: bool | None) -> str:
    return "" if met is None else ("yes" if met else "NO")


def write_json(path: Path, payload: dict[str, Any], rows: list[Row]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = payload | {"table": [asdict(row) for row in rows]}
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
