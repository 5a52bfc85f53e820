from __future__ import annotations

import pytest

from export.data import DataError, load


def test_seq_format_keeps_order_and_marks_purchases(seq_file):
    data = load(seq_file({7: [3, 1, 2], 8: [5, 6]}))
    assert data.users["7"] == [("3", 4), ("1", 4), ("2", 4)]
    assert list(data.users) == ["7", "8"]
    assert len(data.fingerprint) == 64


def test_seq_format_rejects_non_integer_ids(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("1 2 3\n2 4 x5\n")
    with pytest.raises(DataError, match=r"bad.txt:2: expected integer ids"):
        load(path)


def test_seq_format_rejects_item_zero(seq_file):
    with pytest.raises(DataError, match="out of range"):
        load(seq_file({1: [1, 0, 2]}))


def test_empty_file_is_an_empty_dataset(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n\n")
    with pytest.raises(DataError, match="empty dataset"):
        load(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load(tmp_path / "nope.txt")


def test_jsonl_orders_by_time_maps_actions_and_reads_titles(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(
        '{"user_id": "u1", "item_id": "b", "event_type": "click", "action": "purchase",'
        ' "ts": "2026-01-01T10:00:05Z"}\n'
        '{"item_id": "b", "title": "red lipstick"}\n'
        '{"user_id": "u1", "item_id": "a", "event_type": "view", "ts": "2026-01-01T10:00:00Z"}\n'
        '{"user_id": "u2", "item_id": "c", "type": "click", "ts": 1767261600000}\n'
        '{"user_id": "u2", "item_id": "a", "type": "add_to_cart", "ts": 1767261600001}\n'
    )
    data = load(path, "jsonl")
    assert data.users["u1"] == [("a", 1), ("b", 4)]
    assert data.users["u2"] == [("c", 2), ("a", 3)]
    assert data.titles == {"b": "red lipstick"}


def test_jsonl_reads_the_schemas_wire_format_as_replay_writes_it(tmp_path):
    from schemas import ClickEvent, ViewEvent, encode

    path = tmp_path / "events.jsonl"
    base = 1_767_261_600_000
    path.write_bytes(b"\n".join([
        encode(ViewEvent(event_id="e1", user_id="u1", item_id="a", ts=base)),
        encode(ClickEvent(event_id="e2", user_id="u1", item_id="b", ts=base + 1,
                          action="add_to_cart")),
        encode(ClickEvent(event_id="e3", user_id="u1", item_id="b", ts=base + 2,
                          action="purchase")),
    ]) + b"\n")
    # back-to-back events on one item merge into the strongest (see _collapse_repeats)
    assert load(path, "jsonl").users["u1"] == [("a", 1), ("b", 4)]


@pytest.mark.parametrize("line", [
    "not json",
    '{"user_id": "u", "item_id": "", "type": "view"}',
    '{"user_id": "u", "item_id": "a", "type": "teleport"}',
    '{"user_id": 5, "item_id": "a", "type": "view"}',
])
def test_jsonl_rejects_malformed_lines(tmp_path, line):
    path = tmp_path / "events.jsonl"
    path.write_text('{"user_id": "u", "item_id": "a", "type": "view"}\n' + line + "\n")
    with pytest.raises(DataError, match=r"events.jsonl:2"):
        load(path, "jsonl")


def test_retailrocket_csv_sorts_by_timestamp_and_merges_repeats(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(
        "timestamp,visitorid,event,itemid,transactionid\n"
        "30,9,transaction,100,1\n"
        "10,9,view,100,\n"
        "20,9,addtocart,100,\n"
        "5,9,view,200,\n"
        "1,4,view,300,\n"
    )
    data = load(path, "retailrocket")
    # The view, cart and purchase of item 100 in a row become one purchase event.
    assert data.users["9"] == [("200", 1), ("100", 4)]
    assert data.users["4"] == [("300", 1)]


def test_retailrocket_needs_its_header(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DataError, match="CSV header"):
        load(path, "retailrocket")


def test_binary_file_is_reported_not_raised(tmp_path):
    path = tmp_path / "blob.txt"
    path.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(DataError, match="not a UTF-8"):
        load(path)
