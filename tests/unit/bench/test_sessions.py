"""The benchmarks' event streams: real sessions, interleaved as a shop would see them."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

from _common import sessions, view_record  # noqa: E402


def _data(tmp_path: Path) -> Path:
    path = tmp_path / "sessions.txt"
    path.write_text("u1 a b c\nu2 d\nu3 e f\nu4 g h i j\n")
    return path


def test_sessions_interleave_users_by_position(tmp_path):
    # each user's first event, then each one's second, ...; users are read only as far as
    # the count needs (u4 is not reached for six events)
    assert sessions(_data(tmp_path), 6) == [("u1", "a"), ("u2", "d"), ("u3", "e"),
                                            ("u1", "b"), ("u3", "f"), ("u1", "c")]


def test_sessions_return_exactly_the_count_asked_for(tmp_path):
    assert len(sessions(_data(tmp_path), 7)) == 7
    assert sessions(_data(tmp_path), 1) == [("u1", "a")]


def test_view_record_is_keyed_by_user_with_a_view_event(tmp_path):
    key, value = view_record("u1", "a", "e-1", 1_700_000_000_000)
    assert key == b"u1"
    assert orjson.loads(value) == {"event_id": "e-1", "user_id": "u1", "item_id": "a",
                                   "ts": 1_700_000_000_000}
