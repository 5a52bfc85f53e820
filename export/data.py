"""Reading interaction logs into per-user, time-ordered event lists.

Three formats: the sequence text of shared/data (``user item item ...``), JSONL event logs,
and RetailRocket-style CSV. Every loader returns the same ``Interactions``; anything that
cannot be used raises ``DataError`` with one line saying what and where.
"""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

EVENT_CODES = {"pad": 0, "view": 1, "click": 2, "add_to_cart": 3, "purchase": 4}
FORMATS = ("seq", "jsonl", "retailrocket")

# RetailRocket's event names; a transaction is a purchase.
_RETAILROCKET_EVENTS = {"view": 1, "addtocart": 3, "transaction": 4}
# The sequence files come from product reviews, which follow a purchase.
_SEQ_EVENT = EVENT_CODES["purchase"]


class DataError(ValueError):
    """Input data that cannot be used; the message is one line meant for the user."""


@dataclass
class Interactions:
    """Per-user event lists in time order: ``users[uid] = [(item_id, event_code), ...]``."""

    users: dict[str, list[tuple[str, int]]]
    titles: dict[str, str] = field(default_factory=dict)
    fingerprint: str = ""

    @property
    def n_events(self) -> int:
        return sum(len(events) for events in self.users.values())


def fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load(path: str | Path, fmt: str = "seq", titles: str | Path | None = None) -> Interactions:
    """Read ``path`` in format ``fmt``; optional ``titles`` is JSONL ``{"item_id", "title"}``."""
    path = Path(path)
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    reader = {"seq": _read_seq, "jsonl": _read_jsonl, "retailrocket": _read_retailrocket}[fmt]
    try:
        data = reader(path)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file") from None
    if titles is not None:
        data.titles.update(_read_titles(Path(titles)))
    data.users = {u: _collapse_repeats(ev) for u, ev in data.users.items() if ev}
    if not data.users:
        raise DataError(f"{path}: no interactions found (empty dataset)")
    data.fingerprint = fingerprint(path)
    return data


def _collapse_repeats(events: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Merge back-to-back events on the same item into one, keeping the strongest code.

    Logs repeat views of one page many times; as next-item targets they teach nothing.
    """
    out: list[tuple[str, int]] = []
    for item, code in events:
        if out and out[-1][0] == item:
            out[-1] = (item, max(out[-1][1], code))
        else:
            out.append((item, code))
    return out


def _read_seq(path: Path) -> Interactions:
    users: dict[str, list[tuple[str, int]]] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            tokens = line.split()
            if not tokens:
                continue
            for tok in tokens:
                if not tok.isdigit():
                    raise DataError(f"{path}:{lineno}: expected integer ids, got {tok[:20]!r}")
            user, items = tokens[0], tokens[1:]
            for tok in items:
                if int(tok) <= 0:
                    raise DataError(f"{path}:{lineno}: item id {tok} out of range (ids are >= 1)")
            if user in users:
                raise DataError(f"{path}:{lineno}: user {user} appears twice")
            users[user] = [(str(int(tok)), _SEQ_EVENT) for tok in items]
    return Interactions(users=users)


def _event_code(record: dict[str, Any]) -> int | None:
    kind = record.get("event_type", record.get("type"))
    if kind is None and "topic" in record:
        kind = {"events.views": "view", "events.clicks": "click"}.get(record["topic"])
    if kind is None:
        # the schemas wire format itself: a ClickEvent has an action, a ViewEvent has none
        kind = "click" if "action" in record else "view"
    if kind == "click":
        kind = record.get("action", "click")
    return EVENT_CODES.get(kind) if isinstance(kind, str) and kind != "pad" else None


def _timestamp(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000
        except ValueError:
            return None
    return None


def _read_jsonl(path: Path) -> Interactions:
    """Events ``{"user_id", "item_id", "event_type"|"type"|"topic"?, "action"?, "ts"?}``.

    Lines in the schemas wire format (ViewEvent / ClickEvent, as `shopstream replay` reads
    them) load as they are: without a type, a record with an ``action`` is a click of that
    action and one without is a view.

    Records with an ``item_id`` and ``title`` but no ``user_id`` are catalog items. Without
    timestamps, file order is time order.
    """
    rows: dict[str, list[tuple[float, int, str, int]]] = defaultdict(list)
    titles: dict[str, str] = {}
    for lineno, rec in _json_objects(path):
        item = rec.get("item_id")
        if not isinstance(item, str) or not item:
            raise DataError(f"{path}:{lineno}: item_id must be a non-empty string")
        if "user_id" not in rec and isinstance(rec.get("title"), str):
            titles[item] = rec["title"]
            continue
        user = rec.get("user_id")
        if not isinstance(user, str) or not user:
            raise DataError(f"{path}:{lineno}: user_id must be a non-empty string")
        code = _event_code(rec)
        if code is None:
            raise DataError(f"{path}:{lineno}: unknown event type")
        ts = _timestamp(rec.get("ts", rec.get("timestamp")))
        rows[user].append((ts if ts is not None else float(lineno), lineno, item, code))
    users = {u: [(item, code) for _, _, item, code in sorted(r)] for u, r in rows.items()}
    return Interactions(users=users, titles=titles)


def _read_retailrocket(path: Path) -> Interactions:
    """CSV with a header naming timestamp, visitorid, event, itemid (other columns ignored)."""
    rows: dict[str, list[tuple[int, int, str, int]]] = defaultdict(list)
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        need = {"timestamp", "visitorid", "event", "itemid"}
        if reader.fieldnames is None or not need <= set(reader.fieldnames):
            raise DataError(f"{path}: expected a CSV header with {', '.join(sorted(need))}")
        for lineno, rec in enumerate(reader, 2):
            code = _RETAILROCKET_EVENTS.get(rec["event"] or "")
            ts, user, item = rec["timestamp"] or "", rec["visitorid"] or "", rec["itemid"] or ""
            if code is None or not ts.isdigit() or not user or not item:
                raise DataError(f"{path}:{lineno}: malformed row")
            rows[user].append((int(ts), lineno, item, code))
    users = {u: [(item, code) for _, _, item, code in sorted(r)] for u, r in rows.items()}
    return Interactions(users=users)


def _read_titles(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise DataError(f"titles file not found: {path}")
    titles: dict[str, str] = {}
    for lineno, rec in _json_objects(path):
        if not (isinstance(rec.get("item_id"), str) and isinstance(rec.get("title"), str)):
            raise DataError(f"{path}:{lineno}: expected {{\"item_id\": str, \"title\": str}}")
        titles[rec["item_id"]] = rec["title"]
    return titles


def _json_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; DataError names a line that is not
    a JSON object."""
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise DataError(f"{path}:{lineno}: not a JSON object") from None
            if not isinstance(rec, dict):
                raise DataError(f"{path}:{lineno}: not a JSON object")
            yield lineno, rec
