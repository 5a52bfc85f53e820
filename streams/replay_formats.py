"""Reading historical logs into view and click events, line by line, for ``shopstream replay``.

Every reader yields, in file order, ``Parsed`` (one event and the topic it goes to) or
``BadLine`` (a line number and why it could not be read, never the line's content). Each
event is validated through ``schemas.decode``, the worker's own check, so what the
replay sends is what the worker accepts. Blank lines are ignored.

Formats:

``seq`` (the files in ../shared/data): ``user_id item_id item_id ...``, positive integer
ids, items in time order, no timestamps or event types. The events are synthetic and
deterministic:

- every item yields exactly one event, so no item is lost: each user's window holds the
  data line as it is, and the last item (the leave-one-out target) is always there, as a
  view or a stronger event;
- timestamps: ``base_ms + (line_no - 1) * 1 s + position * 60 s``; a shopper arrives every
  second, in file order, and each looks at an item a minute. ``base_ms`` defaults to
  ``SEQ_BASE_MS`` (2026-01-01T00:00:00Z), a fixed recent instant, so the same file gives
  the same events on every run; a million users would still end 12 days after it;
- the event type comes from ``u``, the first 8 bytes of BLAKE2b(``"{user}|{position}"``)
  read as a fraction of 2**64: ``u < 0.02`` purchase, ``< 0.06`` add_to_cart,
  ``< 0.20`` click, otherwise view (about 80 % views, 14 % clicks, 4 % carts, 2 %
  purchases); the dwell time is ``2 s + (the next 4 bytes mod 88 s)``.

``jsonl``: one event per line in the wire format of ``schemas`` (``ViewEvent`` or
``ClickEvent`` fields). Which topic: an optional ``"topic"`` field
(``"events.views"``/``"events.clicks"``) or ``"type"`` field (``"view"``/``"click"``)
decides and is removed before validation; without either, a line with an ``"action"``
field is a click and one without is a view. A line without ``event_id`` gets a derived one.

``retailrocket``: the RetailRocket CSV, ``timestamp,visitorid,event,itemid[,transactionid]``
with epoch-ms timestamps; a header line is skipped. ``view`` becomes a ViewEvent,
``addtocart`` a ClickEvent ``add_to_cart``, ``transaction`` a ClickEvent ``purchase``.

Event ids are derived from what identifies the event, not from where it sits in the file
(``"rp-"`` + BLAKE2b of the format and the event's fields, ``position`` for seq, the whole
row for the CSV), so a second replay of the same file, or of a longer version of it, sends
the same ids and the worker drops the repeats. Two identical CSV rows get one id: they
describe the same event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from schemas import ClickEvent, InvalidEvent, Limits, ViewEvent, decode, now_ms
from shopstream import topics as t

FORMATS = ("seq", "jsonl", "retailrocket")
SEQ_BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SEQ_USER_GAP_MS = 1_000
SEQ_STEP_MS = 60_000
# A file whose first PROBE_LINES lines are all unreadable is not of the stated format.
PROBE_LINES = 20
_RR_EVENTS = {"view": None, "addtocart": "add_to_cart", "transaction": "purchase"}
_JSONL_TOPICS = {"events.views": t.VIEWS, "events.clicks": t.CLICKS,
                 "view": t.VIEWS, "click": t.CLICKS}


class FormatMismatch(Exception):
    """The file cannot be read at all, or is not of the stated format (one line, safe to show)."""


@dataclass(frozen=True, slots=True)
class Parsed:
    line_no: int
    topic: str
    event: ViewEvent | ClickEvent


@dataclass(frozen=True, slots=True)
class BadLine:
    line_no: int
    reason: str


Item = Parsed | BadLine


def guess_format(path: Path) -> str:
    """The format a file's name suggests: .jsonl/.ndjson, .csv, otherwise seq."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "retailrocket"
    return "seq"


