"""The benchmarks' event streams: real sessions, several users browsing at once."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

from _common import sessions, view_record  # noqa: E402


def _data(tmp_path: Path) -> Path:
    path = tmp_path / "sessions.txt"
    path.write_text("u1 a b c\nu2 d\nu3 e f\nu4 g h i j\n")
    return path


def test_sessions_let_active_users_take_turns(tmp_path):
    # two users browse at once; when one has viewed all their items the next user in the
    # file takes the turn, at the end of the round (a line without items is nobody)
    path = tmp_path / "sessions.txt"
    path.write_text("u1 a b c\nu2 d\nu0\nu3 e f\nu4 g h i j\n")
    assert sessions(path, 10, active=2) == [
        ("u1", "a"), ("u2", "d"), ("u1", "b"), ("u3", "e"), ("u1", "c"), ("u3", "f"),
        ("u4", "g"), ("u4", "h"), ("u4", "i"), ("u4", "j")]


def test_a_users_events_are_one_round_apart_while_the_file_lasts(tmp_path):
    # so no two events of one user fall in the same micro-batch of a drain
    path = tmp_path / "sessions.txt"
    path.write_text("".join(f"u{n} " + " ".join(f"i{k}" for k in range(1 + n % 7)) + "\n"
                            for n in range(400)))
    pairs = sessions(path, 1000, active=50)
    last: dict[str, int] = {}
    gaps = set()
    for position, (user, _) in enumerate(pairs):
        if user in last:
            gaps.add(position - last[user])
        last[user] = position
    assert gaps == {50}


def test_sessions_say_when_the_file_holds_too_few_events(tmp_path):
    with pytest.raises(ValueError, match="holds 10 events, fewer than 11"):
        sessions(_data(tmp_path), 11)


def test_sessions_return_exactly_the_count_asked_for(tmp_path):
    assert len(sessions(_data(tmp_path), 7)) == 7
    assert len(sessions(_data(tmp_path), 10)) == 10
    assert sessions(_data(tmp_path), 1) == [("u1", "a")]


def test_view_record_is_keyed_by_user_with_a_view_event(tmp_path):
    key, value = view_record("u1", "a", "e-1", 1_700_000_000_000)
    assert key == b"u1"
    assert orjson.loads(value) == {"event_id": "e-1", "user_id": "u1", "item_id": "a",
                                   "ts": 1_700_000_000_000}
