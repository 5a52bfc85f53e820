"""Throughput and latency for the live page, from two scrapes of the worker's /metrics.

A scrape is parsed with prometheus_client's own text parser into a Snapshot (counter totals
and the latency histogram's cumulative buckets). Rates are the difference between two
snapshots over the time between them; a counter that went down means the worker restarted,
and then its new total is what happened since (as Prometheus' ``rate`` treats resets).
Quantiles are estimated from the buckets the way Prometheus' ``histogram_quantile`` does:
linear inside the bucket that holds the rank, the highest finite bound when the rank falls
in the +Inf bucket.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

EVENTS_IN = "shopstream_events_in"
EVENTS_OUT = "shopstream_events_out"
DEAD_LETTERS = "shopstream_dead_letters"
LATENCY = "shopstream_end_to_end_latency_seconds"

# cumulative histogram: (upper bound, observations at or below it), +Inf last
Buckets = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Snapshot:
    """The figures of one scrape, taken at ``at`` (seconds, monotonic or wall clock)."""

    at: float
    events_in: dict[str, float] = field(default_factory=dict)
    events_out: dict[str, float] = field(default_factory=dict)
    dead_letters: dict[str, float] = field(default_factory=dict)
    latency: Buckets = ()


def parse_metrics(text: str, at: float) -> Snapshot:
    """The counters and latency buckets in a Prometheus text exposition."""
    by_label: dict[str, tuple[str, dict[str, float]]] = {
        EVENTS_IN: ("topic", {}), EVENTS_OUT: ("topic", {}), DEAD_LETTERS: ("reason", {}),
    }
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name in by_label:
            label, totals = by_label[family.name]
            for sample in family.samples:
                if sample.name.endswith("_total") and label in sample.labels:
                    key = sample.labels[label]
                    totals[key] = totals.get(key, 0.0) + sample.value
        elif family.name == LATENCY:
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    bound = float(sample.labels["le"])
                    buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return Snapshot(
        at=at,
        events_in=by_label[EVENTS_IN][1],
        events_out=by_label[EVENTS_OUT][1],
        dead_letters=by_label[DEAD_LETTERS][1],
        latency=tuple(sorted(buckets.items())),
    )


def increase(before: float, after: float) -> float:
    """How much a counter grew; a drop is a restart, after which ``after`` is all new."""
    return after - before if after >= before else after


def rates(before: Mapping[str, float], after: Mapping[str, float],
          seconds: float) -> dict[str, float]:
    """Per-second growth of each labelled counter between two scrapes."""
    if seconds <= 0:
        return {key: 0.0 for key in after}
    return {key: increase(before.get(key, 0.0), value) / seconds
            for key, value in after.items()}


def bucket_increase(before: Buckets, after: Buckets) -> Buckets:
    """The histogram of only the observations made between two scrapes."""
    old = dict(before)
    if any(count < old.get(bound, 0.0) for bound, count in after):
        return after  # the worker restarted: everything in ``after`` is new
    return tuple((bound, count - old.get(bound, 0.0)) for bound, count in after)


def quantile(q: float, buckets: Buckets) -> float | None:
    """The q-quantile (0..1) estimated from cumulative buckets; None with no observations."""
    return _locate(q, buckets)[0]


def beyond_buckets(q: float, buckets: Buckets) -> bool:
    """Whether the q-quantile lies above the highest finite bound (its value is then a floor)."""
    return _locate(q, buckets)[1]


def _locate(q: float, buckets: Buckets) -> tuple[float | None, bool]:
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be within [0, 1], got {q}")
    if not buckets or not math.isinf(buckets[-1][0]):
        return None, False
    total = buckets[-1][1]
    if total <= 0:
        return None, False
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank and count > lower_count:
            if math.isinf(bound):
                return lower_bound, True  # nothing is known above the highest finite bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count), False
        lower_bound, lower_count = bound, count
    return lower_bound, False


def latency_summary(buckets: Buckets) -> dict[str, Any]:
    """Count, p50 and p99 in seconds; ``*_beyond`` marks a quantile past the top bucket."""
    count = buckets[-1][1] if buckets else 0.0
    p50, p50_beyond = _locate(0.5, buckets)
    p99, p99_beyond = _locate(0.99, buckets)
    return {"count": count, "p50_s": p50, "p99_s": p99,
            "p50_beyond": p50_beyond, "p99_beyond": p99_beyond}


def stats(before: Snapshot | None, after: Snapshot | None) -> dict[str, Any]:
    """The JSON the page's panel shows: rates per topic, latency, dead letters by reason."""
    if after is None:
        return {"ready": False}
    prev = before if before is not None else Snapshot(at=after.at)
    seconds = after.at - prev.at if before is not None else 0.0
    return {
        "ready": True,
        "interval_s": seconds,
        "events_in_per_s": rates(prev.events_in, after.events_in, seconds),
        "events_out_per_s": rates(prev.events_out, after.events_out, seconds),
        "events_in_total": after.events_in,
        "events_out_total": after.events_out,
        "dead_letters_total": after.dead_letters,
        "dead_letters_per_s": rates(prev.dead_letters, after.dead_letters, seconds),
        "latency": {
            "recent": latency_summary(bucket_increase(prev.latency, after.latency)
                                      if before is not None else ()),
            "total": latency_summary(after.latency),
        },
    }
