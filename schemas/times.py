"""The one timestamp convention on the wire: integer epoch milliseconds, UTC.

Every ``*_ts`` field of every event is an ``int`` counting milliseconds since
1970-01-01T00:00:00Z. These helpers convert to and from timezone-aware datetimes; naive
datetimes are refused because their zone is a guess.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

# 2000-01-01T00:00:00Z: anything earlier is a unit mistake (seconds sent as ms) or junk.
MIN_TS_MS = 946_684_800_000
# How far ahead of the receiver's clock an event may claim to be.
MAX_FUTURE_MS = 24 * 3600 * 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_ms() -> int:
    """The current time in epoch milliseconds (UTC)."""
    return time.time_ns() // 1_000_000


def to_datetime(ts_ms: int) -> datetime:
    """Epoch milliseconds to a timezone-aware UTC datetime."""
    # timedelta arithmetic is exact; going through a float second count can lose a ms.
    return _EPOCH + timedelta(milliseconds=ts_ms)


def from_datetime(moment: datetime) -> int:
    """A timezone-aware datetime to epoch milliseconds; naive datetimes raise ValueError."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime: give it a timezone (for example datetime.UTC)")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
