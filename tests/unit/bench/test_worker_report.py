"""bench_worker's report of a latency run: the p99 of each second, by the events' ts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

from bench_worker import Latencies, p99_by_second  # noqa: E402


def test_p99_by_second_groups_events_by_the_second_of_their_ts():
    start = 1_796_000_000_000
    # second 0: 100 events at 20 ms; second 1: a burst, 100 events at 200 ms;
    # second 2: 100 events at 30 ms, one of them at 90
    ms = [20.0] * 100 + [200.0] * 100 + [30.0] * 99 + [90.0]
    ts = ([start + i for i in range(100)] + [start + 1000 + i for i in range(100)]
          + [start + 2999 - i for i in range(100)])
    by_second = p99_by_second(Latencies(ms, ts))
    assert by_second[:2] == [20.0, 200.0]
    assert by_second[2] == pytest.approx(30 + 0.01 * 60)  # numpy's linear interpolation


def test_p99_by_second_leaves_out_seconds_with_few_events_and_an_empty_run():
    start = 1_796_000_000_000
    # second 1 has no events, second 3 one (the run's last milliseconds): both left out
    ms = [10.0] * 4 + [40.0] * 3 + [500.0]
    ts = [start + 100 * i for i in range(4)] + [start + 2000 + i for i in range(3)] + [
        start + 3001]
    assert p99_by_second(Latencies(ms, ts)) == [10.0, 40.0]
    assert p99_by_second(Latencies([], [])) == []


def test_the_report_names_the_processor_it_ran_on(tmp_path):
    import _common

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\n"
                    "model name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu\n")
    assert _common.cpu_model(info) == "Intel(R) Xeon(R) Processor"


def test_without_a_cpuinfo_the_report_falls_back_to_what_platform_knows(monkeypatch, tmp_path):
    import platform

    import _common

    monkeypatch.setattr(platform, "processor", lambda: "")
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    assert _common.cpu_model(tmp_path / "none") == "x86_64"
