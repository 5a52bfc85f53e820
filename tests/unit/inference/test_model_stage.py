"""The inference stage's publishing rule (streams.recommend.ModelStage), with a tiny real
model and a sink that records what would go to Kafka."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from inference.registry import ModelRegistry
from inference.session import CPU
from schemas import ViewEvent
from shopstream import topics as t
from shopstream.config import load_settings
from streams.catalog import CatalogCache
from streams.handlers import Update
from streams.metrics import WorkerMetrics
from streams.recommend import ModelStage
from streams.state import StateLimits, UserState

NOW_MS = int(time.time() * 1000) - 60_000


class RecordingSink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []
        self.rows: dict[tuple[Any, str], bytes | None] = {}
        self.latest: dict[str, bytes] = {}

    def send(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        self.sent.append((topic, key, value))

    def put_row(self, table: Any, key: str, value: bytes | None, record: Any) -> None:
        self.rows[(table, key)] = value

    def defer_row(self, table: Any, key: str, value: bytes | Callable[[], bytes],
                  record: Any) -> None:
        # the row as the next flush would write it (a state row is made when written)
        self.rows[(table, key)] = value if isinstance(value, bytes) else value()

    def keep_latest(self, user_id: str, recommendation: bytes, record: Any) -> None:
        self.latest[user_id] = recommendation  # what EventHandlers keeps in the state row

    def get_row(self, table: Any, key: str, record: Any) -> bytes | None:
        return self.rows.get((table, key))

    def triggers(self) -> list[str]:
        return [orjson.loads(value)["trigger_event_id"] for topic, _, value in self.sent
                if topic == t.RECS and value is not None]


@pytest.fixture
def catalog():
    return CatalogCache()


@pytest.fixture
def stage(shared_registry, catalog):
    settings = load_settings(model_dir=shared_registry, campaigns_path=None)
    stage = ModelStage(settings, ModelRegistry(settings, providers=[CPU]), catalog,
                       WorkerMetrics())
    stage.sink = RecordingSink()  # type: ignore[assignment]
    stage.tables = SimpleNamespace(ad_caps="ad_caps")  # type: ignore[assignment]
    stage.keep_latest = stage.sink.keep_latest  # type: ignore[attr-defined]
    yield stage
    asyncio.run(stage.batcher.aclose())


def updates(users: list[str], n: int, states: dict[str, UserState]) -> list[Update]:
    """The ``n``-th view of each user, applied to their state."""
    out = []
    for user in users:
        event = ViewEvent(event_id=f"{user}-{n}", user_id=user, item_id=str(n % 50 + 1),
                          ts=NOW_MS + n)
        state = states.setdefault(user, UserState(StateLimits()))
        state.apply_event(event)
        out.append(Update(record=SimpleNamespace(), event=event, state=state))
    return out


def test_two_batches_in_flight_for_one_user_both_publish_in_order(stage):
    states: dict[str, UserState] = {}
    first, second = updates(["ann", "bob"], 1, states), updates(["ann"], 2, states)

    async def run() -> None:
        # the second batch is submitted before the first one's results are back
        await asyncio.gather(stage.on_updates(first), stage.on_updates(second))

    asyncio.run(run())
    assert stage.sink.triggers() == ["ann-1", "bob-1", "ann-2"]
    latest = orjson.loads(stage.sink.latest["ann"])
    assert latest["trigger_event_id"] == "ann-2"  # the newest is kept
    assert stage._flights == {}


def test_a_batch_sends_its_oldest_events_first_and_keeps_rows_after_sending(stage):
    states: dict[str, UserState] = {}
    # a batch's records come partition by partition, so not in time order
    batch = (updates(["ann"], 3, states) + updates(["bob"], 1, states)
             + updates(["cy"], 2, states))
    sent_when_kept: list[int] = []
    keep = stage.keep_latest

    def keep_latest(user_id: str, recommendation: bytes, record: Any) -> None:
        sent_when_kept.append(len(stage.sink.sent))
        keep(user_id, recommendation, record)

    stage.keep_latest = keep_latest
    asyncio.run(stage.on_updates(batch))
    assert stage.sink.triggers() == ["bob-1", "cy-2", "ann-3"]
    assert sent_when_kept == [3, 3, 3]
    assert {user: orjson.loads(rec)["trigger_event_id"]
            for user, rec in stage.sink.latest.items()} == {"ann": "ann-3", "bob": "bob-1",
                                                             "cy": "cy-2"}


def test_a_user_erased_while_scored_gets_no_recommendation(stage):
    states: dict[str, UserState] = {}
    batch = updates(["ann", "bob"], 1, states)

    async def erase_ann() -> None:
        stage.forget("ann", SimpleNamespace())

    async def run() -> None:
        await asyncio.gather(stage.on_updates(batch), erase_ann())

    asyncio.run(run())
    assert stage.sink.triggers() == ["bob-1"]


def test_a_failed_batch_leaves_no_user_in_flight(stage, monkeypatch):
    states: dict[str, UserState] = {}

    def broken(prepared: Any) -> Any:
        raise RuntimeError("the model broke")

    monkeypatch.setattr(stage.batcher, "_score", broken)
    with pytest.raises(RuntimeError, match="the model broke"):
        asyncio.run(stage.on_updates(updates(["ann", "bob"], 1, states)))
    assert stage._flights == {}
    assert stage.sink.sent == []


def test_items_the_catalog_puts_out_of_stock_are_shown_no_more(stage, catalog):
    states: dict[str, UserState] = {}

    def shown() -> list[str]:
        *_, (_, _, value) = stage.sink.sent
        return [item["item_id"] for item in orjson.loads(value)["items"]]

    async def run() -> list[str]:
        # one event loop: the batcher's scoring thread hands results to the loop it
        # started on
        await stage.on_updates(updates(["ann"], 1, states))
        gone = shown()[:3]
        for item in gone:
            catalog.put(item, orjson.dumps({"item_id": item, "in_stock": False}))
        await stage.on_updates(updates(["ann"], 2, states))
        return gone

    gone = asyncio.run(run())
    assert len(shown()) == stage.settings.top_k and not set(gone) & set(shown())
