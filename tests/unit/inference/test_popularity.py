import sys
import threading

import pytest

from inference.popularity import DecayedPopularity


def test_counts_halve_every_half_life():
    pop = DecayedPopularity(half_life_s=10, capacity=10)
    for _ in range(8):
        pop.add("a", ts_s=100.0)
    assert pop.score("a", 100.0) == pytest.approx(8.0)
    assert pop.score("a", 110.0) == pytest.approx(4.0)
    assert pop.score("a", 130.0) == pytest.approx(1.0)


def test_recent_events_outrank_more_but_older_ones():
    pop = DecayedPopularity(half_life_s=10, capacity=10)
    for _ in range(4):
        pop.add("old", ts_s=0.0)
    for _ in range(2):
        pop.add("new", ts_s=30.0)  # 4 old events are worth 0.5 by now
    assert [item for item, _ in pop.top(2, now_s=30.0)] == ["new", "old"]


def test_top_skips_excluded_items():
    pop = DecayedPopularity(half_life_s=60, capacity=10)
    for item, n in (("a", 3), ("b", 2), ("c", 1)):
        for _ in range(n):
            pop.add(item, 0.0)
    assert [i for i, _ in pop.top(2, 0.0, exclude={"a"})] == ["b", "c"]


def test_the_table_stays_bounded_and_keeps_the_heaviest():
    pop = DecayedPopularity(half_life_s=1e6, capacity=5)
    for _ in range(3):
        pop.add("hot", 0.0)
    for i in range(100):
        pop.add(f"cold{i}", 0.0)
    assert len(pop) <= 6  # capacity plus its slack
    assert pop.top(1, 0.0)[0][0] == "hot"


def test_a_long_running_table_rebases_without_overflow_or_reordering():
    pop = DecayedPopularity(half_life_s=1.0, capacity=10)
    pop.add("a", 0.0)
    pop.add("a", 0.0)
    pop.add("b", 0.0)
    pop.add("c", 5000.0)  # 5000 half-lives later: 2**5000 would overflow without a rebase
    pop.add("c", 5000.0)
    assert pop.score("c", 5000.0) == pytest.approx(2.0)
    assert [i for i, _ in pop.top(1, 5000.0)] == ["c"]


def test_an_empty_table_recommends_nothing():
    assert DecayedPopularity(60, 10).top(5, 0.0) == []


def test_top_is_safe_while_another_thread_adds():
    # the agent adds on the event loop while the engine reads in the scoring thread
    pop = DecayedPopularity(half_life_s=60, capacity=500)
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer():
        i = 0
        while not stop.is_set():
            pop.add(f"item{i % 5000}", i / 1000)
            i += 1

    def reader():
        try:
            for _ in range(1000):
                pop.top(10, 0.0)
        except BaseException as exc:  # noqa: BLE001 - the failure under test
            errors.append(exc)

    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so a missing lock shows
    w = threading.Thread(target=writer)
    w.start()
    try:
        reader()
    finally:
        stop.set()
        w.join()
        sys.setswitchinterval(old_interval)
    assert errors == []


def test_add_many_counts_like_adding_one_by_one():
    events = [("a", 0.0), ("b", 30.0), ("a", 60.0), ("c", 4000.0), ("b", 4100.0)]
    one_by_one, together = DecayedPopularity(60, 10), DecayedPopularity(60, 10)
    for item, ts in events:
        one_by_one.add(item, ts)
    together.add_many(iter(events))
    assert together.top(3, 4200.0) == one_by_one.top(3, 4200.0)
