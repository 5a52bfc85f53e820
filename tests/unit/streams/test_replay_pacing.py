"""Pacing arithmetic: speeds, rate caps and their mix, on a fake clock (nothing sleeps)."""

from __future__ import annotations

import pytest

from streams.replay_pacing import Pacer, parse_speed


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(("text", "speed"), [("max", None), ("realtime", 1.0), ("10x", 10.0),
                                             ("0.5x", 0.5), (" REALTIME ", 1.0)])
def test_parse_speed(text, speed):
    assert parse_speed(text) == speed


@pytest.mark.parametrize("text", ["fast", "0x", "-2x", "x", "10", "infx", "nanx"])
def test_parse_speed_refuses_nonsense(text):
    with pytest.raises(ValueError, match="expected max, realtime"):
        parse_speed(text)


def test_max_speed_never_waits():
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    for ts in (0, 10_000, 5_000, 999_999):
        assert pacer.wait(ts) == 0.0
    assert clock.slept == []


def test_realtime_follows_the_gaps_between_timestamps():
    pacer = Pacer(speed=1.0)
    assert pacer.delay(1_000_000, now=50.0) == 0.0  # the first event goes at once
    assert pacer.delay(1_002_500, now=50.0) == pytest.approx(2.5)
    assert pacer.delay(1_002_500, now=52.5) == pytest.approx(0.0)
    assert pacer.delay(1_010_000, now=53.0) == pytest.approx(7.0)


def test_speed_factor_divides_the_gaps():
    pacer = Pacer(speed=10.0)
    pacer.delay(0, now=0.0)
    assert pacer.delay(60_000, now=0.0) == pytest.approx(6.0)


def test_events_behind_the_replay_clock_go_at_once():
    pacer = Pacer(speed=1.0)
    pacer.delay(10_000, now=0.0)
    assert pacer.delay(4_000, now=0.0) == 0.0


def test_rate_spaces_events_evenly():
    clock = FakeClock()
    pacer = Pacer(rate=4.0, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        pacer.wait(0)
    assert clock.slept == pytest.approx([0.25] * 4)
    assert clock.now == pytest.approx(101.0)


def test_rate_does_not_bank_idle_time_into_a_burst():
    pacer = Pacer(rate=10.0)
    assert pacer.delay(0, now=0.0) == 0.0
    assert pacer.delay(0, now=5.0) == 0.0  # a long pause
    assert pacer.delay(0, now=5.0) == pytest.approx(0.1)


def test_slower_of_speed_and_rate_wins():
    pacer = Pacer(speed=1.0, rate=1.0)
    assert pacer.delay(0, now=0.0) == 0.0
    assert pacer.delay(100, now=0.0) == pytest.approx(1.0)  # the rate is slower than 0.1 s
    assert pacer.delay(5_000, now=1.0) == pytest.approx(4.0)  # the log's gap is slower


def test_high_rate_skips_tiny_sleeps_but_keeps_the_average():
    clock = FakeClock()
    pacer = Pacer(rate=10_000.0, clock=clock, sleep=clock.sleep)
    for _ in range(1000):
        pacer.wait(0)
        clock.now += 0.00005  # each send takes 50 µs
    # 1000 events at 10k/s take 0.1 s even though each wait alone is under a millisecond
    assert clock.now - 100.0 == pytest.approx(0.1, rel=0.05)


@pytest.mark.parametrize(("speed", "rate"), [(0.0, None), (None, 0.0), (-1.0, None)])
def test_pacer_refuses_non_positive_settings(speed, rate):
    with pytest.raises(ValueError, match="must be positive"):
        Pacer(speed=speed, rate=rate)
