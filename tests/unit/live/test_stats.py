"""Reading the worker's metrics text into rates, latency quantiles and dead letters."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest

from live.stats import (
    beyond_buckets,
    bucket_increase,
    latency_summary,
    parse_metrics,
    quantile,
    rates,
    stats,
)
from streams.metrics import WorkerMetrics

INF = math.inf


def _text(metrics: WorkerMetrics) -> str:
    return metrics.render().decode()


def test_parse_reads_counters_per_topic_and_reason_from_the_workers_own_metrics():
    m = WorkerMetrics()
    m.events_in.labels(topic="events.views").inc(7)
    m.events_in.labels(topic="events.clicks").inc(2)
    m.events_out.labels(topic="recs.users").inc(5)
    m.dead_letters.labels(reason="not_json").inc(3)
    snap = parse_metrics(_text(m), at=10.0)
    assert snap.at == 10.0
    assert snap.events_in == {"events.views": 7.0, "events.clicks": 2.0}
    assert snap.events_out == {"recs.users": 5.0}
    assert snap.dead_letters == {"not_json": 3.0}


def test_parse_reads_the_latency_histogram_as_cumulative_buckets():
    m = WorkerMetrics()
    for seconds in (0.003, 0.003, 0.02, 20.0):
        m.latency.observe(seconds)
    buckets = dict(parse_metrics(_text(m), at=0.0).latency)
    assert buckets[0.0025] == 0 and buckets[0.005] == 2 and buckets[0.025] == 3
    assert buckets[10.0] == 3 and buckets[INF] == 4


def test_parse_of_empty_metrics_gives_nothing():
    snap = parse_metrics("", at=1.0)
    assert (snap.events_in, snap.dead_letters, snap.latency) == ({}, {}, ())


def test_parse_sums_label_sets_it_does_not_group_by():
    reg = CollectorRegistry()
    c = Counter("shopstream_events_in", "x", ["topic", "worker"], registry=reg)
    c.labels(topic="events.views", worker="a").inc(2)
    c.labels(topic="events.views", worker="b").inc(3)
    assert parse_metrics(generate_latest(reg).decode(), 0.0).events_in == {"events.views": 5.0}


def test_rates_are_growth_per_second():
    assert rates({"a": 10.0, "b": 0.0}, {"a": 30.0, "b": 4.0, "c": 6.0}, 2.0) == {
        "a": 10.0, "b": 2.0, "c": 3.0}


def test_rates_after_a_counter_reset_count_the_new_total():
    # the worker restarted between scrapes: 4 events since, not -96
    assert rates({"a": 100.0}, {"a": 4.0}, 2.0) == {"a": 2.0}


def test_rates_over_no_time_are_zero():
    assert rates({"a": 1.0}, {"a": 5.0}, 0.0) == {"a": 0.0}


def test_quantile_interpolates_inside_the_bucket_holding_the_rank():
    buckets = ((0.01, 0.0), (0.1, 10.0), (1.0, 10.0), (INF, 10.0))
    assert quantile(0.5, buckets) == pytest.approx(0.055)  # halfway through (0.01, 0.1]
    assert quantile(0.99, buckets) == pytest.approx(0.01 + 0.09 * 0.99)


def test_quantile_first_bucket_starts_at_zero():
    assert quantile(0.5, ((0.2, 4.0), (INF, 4.0))) == pytest.approx(0.1)


def test_quantile_in_the_inf_bucket_is_the_highest_finite_bound():
    buckets = ((0.1, 1.0), (10.0, 1.0), (INF, 100.0))
    assert quantile(0.99, buckets) == 10.0
    assert beyond_buckets(0.99, buckets) and not beyond_buckets(0.005, buckets)


def test_latency_summary_marks_quantiles_past_the_top_bucket():
    summary = latency_summary(((0.1, 90.0), (10.0, 98.0), (INF, 100.0)))
    assert summary["count"] == 100.0
    assert summary["p50_s"] == pytest.approx(0.1 * 50 / 90) and not summary["p50_beyond"]
    assert summary["p99_s"] == 10.0 and summary["p99_beyond"]


def test_quantile_skips_empty_buckets():
    buckets = ((0.001, 0.0), (0.01, 0.0), (0.1, 0.0), (1.0, 2.0), (INF, 2.0))
    assert quantile(0.5, buckets) == pytest.approx(0.55)


def test_quantile_without_observations_is_none():
    assert quantile(0.5, ((0.1, 0.0), (INF, 0.0))) is None
    assert quantile(0.5, ()) is None


def test_quantile_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError):
        quantile(1.5, ((INF, 1.0),))


def test_bucket_increase_keeps_only_new_observations_and_survives_a_restart():
    before = ((0.1, 5.0), (INF, 6.0))
    assert bucket_increase(before, ((0.1, 7.0), (INF, 10.0))) == ((0.1, 2.0), (INF, 4.0))
    restarted = ((0.1, 1.0), (INF, 1.0))
    assert bucket_increase(before, restarted) == restarted


def test_stats_from_two_scrapes_of_a_worker():
    m = WorkerMetrics()
    m.events_in.labels(topic="events.views").inc(10)
    m.latency.observe(5.0)
    first = parse_metrics(_text(m), at=100.0)
    m.events_in.labels(topic="events.views").inc(40)
    m.events_out.labels(topic="recs.users").inc(20)
    m.dead_letters.labels(reason="too_large").inc(2)
    for _ in range(20):
        m.latency.observe(0.004)
    second = parse_metrics(_text(m), at=102.0)
    body = stats(first, second)
    assert body["ready"] and body["interval_s"] == 2.0
    assert body["events_in_per_s"] == {"events.views": 20.0}
    assert body["events_out_per_s"] == {"recs.users": 10.0}
    assert body["dead_letters_total"] == {"too_large": 2.0}
    assert body["dead_letters_per_s"] == {"too_large": 1.0}
    recent, total = body["latency"]["recent"], body["latency"]["total"]
    assert recent["count"] == 20 and 0.0025 < recent["p50_s"] <= 0.005
    assert recent["p99_s"] <= 0.005  # the old 5 s observation is not in the recent window
    assert total["count"] == 21 and total["p99_s"] > 1.0


def test_stats_before_any_scrape_is_not_ready_and_after_one_has_no_rates():
    assert stats(None, None) == {"ready": False}
    m = WorkerMetrics()
    m.events_in.labels(topic="events.views").inc(3)
    body = stats(None, parse_metrics(_text(m), at=1.0))
    assert body["events_in_total"] == {"events.views": 3.0}
    assert body["events_in_per_s"] == {"events.views": 0.0}
    assert body["latency"]["recent"]["count"] == 0
