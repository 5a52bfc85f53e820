import pytest

from inference.freqcap import allow, decode, encode

HOUR = 3600_000


def test_allows_up_to_the_cap_within_a_period_then_refuses():
    history: list[int] = []
    outcomes = []
    for t in (0, 10, 20, 30):
        ok, history = allow(history, t, cap=3, period_ms=HOUR)
        outcomes.append(ok)
    assert outcomes == [True, True, True, False]
    assert history == [0, 10, 20]


def test_events_older_than_the_period_stop_counting():
    ok, history = allow([0, 10, 20], HOUR + 15, cap=3, period_ms=HOUR)
    assert ok and history == [20, HOUR + 15]


def test_a_zero_cap_never_allows():
    assert allow([], 0, cap=0, period_ms=HOUR) == (False, [])


def test_history_survives_a_byte_round_trip_compactly():
    history = [1_764_000_000_000, 1_764_000_000_500, 1_764_000_360_000]
    raw = encode(history)
    assert decode(raw) == history
    assert len(raw) == 2 + 8 + 4 * 2
    assert decode(None) == [] and decode(encode([])) == []


def test_unknown_encoding_versions_are_refused():
    with pytest.raises(ValueError):
        decode(b"\x09\x00")
