"""The worker's own metrics (streams.metrics): CPU by thread, input lag."""

from __future__ import annotations

import re
import threading
import time

from faust.types import TP

from streams.metrics import WorkerMetrics, thread_cpu_seconds


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_a_threads_cpu_time_is_counted_under_its_name():
    done = threading.Event()

    def work() -> None:
        _burn(0.2)
        done.wait(5)  # alive while it is counted

    thread = threading.Thread(target=work, name="busy-test")
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while thread_cpu_seconds().get("busy-test", 0.0) < 0.15:
            assert time.monotonic() < deadline, thread_cpu_seconds()
            time.sleep(0.05)
        assert thread_cpu_seconds().get("busy-test", 0.0) < 1.0  # its own time, not the process's
    finally:
        done.set()
        thread.join()
    assert "busy-test" not in thread_cpu_seconds()  # an ended thread is gone


def test_the_metrics_page_reports_cpu_by_thread():
    _burn(0.05)
    text = WorkerMetrics().render().decode()
    found = re.search(r'^shopstream_thread_cpu_seconds_total\{thread="MainThread"\} (\S+)$',
                      text, re.M)
    assert found and float(found.group(1)) > 0


def test_the_metrics_page_reports_each_input_partitions_lag_as_given_when_scraped():
    lags = {TP("events.views", 1): 7, TP("events.clicks", 0): 0}
    metrics = WorkerMetrics()
    metrics.track_lag(lambda: lags)
    first = metrics.render().decode()
    lags[TP("events.views", 1)] = 2
    second = metrics.render().decode()
    assert 'shopstream_input_lag{partition="1",topic="events.views"} 7.0' in first
    assert 'shopstream_input_lag{partition="0",topic="events.clicks"} 0.0' in first
    assert 'shopstream_input_lag{partition="1",topic="events.views"} 2.0' in second
