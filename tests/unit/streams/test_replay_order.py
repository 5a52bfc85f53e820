"""What a replay sends, in which order, before any broker is involved."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.replay import ReplayOptions, ReplaySummary, open_log
from streams.replay_formats import BadLine, FormatMismatch, Parsed


def _events(items):
    return [i for i in items if isinstance(i, Parsed)]


def _csv(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "events.csv"
    path.write_text("\n".join(["timestamp,visitorid,event,itemid,transactionid", *rows]) + "\n")
    return path


def test_csv_is_sent_in_time_order_whatever_the_file_order(tmp_path, settings_factory):
    path = _csv(tmp_path, ["1433221332300,1,view,3,", "1433221332100,1,view,1,",
                           "bad", "1433221332200,2,view,2,"])
    items = list(open_log(settings_factory(), ReplayOptions(path, "retailrocket")))
    assert [e.event.item_id for e in _events(items)] == ["1", "2", "3"]
    assert [i.line_no for i in items if isinstance(i, BadLine)] == [4]


def test_seq_at_max_speed_keeps_file_order(tmp_path, settings_factory):
    path = tmp_path / "s.txt"
    path.write_text("5 1 2 3\n4 9\n")
    items = _events(open_log(settings_factory(), ReplayOptions(path, "seq")))
    assert [(e.event.user_id, e.event.item_id) for e in items] == [
        ("5", "1"), ("5", "2"), ("5", "3"), ("4", "9")]


def test_seq_paced_is_sorted_by_time_and_each_user_stays_in_order(tmp_path, settings_factory):
    path = tmp_path / "s.txt"
    path.write_text("5 1 2 3\n4 9 8\n")
    items = _events(open_log(settings_factory(), ReplayOptions(path, "seq", speed=1.0)))
    assert [e.event.ts for e in items] == sorted(e.event.ts for e in items)
    assert [e.event.item_id for e in items if e.event.user_id == "5"] == ["1", "2", "3"]
    assert [e.event.item_id for e in items if e.event.user_id == "4"] == ["9", "8"]


def test_limit_keeps_the_first_n_events_of_the_file(tmp_path, settings_factory):
    path = tmp_path / "s.txt"
    path.write_text("5 1 2 3\n4 9 8\n")
    items = _events(open_log(settings_factory(), ReplayOptions(path, "seq", limit=4)))
    assert [(e.event.user_id, e.event.item_id) for e in items] == [
        ("5", "1"), ("5", "2"), ("5", "3"), ("4", "9")]


def test_format_is_checked_when_the_log_is_opened(tmp_path, settings_factory):
    path = tmp_path / "s.txt"
    path.write_text("1 2 3\n")
    with pytest.raises(FormatMismatch):
        open_log(settings_factory(), ReplayOptions(path, "retailrocket"))


def test_summary_reports_counts_rate_and_bad_line_numbers():
    summary = ReplaySummary(sent=500, failed=0, skipped_lines=2, bad_lines=[3, 9], seconds=2.0)
    text = summary.describe()
    assert summary.ok and summary.rate == 250.0
    assert "500 events sent, 0 failed, 2 lines skipped" in text and "lines: 3, 9" in text
    assert not ReplaySummary(sent=1, failed=1).ok
