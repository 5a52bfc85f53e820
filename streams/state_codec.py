"""A compact binary form of UserState for the RocksDB table (no pickle, no JSON).

Layout, version 1 (every number an unsigned LEB128 varint unless said otherwise)::

    u8 version
    events_total, last_ts, session_count, last_ts - session_start, session_events
    n, then n window entries, oldest first:
        u8 tag = code | id_kind << 3
        item id (see below)
        ts: the first entry as last_ts - ts, the others as ts - previous ts
        dwell_ms
    n, then n remembered event keys, 8 bytes big-endian each, oldest first
    n, then n bought items, oldest first: u8 id_kind, item id

Item ids: id_kind 0 is a canonical decimal integer (the data files' ids) stored as a
varint; id_kind 1 is any other string, stored as its UTF-8 length and bytes.
The limits come from the settings when decoding, not from the bytes: when they have
shrunk since, only the newest entries are kept.
"""

from __future__ import annotations

from streams.state import EVENT_NAMES, Interaction, StateLimits, UserState

VERSION = 1
_NUMERIC, _TEXT = 0, 1
_MAX_NUMERIC = (1 << 63) - 1


class StateDecodeError(ValueError):
    """Stored bytes that are not a state this code can read."""


def encode_state(state: UserState) -> bytes:
    out = bytearray((VERSION,))
    _varint(out, state.events_total)
    _varint(out, state.last_ts)
    _varint(out, state.session_count)
    _varint(out, state.last_ts - state.session_start_ms)
    _varint(out, state.session_events)
    _varint(out, len(state.window))
    prev = state.last_ts
    for n, item in enumerate(state.window):
        kind_tag = len(out)
        out.append(0)
        out[kind_tag] = item.code | _item_id(out, item.item_id) << 3
        _varint(out, prev - item.ts if n == 0 else item.ts - prev)
        prev = item.ts
        _varint(out, item.dwell_ms)
    _varint(out, len(state.seen))
    for key in state.seen:
        out += key.to_bytes(8, "big")
    _varint(out, len(state.bought))
    for item_id in state.bought:
        kind_at = len(out)
        out.append(0)
        out[kind_at] = _item_id(out, item_id)
    return bytes(out)


def decode_state(data: bytes, limits: StateLimits) -> UserState:
    if not data or data[0] != VERSION:
        found = data[0] if data else "none"
        raise StateDecodeError(f"state version {found}, this code reads {VERSION}")
    try:
        return _decode(memoryview(data), limits)
    except (IndexError, ValueError, KeyError) as exc:
        raise StateDecodeError(f"corrupt state: {exc}") from None


def _decode(data: memoryview, limits: StateLimits) -> UserState:
    state = UserState(limits)
    pos = 1
    state.events_total, pos = _read_varint(data, pos)
    state.last_ts, pos = _read_varint(data, pos)
    state.session_count, pos = _read_varint(data, pos)
    back, pos = _read_varint(data, pos)
    state.session_start_ms = state.last_ts - back
    state.session_events, pos = _read_varint(data, pos)
    count, pos = _read_varint(data, pos)
    window: list[Interaction] = []
    ts = state.last_ts
    for n in range(count):
        tag = data[pos]
        code = tag & 0b111
        if code not in EVENT_NAMES:
            raise ValueError(f"event code {code}")
        item_id, pos = _read_item_id(data, pos + 1, tag >> 3)
        delta, pos = _read_varint(data, pos)
        ts = ts - delta if n == 0 else ts + delta
        dwell, pos = _read_varint(data, pos)
        window.append(Interaction(item_id, code, ts, dwell))
    state.window = window[-limits.window_size:]
    count, pos = _read_varint(data, pos)
    for _ in range(count):
        state.remember(int.from_bytes(data[pos:pos + 8], "big"))
        pos += 8
    count, pos = _read_varint(data, pos)
    bought = []
    for _ in range(count):
        item_id, pos = _read_item_id(data, pos + 1, data[pos])
        bought.append(item_id)
    state.bought = bought[-limits.bought_memory:] if limits.bought_memory else []
    if pos != len(data):
        raise ValueError(f"{len(data) - pos} bytes left over")
    return state


def _item_id(out: bytearray, item_id: str) -> int:
    """Write an item id; returns its kind."""
    if (item_id.isascii() and item_id.isdigit() and (item_id[0] != "0" or item_id == "0")
            and len(item_id) <= 19 and int(item_id) <= _MAX_NUMERIC):
        _varint(out, int(item_id))
        return _NUMERIC
    raw = item_id.encode()
    _varint(out, len(raw))
    out += raw
    return _TEXT


def _read_item_id(data: memoryview, pos: int, kind: int) -> tuple[str, int]:
    if kind == _NUMERIC:
        value, pos = _read_varint(data, pos)
        return str(value), pos
    if kind != _TEXT:
        raise ValueError(f"item id kind {kind}")
    size, pos = _read_varint(data, pos)
    if pos + size > len(data):
        raise ValueError("item id runs past the end")
    return bytes(data[pos:pos + size]).decode(), pos + size


def _varint(out: bytearray, value: int) -> None:
    if value < 0:
        raise ValueError(f"negative value {value} in state")
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _read_varint(data: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise ValueError("varint too long")
