"""The binary form of UserState: exact round trips, compactness, refusing bad bytes, the
bytes reused from the last encoding, and rows written by version 1."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from streams.state import StateLimits, UserState
from streams.state_codec import StateDecodeError, decode_state, encode_state

T0 = 1_764_000_000_000
LIMITS = StateLimits(window_size=50, dedupe_memory=64, bought_memory=100)


def full_state(ids=lambda n: str(1000 + 37 * n)) -> UserState:
    state = UserState(LIMITS)
    for n in range(120):
        code = 4 if n % 25 == 0 else 1 + n % 3
        state.apply(f"event-{n}", ids(n), code, T0 + n * 41_000 + (n % 7) * 13, 500 + 17 * n)
    return state


def assert_same(a: UserState, b: UserState) -> None:
    assert b.window == a.window
    assert list(b.seen) == list(a.seen)
    assert b.bought == a.bought
    for name in ("events_total", "last_ts", "session_count", "session_start_ms",
                 "session_events"):
        assert getattr(b, name) == getattr(a, name), name


@pytest.mark.parametrize("ids", [
    lambda n: str(1000 + 37 * n),  # the data files' integer ids
    lambda n: f"SKU-{n:05d}-é",  # any other text
    lambda n: "007" if n % 2 else "0",  # leading zero is not a canonical integer
    lambda n: str(2**64 + n),  # too big for the integer form
    lambda n: f"item-{n % 7}",  # text ids seen again, in the window and among the bought
])
def test_round_trip_is_exact(ids):
    state = full_state(ids)
    back = decode_state(encode_state(state), LIMITS)
    assert_same(state, back)
    assert back.summary(T0) == state.summary(T0)


def test_round_trip_keeps_dedupe_working():
    back = decode_state(encode_state(full_state()), LIMITS)
    assert back.apply("event-119", "1", 1, T0, 0) is False
    assert back.apply("brand-new", "1", 1, T0, 0) is True


def test_empty_state_round_trips():
    state = UserState(LIMITS)
    assert_same(state, decode_state(encode_state(state), LIMITS))


def test_late_events_round_trip():
    state = UserState(LIMITS)
    state.apply("b", "2", 1, T0 + 5000, 0)
    state.apply("a", "1", 1, T0, 0)
    assert decode_state(encode_state(state), LIMITS).window == state.window


def test_full_window_with_integer_ids_is_under_one_kilobyte():
    assert len(encode_state(full_state())) < 1024


def test_an_id_seen_again_is_stored_once():
    distinct = full_state(lambda n: f"item-{n:06d}")
    repeated = full_state(lambda n: f"item-{n % 3:06d}")
    # 50 window entries of 11 bytes each would not fit in the difference otherwise.
    assert len(encode_state(distinct)) - len(encode_state(repeated)) > 40 * 11


def test_smaller_limits_keep_the_newest():
    small = StateLimits(window_size=10, dedupe_memory=5, bought_memory=2)
    state = full_state()
    back = decode_state(encode_state(state), small)
    assert back.window == state.window[-10:]
    assert list(back.seen) == list(state.seen)[-5:]
    assert back.bought == state.bought[-2:]


def test_first_byte_is_the_version_and_others_are_refused():
    data = encode_state(full_state())
    assert data[0] == 3
    for other in (b"\x00", b"\x04"):
        with pytest.raises(StateDecodeError, match="version"):
            decode_state(other + data[1:], LIMITS)
    with pytest.raises(StateDecodeError):
        decode_state(b"", LIMITS)


@pytest.mark.parametrize("cut", [3, 40, -1])
def test_truncated_or_padded_bytes_are_refused(cut):
    data = encode_state(full_state())
    with pytest.raises(StateDecodeError, match="corrupt"):
        decode_state(data[:cut], LIMITS)
    with pytest.raises(StateDecodeError, match="corrupt"):
        decode_state(data + b"\x00", LIMITS)


@pytest.mark.parametrize(("name", "ids"), [
    ("int", lambda n: str(1000 + 37 * n)),
    ("text", lambda n: f"item-{n % 7}-é"),  # its text table and bought items by window index
])
@pytest.mark.parametrize("version", [1, 2])
def test_rows_written_by_earlier_versions_are_still_read(name, ids, version):
    data = (Path(__file__).parent / "data" / f"state_v{version}_{name}.bin").read_bytes()
    assert data[0] == version
    back = decode_state(data, LIMITS)
    assert_same(full_state(ids), back)
    assert back.latest == b""  # it had a table of its own then


def test_the_latest_recommendation_round_trips_after_the_event_keys():
    state = full_state()
    state.latest = b'{"user_id": "u", "items": []}'
    data = encode_state(state)
    assert data.endswith(state.latest)
    back = decode_state(data, LIMITS)
    assert_same(state, back)
    assert back.latest == state.latest
    with pytest.raises(StateDecodeError, match="corrupt"):
        decode_state(data[:-1], LIMITS)  # a recommendation cut short


def fresh_encoding(state: UserState) -> bytes:
    state.codec_memo = None
    return encode_state(state)


@pytest.mark.parametrize("seed", range(6))
def test_reusing_the_last_encoding_gives_the_bytes_of_a_whole_one(seed):
    # a stream with the window filling and then evicting, ids seen again (pointing back at
    # entries that later leave), text ids, purchases and late events slotted in between
    rng = random.Random(seed)
    limits = StateLimits(window_size=12, dedupe_memory=16, bought_memory=3)
    state, twin = UserState(limits), UserState(limits)
    ts = T0
    for n in range(200):
        ts += rng.randint(0, 90_000)
        late = rng.random() < 0.1
        item = rng.choice(["7", "8", "SKU-é", str(rng.randint(0, 10**12)), f"t{n}"])
        args = (f"e{n}", item, rng.choice((1, 1, 2, 3, 4)),
                ts - rng.randint(1, 400_000) if late else ts, rng.randint(0, 9_000))
        state.apply(*args)
        twin.apply(*args)
        data = encode_state(state)  # reuses what it kept from the encoding before
        assert data == fresh_encoding(twin)
        assert_same(state, decode_state(data, limits))
    assert state.codec_memo is not None
