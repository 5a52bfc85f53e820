"""Reading seq, jsonl and RetailRocket logs into events, with their unreadable lines."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pytest

from schemas import ClickEvent, ViewEvent
from shopstream import topics as t
from streams.replay_formats import (
    PROBE_LINES,
    SEQ_BASE_MS,
    SEQ_STEP_MS,
    SEQ_USER_GAP_MS,
    BadLine,
    FormatMismatch,
    Parsed,
    guess_format,
    read_events,
    seq_action,
)

NOW = SEQ_BASE_MS + 30 * 24 * 3600 * 1000  # a fixed receiver clock, a month after the base


def _write(tmp_path: Path, name: str, lines: list[str] | bytes) -> Path:
    path = tmp_path / name
    if isinstance(lines, bytes):
        path.write_bytes(lines)
    else:
        path.write_text("".join(line + "\n" for line in lines))
    return path


def _read(path: Path, fmt: str) -> tuple[list[Parsed], list[BadLine]]:
    items = list(read_events(path, fmt, now=NOW))
    return ([i for i in items if isinstance(i, Parsed)],
            [i for i in items if isinstance(i, BadLine)])


# --- seq -----------------------------------------------------------------------------------
def test_seq_gives_one_event_per_item_in_order_with_synthetic_times(tmp_path):
    path = _write(tmp_path, "s.txt", ["1 10 11 12", "2 13"])
    events, bad = _read(path, "seq")
    assert bad == []
    assert [(p.event.user_id, p.event.item_id) for p in events] == [
        ("1", "10"), ("1", "11"), ("1", "12"), ("2", "13")]
    assert [p.event.ts for p in events] == [
        SEQ_BASE_MS, SEQ_BASE_MS + SEQ_STEP_MS, SEQ_BASE_MS + 2 * SEQ_STEP_MS,
        SEQ_BASE_MS + SEQ_USER_GAP_MS]


def test_seq_topic_matches_the_derived_action(tmp_path):
    path = _write(tmp_path, "s.txt", [f"{u} " + " ".join(str(i) for i in range(1, 30))
                                      for u in range(1, 40)])
    events, _ = _read(path, "seq")
    for p in events:
        action, dwell = seq_action(p.event.user_id, int(p.event.item_id) - 1)
        assert p.event.dwell_ms == dwell
        if action is None:
            assert p.topic == t.VIEWS and isinstance(p.event, ViewEvent)
        else:
            assert p.topic == t.CLICKS and isinstance(p.event, ClickEvent)
            assert p.event.action == action


def test_seq_types_are_mostly_views_with_some_clicks_carts_and_rare_purchases():
    counts = Counter(seq_action(str(user), pos)[0] for user in range(2000) for pos in range(10))
    total = sum(counts.values())
    assert 0.75 < counts[None] / total < 0.85
    assert 0.11 < counts["click"] / total < 0.17
    assert 0.025 < counts["add_to_cart"] / total < 0.055
    assert 0.01 < counts["purchase"] / total < 0.03


def test_seq_is_deterministic_ids_types_and_times(tmp_path):
    path = _write(tmp_path, "s.txt", ["7 1 2 3 4 5 6", "8 1 2"])
    first, _ = _read(path, "seq")
    again, _ = _read(_write(tmp_path, "copy.txt", ["7 1 2 3 4 5 6", "8 1 2"]), "seq")
    assert [(p.topic, p.event) for p in first] == [(p.topic, p.event) for p in again]
    assert len({p.event.event_id for p in first}) == len(first)


def test_seq_ids_do_not_depend_on_other_lines(tmp_path):
    short, _ = _read(_write(tmp_path, "a.txt", ["7 1 2 3"]), "seq")
    longer, _ = _read(_write(tmp_path, "b.txt", ["7 1 2 3", "9 4 5"]), "seq")
    assert [p.event.event_id for p in short] == [p.event.event_id for p in longer[:3]]


def test_seq_bad_lines_are_reported_by_number_and_the_rest_is_read(tmp_path):
    path = _write(tmp_path, "s.txt", ["1 10 11", "2", "3 zq 4", "", "4 12"])
    events, bad = _read(path, "seq")
    assert [b.line_no for b in bad] == [2, 3]
    assert {p.event.user_id for p in events} == {"1", "4"}
    assert all("zq" not in b.reason for b in bad)


def test_seq_line_that_is_not_utf8_is_a_bad_line(tmp_path):
    path = _write(tmp_path, "s.txt", b"1 2 3\n\xff\xfe 5\n4 5\n")
    events, bad = _read(path, "seq")
    assert [b.line_no for b in bad] == [2]
    assert len(events) == 3


# --- jsonl ---------------------------------------------------------------------------------
def _view(n: int, **extra: object) -> str:
    return orjson.dumps({"event_id": f"e{n}", "user_id": f"u{n % 3}", "item_id": str(n),
                         "ts": SEQ_BASE_MS + n, **extra}).decode()


def test_jsonl_tells_views_from_clicks_by_topic_type_or_action(tmp_path):
    path = _write(tmp_path, "e.jsonl", [
        _view(1), _view(2, action="purchase"), _view(3, topic="events.views"),
        _view(4, type="click", action="click"), _view(5, topic="events.clicks",
                                                      action="add_to_cart")])
    events, bad = _read(path, "jsonl")
    assert bad == []
    assert [p.topic for p in events] == [t.VIEWS, t.CLICKS, t.VIEWS, t.CLICKS, t.CLICKS]
    assert [p.event.event_id for p in events] == ["e1", "e2", "e3", "e4", "e5"]


def test_jsonl_without_event_id_gets_a_stable_derived_one(tmp_path):
    line = orjson.dumps({"user_id": "u", "item_id": "i", "ts": SEQ_BASE_MS}).decode()
    first, _ = _read(_write(tmp_path, "a.jsonl", [line]), "jsonl")
    again, _ = _read(_write(tmp_path, "b.jsonl", [line]), "jsonl")
    assert first[0].event.event_id == again[0].event.event_id
    assert first[0].event.event_id.startswith("rp-")


def test_jsonl_bad_lines_carry_the_schema_reason(tmp_path):
    path = _write(tmp_path, "e.jsonl", [
        _view(1), "{not json", "[1, 2]", _view(4, action="steal"), _view(5, type="teleport"),
        orjson.dumps({"event_id": "e6", "user_id": "u", "item_id": "i", "ts": 5}).decode(),
        _view(7)])
    events, bad = _read(path, "jsonl")
    assert [p.event.event_id for p in events] == ["e1", "e7"]
    assert [(b.line_no, b.reason) for b in bad] == [
        (2, "not JSON"), (3, "not a JSON object"), (4, "unknown_action"),
        (5, "unknown topic or type"), (6, "ts_too_old")]


# --- retailrocket --------------------------------------------------------------------------
def test_retailrocket_maps_events_and_skips_the_header(tmp_path):
    path = _write(tmp_path, "events.csv", [
        "timestamp,visitorid,event,itemid,transactionid",
        "1433221332117,257597,view,355908,",
        "1433224214164,992329,addtocart,248676,",
        "1433221999827,111016,transaction,3550,4000"])
    events, bad = _read(path, "retailrocket")
    assert bad == []
    assert [(p.topic, p.event.user_id, p.event.item_id, p.event.ts) for p in events] == [
        (t.VIEWS, "257597", "355908", 1433221332117),
        (t.CLICKS, "992329", "248676", 1433224214164),
        (t.CLICKS, "111016", "3550", 1433221999827)]
    assert [getattr(p.event, "action", None) for p in events] == [
        None, "add_to_cart", "purchase"]


def test_retailrocket_bad_rows_are_reported_by_number(tmp_path):
    path = _write(tmp_path, "events.csv", [
        "timestamp,visitorid,event,itemid,transactionid",
        "1433221332117,1,view,2,", "soon,1,view,2,", "1433221332118,1,like,2,",
        "1433221332119,1,view", "1433221332,1,view,2,", "1433221332120,,view,2,",
        "1433221332121,1,view,3,"])
    events, bad = _read(path, "retailrocket")
    assert [p.event.item_id for p in events] == ["2", "3"]
    assert [b.line_no for b in bad] == [3, 4, 5, 6, 7]
    assert bad[3].reason == "ts_too_old" and bad[4].reason == "empty_id"


def test_retailrocket_ids_are_stable_and_differ_per_row(tmp_path):
    rows = ["1433221332117,1,view,2,", "1433221332118,1,view,2,"]
    first, _ = _read(_write(tmp_path, "a.csv", rows), "retailrocket")
    again, _ = _read(_write(tmp_path, "b.csv", ["timestamp,visitorid,event,itemid", *rows]),
                     "retailrocket")
    assert [p.event.event_id for p in first] == [p.event.event_id for p in again]
    assert first[0].event.event_id != first[1].event.event_id


# --- files that are not of the format at all -------------------------------------------------
def test_missing_file_is_a_format_mismatch(tmp_path):
    with pytest.raises(FormatMismatch, match="no such file"):
        list(read_events(tmp_path / "nope.txt", "seq"))


def test_file_of_another_format_is_refused_before_anything_is_yielded(tmp_path):
    lines = [f"{u} {u + 1} {u + 2}" for u in range(1, PROBE_LINES + 5)]
    path = _write(tmp_path, "s.txt", lines)
    items = read_events(path, "jsonl", now=NOW)
    with pytest.raises(FormatMismatch, match=f"first {PROBE_LINES} lines"):
        next(items)


def test_short_file_with_no_readable_line_is_refused(tmp_path):
    path = _write(tmp_path, "e.csv", ["a,b", "c,d"])
    with pytest.raises(FormatMismatch, match="none of its 2 lines"):
        list(read_events(path, "retailrocket", now=NOW))


def test_empty_file_is_refused(tmp_path):
    with pytest.raises(FormatMismatch, match="no events"):
        list(read_events(_write(tmp_path, "e.txt", []), "seq"))


def test_a_readable_line_within_the_probe_lets_the_file_through(tmp_path):
    lines = ["junk"] * (PROBE_LINES - 1) + ["1 2 3"]
    events, bad = _read(_write(tmp_path, "s.txt", lines), "seq")
    assert len(bad) == PROBE_LINES - 1 and len(events) == 2


@pytest.mark.parametrize(("name", "fmt"), [("a.jsonl", "jsonl"), ("b.NDJSON", "jsonl"),
                                           ("events.csv", "retailrocket"), ("c.txt", "seq")])
def test_guess_format_from_the_name(name, fmt):
    assert guess_format(Path(name)) == fmt
