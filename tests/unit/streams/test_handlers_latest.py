"""Where a user's latest recommendation is kept (streams.handlers), with the worker's sink
over an in-memory table and a fake producer (no broker)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import faust
from faust.types import TP

from schemas import ViewEvent, encode
from shopstream.config import load_settings
from streams.handlers import EventHandlers, NoInference
from streams.kafka_intake import IntakeMessage, IntakeRecord
from streams.metrics import WorkerMetrics
from streams.sink import KafkaSink
from streams.state_codec import decode_state
from tests.unit.streams.test_sink import FakeProducer

VIEWS = TP("events.views", 0)


def view(n: int) -> IntakeRecord:
    event = ViewEvent(event_id=f"ann-{n}", user_id="ann", item_id=str(n), ts=1_764_000_000_000 + n)
    return IntakeRecord(IntakeMessage(VIEWS, n, b"ann"), encode(event))


def test_the_latest_recommendation_goes_into_the_users_state_as_it_is_now():
    # with no state cache every batch works on a copy read from the row: the recommendation
    # of an earlier batch must not write that batch's copy back over a later one's
    settings = load_settings(state_cache_size=0)
    table = faust.App("latest-test", store="memory://").Table(
        "user_state", partitions=1, key_type=str, value_type=bytes)
    sink = KafkaSink(FakeProducer(), defer_max=8, defer_age_s=60)  # type: ignore[arg-type]
    sink.add_table(table)
    tables = SimpleNamespace(user_state=table)
    handlers = EventHandlers(settings, tables, WorkerMetrics(), sink,  # type: ignore[arg-type]
                             NoInference())

    async def run() -> None:
        await handlers.on_interactions([view(1)])  # scored and published late, below
        await handlers.on_interactions([view(2)])

    asyncio.run(run())
    handlers.keep_latest("ann", b'{"trigger_event_id": "ann-1"}', view(1))
    row = decode_state(sink.get_row(table, "ann"), handlers.state_limits)
    assert row.events_total == 2
    assert row.latest == b'{"trigger_event_id": "ann-1"}'
