"""A compact binary form of UserState for the RocksDB table (no pickle, no JSON).

Layout, version 3 (what is written). A version byte, one run of unsigned LEB128 varints,
the text ids' bytes, the remembered event keys, the latest recommendation::

    u8 version
    varints:
        events_total, last_ts, session_count, last_ts - session_start, session_events
        n_window, then per entry, oldest first:
            tag = code | id_kind << 3, id, ts step, dwell_ms
            (ts step: the first entry as last_ts - ts, the others as ts - the previous ts)
        n_bought, then per item, oldest first: id_kind, id
        n_seen, n_latest
    the text ids' UTF-8 bytes, back to back: the window's in entry order, then the bought's
    n_seen event keys, 8 bytes big-endian each, oldest first
    the latest recommendation published for the user, n_latest bytes (its JSON, as sent)

An id by id_kind: 0, a canonical decimal integer (the data files' ids) as its value; 1, any
other text, as its byte length (the bytes are next in the text part); 2 (window entries
only), the same id as the entry that many entries back.

Every window entry but the first depends only on itself and the entries before it, so an
event costs the encoding of one entry, not of the whole window: each entry's bytes are kept
with the state (``UserState.codec_memo``) and reused while the window only grew at the end
and lost entries at the front. An entry pointing back at one that left the window is
written again with its id. A late event slotted in between, or a state read from bytes,
is encoded whole.

Version 2 (written until 2026-11-30) is version 3 without n_latest and the recommendation,
which had a table of its own; it is still read, with no recommendation. Version 1 (written
until 2026-11) is still read too. It differs in the text ids: a table of
distinct ones, which id_kind 1 indexes (their lengths come as varints after the bought
items), and a bought item may point at a window entry by its index (id_kind 2).

The limits come from the settings when decoding, not from the bytes: when they have
shrunk since, only the newest entries are kept.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Sequence
from typing import NamedTuple

from streams.state import EVENT_NAMES, Interaction, StateLimits, UserState

VERSION = 3
READS = (1, 2, 3)
_INT, _TEXT, _SAME = 0, 1, 2
_MAX_INT = (1 << 63) - 1


class StateDecodeError(ValueError):
    """Stored bytes that are not a state this code can read."""


def _id(item_id: str) -> tuple[int, int, bytes]:
    """(kind, value, text bytes) of an id."""
    if (item_id.isdigit() and item_id.isascii() and len(item_id) <= 19
            and (item_id[0] != "0" or item_id == "0") and int(item_id) <= _MAX_INT):
        return _INT, int(item_id), b""
    raw = item_id.encode()
    return _TEXT, len(raw), raw


class _Memo(NamedTuple):
    """The window as last encoded and, per entry: its bytes (tag, id, ts step from the
    previous entry, dwell), how many of them are the tag and id, its text bytes, and how far
    back its id points (0: it does not). About 4.5 KB for a full window of 50."""

    window: list[Interaction]
    bodies: list[bytes]
    head_lens: list[int]
    texts: list[bytes]
    backs: list[int]


def _entries(state: UserState) -> _Memo:
    """Each window entry's bytes, reusing the memo's where they still hold."""
    window = state.window
    memo = state.codec_memo
    kept = gone = 0
    if isinstance(memo, _Memo) and memo.window and window:
        old = memo.window
        gone = old.index(window[0]) if window[0] in old else -1  # entries gone at the front
        kept = len(old) - gone
        if gone < 0 or len(window) < kept or old[gone:] != window[:kept]:
            kept = 0  # a late event went in between
    bodies: list[bytes] = []
    head_lens: list[int] = []
    texts: list[bytes] = []
    backs: list[int] = []
    if kept:
        assert isinstance(memo, _Memo)
        bodies, head_lens = memo.bodies[gone:], memo.head_lens[gone:]
        texts, backs = memo.texts[gone:], memo.backs[gone:]
    # The new entries' numbers, then their bytes in one go (a call per entry costs more than
    # the writing), cut into entries at the offsets the writer reports.
    nums: list[int] = []
    where = {item.item_id: n for n, item in enumerate(window[:kept])}
    for n in range(kept, len(window)):
        item = window[n]
        earlier = where.get(item.item_id)
        where[item.item_id] = n
        if earlier is None:
            kind, value, text = _id(item.item_id)
            nums += (item.code | kind << 3, value)
            backs.append(0)
        else:
            nums += (item.code | _SAME << 3, n - earlier)
            text = b""
            backs.append(n - earlier)
        texts.append(text)
        nums += (item.ts - window[n - 1].ts if n else 0, item.dwell_ms)
    buf = bytearray()
    ends = _write_varints(buf, nums, mark_every=2)
    data = bytes(buf)
    for start, mid, end in zip([0, *ends[1::2]], ends[0::2], ends[1::2], strict=False):
        bodies.append(data[start:end])
        head_lens.append(mid - start)
    reach = max(backs[:kept], default=0) if gone > 0 else 0  # how far kept entries point
    for n in range(min(kept, reach)):
        if backs[n] > n:  # it pointed at an entry that left the window: write its id
            kind, value, texts[n] = _id(window[n].item_id)
            head = bytes(_varints((window[n].code | kind << 3, value)))
            bodies[n] = head + bodies[n][head_lens[n]:]
            head_lens[n], backs[n] = len(head), 0
    return _Memo(list(window), bodies, head_lens, texts, backs)


def encode_state(state: UserState) -> bytes:
    memo = state.codec_memo = _entries(state)
    window = state.window
    last_ts = state.last_ts
    out = bytearray((VERSION,))
    _write_varints(out, (state.events_total, last_ts, state.session_count,
                         last_ts - state.session_start_ms, state.session_events, len(window)))
    if window:
        out += memo.bodies[0][:memo.head_lens[0]]
        _write_varints(out, (last_ts - window[0].ts, window[0].dwell_ms))
        out += b"".join(memo.bodies[1:])
    nums = [len(state.bought)]
    texts = memo.texts
    for item_id in state.bought:
        kind, value, text = _id(item_id)
        nums += (kind, value)
        if text:
            texts = [*texts, text]
    nums += (len(state.seen), len(state.latest))
    _write_varints(out, nums)
    out += b"".join(texts)
    out += struct.pack(f">{len(state.seen)}Q", *state.seen)
    out += state.latest
    return bytes(out)


def _varints(values: Sequence[int]) -> bytearray:
    out = bytearray()
    _write_varints(out, values)
    return out


def decode_state(data: bytes, limits: StateLimits) -> UserState:
    if not data or data[0] not in READS:
        found = data[0] if data else "none"
        raise StateDecodeError(f"state version {found}, this code reads {READS}")
    try:
        if data[0] == 1:
            return _decode_v1(bytes(data), limits)
        return _decode_v2(bytes(data), limits, with_latest=data[0] == 3)
    except (IndexError, ValueError, KeyError, struct.error) as exc:
        raise StateDecodeError(f"corrupt state: {exc}") from None


def _decode_v2(data: bytes, limits: StateLimits, with_latest: bool) -> UserState:
    """Versions 2 and 3 (``with_latest``)."""
    head, pos = _read_varints(data, 1, 6)
    n_window = head[5]
    entries, pos = _read_varints(data, pos, 4 * n_window + 1)
    n_bought = entries.pop()
    bought_raw, pos = _read_varints(data, pos, 2 * n_bought + 1 + with_latest)
    n_latest = bought_raw.pop() if with_latest else 0
    n_seen = bought_raw.pop()
    keys_end = len(data) - n_latest  # the recommendation comes after the event keys
    end = keys_end - 8 * n_seen  # the text ends where the event keys begin

    def text(size: int) -> str:
        nonlocal pos
        if pos + size > end:
            raise ValueError(f"a {size}-byte id past the text")
        pos += size
        return data[pos - size:pos].decode()

    window: list[Interaction] = []
    ts = head[1]  # last_ts
    for n in range(n_window):
        tag, value, step, dwell = entries[4 * n:4 * n + 4]
        code, kind = tag & 0b111, tag >> 3
        if code not in EVENT_NAMES:
            raise ValueError(f"event code {code}")
        if kind == _INT:
            item_id = str(value)
        elif kind == _TEXT:
            item_id = text(value)
        elif kind == _SAME and 0 < value <= n:
            item_id = window[n - value].item_id
        else:
            raise ValueError(f"entry {n}: id kind {kind} with value {value}")
        ts = ts - step if n == 0 else ts + step
        window.append(Interaction(item_id, code, ts, dwell))
    bought = []
    for n in range(n_bought):
        kind, value = bought_raw[2 * n:2 * n + 2]
        if kind not in (_INT, _TEXT):
            raise ValueError(f"bought item {n}: id kind {kind}")
        bought.append(str(value) if kind == _INT else text(value))
    if pos != end:
        raise ValueError(f"{len(data) - pos} bytes where {8 * n_seen} event keys belong")
    seen = struct.unpack_from(f">{n_seen}Q", data, pos)
    state = _state(limits, head, window, bought, seen)
    state.latest = data[keys_end:]
    return state


def _state(limits: StateLimits, head: Sequence[int], window: list[Interaction],
           bought: list[str], seen: tuple[int, ...]) -> UserState:
    events_total, last_ts, session_count, back, session_events = head[:5]
    state = UserState(limits)
    state.events_total, state.last_ts, state.session_count = events_total, last_ts, session_count
    state.session_start_ms, state.session_events = last_ts - back, session_events
    state.window = window[-limits.window_size:]
    state.bought = bought[-limits.bought_memory:] if limits.bought_memory else []
    state.seen = deque(seen, maxlen=limits.dedupe_memory)
    state.restore_seen_index()
    return state


def _decode_v1(data: bytes, limits: StateLimits) -> UserState:
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

    return _state(limits, head, window, bought, seen)


def _item_id(kind: int, value: int, strings: list[str]) -> str:
    if kind == _INT:
        return str(value)
    if kind == _TEXT:
        return strings[value]
    raise ValueError(f"item id kind {kind} with value {value}")


def _write_varints(out: bytearray, values: Sequence[int], mark_every: int = 0) -> list[int]:
    """Append ``values``; with ``mark_every``, return the length of ``out`` after every
    that many values."""
    append = out.append
    marks: list[int] = []
    for at, value in enumerate(values, 1):
        if value < 0:
            raise ValueError(f"negative value {value} in state")
        while value > 0x7F:
            append((value & 0x7F) | 0x80)
            value >>= 7
        append(value)
        if mark_every and not at % mark_every:
            marks.append(len(out))
    return marks


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
