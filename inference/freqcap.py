"""Frequency caps for ad events: at most F events per (user, campaign) per period.

Pure functions over a small list of emit timestamps (epoch ms), plus a compact byte
encoding of that list so the worker can keep it in a RocksDB table. Only timestamps inside
the current period are kept, so a value never holds more than F of them.
"""

from __future__ import annotations

import struct

_VERSION = 1
_HEADER = struct.Struct("<BB")  # format version, count
_TS = struct.Struct("<q")
_MAX_DELTA = 2**32 - 1


def allow(history: list[int], now_ms: int, cap: int, period_ms: int) -> tuple[bool, list[int]]:
    """May one more event go out at ``now_ms``? Returns (allowed, history to store).

    The stored history drops timestamps older than the period and gains ``now_ms`` when
    the event is allowed. A cap of 0 never allows.
    """
    recent = sorted(ts for ts in history if now_ms - ts < period_ms)
    if len(recent) >= cap:
        return False, recent
    return True, [*recent, now_ms]


def encode(history: list[int]) -> bytes:
    """A version byte, a count byte, then the first timestamp and uint32 deltas in ms."""
    if len(history) > 255:
        raise ValueError("a frequency-cap history holds at most 255 timestamps")
    ordered = sorted(history)
    out = bytearray(_HEADER.pack(_VERSION, len(ordered)))
    if ordered:
        out += _TS.pack(ordered[0])
        deltas = [b - a for a, b in zip(ordered, ordered[1:], strict=False)]
        if deltas and max(deltas) > _MAX_DELTA:
            raise ValueError("timestamps more than ~49 days apart: use a shorter period")
        out += struct.pack(f"<{len(deltas)}I", *deltas)
    return bytes(out)


def decode(raw: bytes | None) -> list[int]:
    """The inverse of ``encode``; an absent value is an empty history."""
    if not raw:
        return []
    version, count = _HEADER.unpack_from(raw)
    if version != _VERSION:
        raise ValueError(f"unknown frequency-cap encoding version {version}")
    if count == 0:
        return []
    (first,) = _TS.unpack_from(raw, _HEADER.size)
    deltas = struct.unpack_from(f"<{count - 1}I", raw, _HEADER.size + _TS.size)
    history = [first]
    for delta in deltas:
        history.append(history[-1] + delta)
    return history
