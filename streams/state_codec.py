"""A compact binary form of UserState for the RocksDB table (no pickle, no JSON).

Layout, version 1. After the version byte comes one run of unsigned LEB128 varints, then
the strings, then the remembered event keys::

    u8 version
    varints:
        events_total, last_ts, session_count, last_ts - session_start, session_events
        n_window, then per entry, oldest first:
            tag = code | id_kind << 3, id, ts step, dwell_ms
            (ts step: the first entry as last_ts - ts, the others as ts - previous ts)
        n_bought, then per item, oldest first: id_kind, id
        n_strings, then the UTF-8 byte length of each
        n_seen
    the strings' bytes, back to back
    n_seen event keys, 8 bytes big-endian each, oldest first

Item ids by id_kind: 0, a canonical decimal integer (the data files' ids) as its value;
1, any other text, as an index into the strings; 2, the same id as an earlier window
entry: for a window entry, how many entries back; for a bought item, the entry's index.
The limits come from the settings when decoding, not from the bytes: when they have
shrunk since, only the newest entries are kept.
"""

from __future__ import annotations

import struct
from collections import deque

from streams.state import EVENT_NAMES, Interaction, StateLimits, UserState

VERSION = 1
_INT, _TEXT, _SAME = 0, 1, 2
_MAX_INT = (1 << 63) - 1


class StateDecodeError(ValueError):
    """Stored bytes that are not a state this code can read."""


class _Ids:
    """Turns item ids into (kind, value) pairs, collecting the text ones."""

    __slots__ = ("strings", "_index")

    def __init__(self) -> None:
        self.strings: list[bytes] = []
        self._index: dict[str, int] = {}

    def encode(self, item_id: str) -> tuple[int, int]:
        if (item_id.isdigit() and item_id.isascii() and len(item_id) <= 19
                and (item_id[0] != "0" or item_id == "0") and int(item_id) <= _MAX_INT):
            return _INT, int(item_id)
        at = self._index.get(item_id)
        if at is None:
            at = self._index[item_id] = len(self.strings)
            self.strings.append(item_id.encode())
        return _TEXT, at


def encode_state(state: UserState) -> bytes:
    ids = _Ids()
    last_ts = state.last_ts
    nums = [state.events_total, last_ts, state.session_count,
            last_ts - state.session_start_ms, state.session_events, len(state.window)]
    where: dict[str, int] = {}  # item id -> index of its latest window entry
    prev = last_ts
    for n, item in enumerate(state.window):
        back = where.get(item.item_id)
        if back is not None:
            kind, value = _SAME, n - back
        else:
            kind, value = ids.encode(item.item_id)
        where[item.item_id] = n
        nums += (item.code | kind << 3, value,
                 prev - item.ts if n == 0 else item.ts - prev, item.dwell_ms)
        prev = item.ts
    nums.append(len(state.bought))
    for item_id in state.bought:
        at = where.get(item_id)
        nums += (_SAME, at) if at is not None else ids.encode(item_id)
    nums.append(len(ids.strings))
    nums += [len(s) for s in ids.strings]
    nums.append(len(state.seen))
    out = bytearray((VERSION,))
    _write_varints(out, nums)
    out += b"".join(ids.strings)
    out += struct.pack(f">{len(state.seen)}Q", *state.seen)
    return bytes(out)


def decode_state(data: bytes, limits: StateLimits) -> UserState:
    if not data or data[0] != VERSION:
        found = data[0] if data else "none"
        raise StateDecodeError(f"state version {found}, this code reads {VERSION}")
    try:
        return _decode(bytes(data), limits)
    except (IndexError, ValueError, KeyError, struct.error) as exc:
        raise StateDecodeError(f"corrupt state: {exc}") from None


def _decode(data: bytes, limits: StateLimits) -> UserState:
    head, pos = _read_varints(data, 1, 6)
    events_total, last_ts, session_count, back, session_events, n_window = head
    entries, pos = _read_varints(data, pos, 4 * n_window + 1)
    n_bought = entries.pop()
    bought_raw, pos = _read_varints(data, pos, 2 * n_bought + 1)
    n_strings = bought_raw.pop()
    lengths, pos = _read_varints(data, pos, n_strings + 1)
    n_seen = lengths.pop()
    strings = []
    for size in lengths:
        strings.append(data[pos:pos + size].decode())
        pos += size
    if len(data) != pos + 8 * n_seen:
        raise ValueError(f"{len(data) - pos} bytes where {8 * n_seen} event keys belong")
    seen = struct.unpack_from(f">{n_seen}Q", data, pos)

    window: list[Interaction] = []
    ts = last_ts
    for n in range(n_window):
        tag, value, step, dwell = entries[4 * n:4 * n + 4]
        code, kind = tag & 0b111, tag >> 3
        if code not in EVENT_NAMES:
            raise ValueError(f"event code {code}")
        item_id = window[n - value].item_id if kind == _SAME and 0 < value <= n else \
            _item_id(kind, value, strings)
        ts = ts - step if n == 0 else ts + step
        window.append(Interaction(item_id, code, ts, dwell))
    bought = []
    for n in range(n_bought):
        kind, value = bought_raw[2 * n:2 * n + 2]
        bought.append(window[value].item_id if kind == _SAME else
                      _item_id(kind, value, strings))

    state = UserState(limits)
    state.events_total, state.last_ts, state.session_count = events_total, last_ts, session_count
    state.session_start_ms, state.session_events = last_ts - back, session_events
    state.window = window[-limits.window_size:]
    state.bought = bought[-limits.bought_memory:] if limits.bought_memory else []
    state.seen = deque(seen, maxlen=limits.dedupe_memory)
    state.restore_seen_index()
    return state


def _item_id(kind: int, value: int, strings: list[str]) -> str:
    if kind == _INT:
        return str(value)
    if kind == _TEXT:
        return strings[value]
    raise ValueError(f"item id kind {kind} with value {value}")


def _write_varints(out: bytearray, values: list[int]) -> None:
    append = out.append
    for value in values:
        if value < 0:
            raise ValueError(f"negative value {value} in state")
        while value > 0x7F:
            append((value & 0x7F) | 0x80)
            value >>= 7
        append(value)


def _read_varints(data: bytes, pos: int, count: int) -> tuple[list[int], int]:
    out: list[int] = []
    append = out.append
    for _ in range(count):
        byte = data[pos]
        pos += 1
        if byte < 0x80:
            append(byte)
            continue
        value, shift = byte & 0x7F, 7
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")
        append(value)
    return out, pos
