"""Epoch milliseconds UTC <-> timezone-aware datetimes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from schemas.times import MIN_TS_MS, from_datetime, to_datetime


def test_to_datetime_is_aware_and_utc():
    moment = to_datetime(MIN_TS_MS)
    assert moment == datetime(2000, 1, 1, tzinfo=UTC)
    assert moment.utcoffset() == timedelta(0)


@pytest.mark.parametrize("ms", [0, 1, MIN_TS_MS, 1_764_000_000_123, 1_764_000_000_999])
def test_round_trip_keeps_every_millisecond(ms):
    assert from_datetime(to_datetime(ms)) == ms


def test_other_zones_convert_to_the_same_instant():
    paris = datetime(2000, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))
    assert from_datetime(paris) == MIN_TS_MS


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="naive"):
        from_datetime(datetime(2020, 1, 1))