def read_events(path: Path, fmt: str, base_ms: int = SEQ_BASE_MS,
                limits: Limits | None = None, now: int | None = None) -> Iterator[Item]:
    """The events of the file at ``path`` in ``fmt``, in file order, with its unreadable lines.

    Raises FormatMismatch, before yielding anything, when the file cannot be opened or none
    of its first PROBE_LINES non-blank lines can be read.
    """
    if fmt not in FORMATS:
        raise FormatMismatch(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    if not path.is_file():
        raise FormatMismatch(f"{path}: no such file")
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise FormatMismatch(f"{path}: cannot be read ({exc.strerror})") from None
    clock = now_ms() if now is None else now
    bounds = Limits() if limits is None else limits
    with handle:
        parse = _PARSERS[fmt]
        items = (item for line_no, text in _lines(handle)
                 for item in parse(line_no, text, base_ms, bounds, clock))
        yield from probe(items, f"{path} is not a {fmt} file")


def probe(items: Iterable[Item], what: str, lines: int = PROBE_LINES) -> Iterator[Item]:
    """Pass ``items`` through once an event shows up in the first ``lines`` bad lines.

    Raises FormatMismatch (with the first reason) when ``lines`` bad lines come before any
    event, or the file ends without one.
    """
    held: list[Item] = []
    it = iter(items)
    for item in it:
        held.append(item)
        if isinstance(item, Parsed):
            break
        if len(held) >= lines:
            raise FormatMismatch(f"{what}: its first {lines} lines are unreadable "
                                 f"(line {held[0].line_no}: {_reason(held[0])})")
    else:
        if not held:
            raise FormatMismatch(f"{what}: it holds no events")
        raise FormatMismatch(f"{what}: none of its {len(held)} lines is readable "
                             f"(line {held[0].line_no}: {_reason(held[0])})")
    yield from held
    yield from it


def event_id(*parts: object) -> str:
    """A deterministic event id from what identifies the event."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=10)
    return "rp-" + digest.hexdigest()


def seq_action(user_id: str, position: int) -> tuple[str | None, int]:
    """(click action or None for a view, dwell ms) of a seq item, from a hash (see above)."""
    digest = hashlib.blake2b(f"{user_id}|{position}".encode(), digest_size=12).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    dwell = 2_000 + int.from_bytes(digest[8:], "big") % 88_000
    if u < 0.02:
        return "purchase", dwell
    if u < 0.06:
        return "add_to_cart", dwell
    if u < 0.20:
        return "click", dwell
    return None, dwell


def _reason(item: Item) -> str:
    return item.reason if isinstance(item, BadLine) else "ok"


def _lines(handle: Iterable[bytes]) -> Iterator[tuple[int, str | None]]:
    """(line number from 1, text or None when not UTF-8), skipping blank lines."""
    for line_no, raw in enumerate(handle, start=1):
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            yield line_no, None
            continue
        if text:
            yield line_no, text


def _validated(line_no: int, topic: str, fields: dict[str, Any], limits: Limits,
               now: int) -> Item:
    try:
        event = decode(topic, orjson.dumps(fields), limits, now=now)
    except InvalidEvent as exc:
        return BadLine(line_no, exc.reason.value)
    assert isinstance(event, ViewEvent | ClickEvent)
    return Parsed(line_no, topic, event)


def _seq(line_no: int, text: str | None, base_ms: int, limits: Limits,
         now: int) -> Iterator[Item]:
    if text is None:
        yield BadLine(line_no, "not UTF-8")
        return
    ids = text.split()
    if len(ids) < 2:
        yield BadLine(line_no, "expected a user id and at least one item id")
        return
    if not all(part.isascii() and part.isdigit() for part in ids):
        yield BadLine(line_no, "ids must be positive integers")
        return
    user, items = ids[0], ids[1:]
    start = base_ms + (line_no - 1) * SEQ_USER_GAP_MS
    out: list[Item] = []
    for position, item in enumerate(items):
        action, dwell = seq_action(user, position)
        fields: dict[str, Any] = {
            "event_id": event_id("seq", user, position, item), "user_id": user,
            "item_id": item, "ts": start + position * SEQ_STEP_MS, "dwell_ms": dwell,
        }
        if action is not None:
            fields["action"] = action
        checked = _validated(line_no, t.CLICKS if action else t.VIEWS, fields, limits, now)
        if isinstance(checked, BadLine):
            yield checked  # one bad id spoils the user's line: none of it is sent
            return
        out.append(checked)
    yield from out


def _jsonl(line_no: int, text: str | None, base_ms: int, limits: Limits,
           now: int) -> Iterator[Item]:
    if text is None:
        yield BadLine(line_no, "not UTF-8")
        return
    try:
        fields = orjson.loads(text)
    except orjson.JSONDecodeError:
        yield BadLine(line_no, "not JSON")
        return
    if not isinstance(fields, dict):
        yield BadLine(line_no, "not a JSON object")
        return
    tag = fields.pop("topic", None) if "topic" in fields else fields.pop("type", None)
    if tag is None:
        topic = t.CLICKS if "action" in fields else t.VIEWS
    elif isinstance(tag, str) and tag in _JSONL_TOPICS:
        topic = _JSONL_TOPICS[tag]
    else:
        yield BadLine(line_no, "unknown topic or type")
        return
    if "event_id" not in fields:
        fields["event_id"] = event_id("jsonl", orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
                                      .decode())
    yield _validated(line_no, topic, fields, limits, now)


def _retailrocket(line_no: int, text: str | None, base_ms: int, limits: Limits,
                  now: int) -> Iterator[Item]:
    if text is None:
        yield BadLine(line_no, "not UTF-8")
        return
    row = [cell.strip() for cell in text.split(",")]
    if line_no == 1 and row[0].lower() == "timestamp":
        return  # the header
    if len(row) not in (4, 5):
        yield BadLine(line_no, "expected 4 or 5 comma-separated fields")
        return
    ts, visitor, kind, item = row[:4]
    if not (ts.isascii() and ts.isdigit()):
        yield BadLine(line_no, "timestamp is not an integer")
        return
    if kind not in _RR_EVENTS:
        yield BadLine(line_no, "event is not view, addtocart or transaction")
        return
    fields: dict[str, Any] = {"event_id": event_id("retailrocket", *row), "user_id": visitor,
                              "item_id": item, "ts": int(ts)}
    action = _RR_EVENTS[kind]
    if action is not None:
        fields["action"] = action
    yield _validated(line_no, t.CLICKS if action else t.VIEWS, fields, limits, now)


_PARSERS = {"seq": _seq, "jsonl": _jsonl, "retailrocket": _retailrocket}
