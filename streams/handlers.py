"""What the agents do with records: validate, dedupe, update tables, hand on.

Agents stay thin (see streams.app); everything here is ordinary async methods over
injected tables and a sink, so the flow reads top to bottom. Views and clicks come in
micro-batches (streams.intake): the batch's states are updated and their rows handed
to the sink without an await in between, then the batch goes to the inference stage. The
sink writes a state row once it has waited ``deferred_row_age_s``, or at the next flush, and
delivers what it queued before Faust commits the batch's offsets (streams.sink).
"""

from __future__ import annotations

import functools
import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from faust.types import EventT

from schemas import (
    CatalogItem,
    ClickEvent,
    DeadLetter,
    InvalidEvent,
    Limits,
    Reason,
    UserErasure,
    ViewEvent,
    decode,
    encode,
    now_ms,
)
from shopstream import topics as t
from shopstream.config import Settings
from streams.catalog import CatalogCache
from streams.metrics import WorkerMetrics
from streams.sink import KafkaSink
from streams.state import StateLimits, UserState
from streams.state_codec import decode_state, encode_state
from streams.tables import Tables

log = logging.getLogger(__name__)


class Update(NamedTuple):  # a tuple: one per user and batch
    """A user whose window changed in a batch, with the newest accepted event that did it."""

    record: EventT  # the Kafka record (its partition holds the user's rows)
    event: ViewEvent | ClickEvent
    state: UserState


class InferenceStage(Protocol):
    """Where the batch's updated users go next (the model plugs in here)."""

    async def on_updates(self, updates: Sequence[Update]) -> None: ...

    def forget(self, user_id: str, record: EventT) -> None: ...


class NoInference:
    """Publishes nothing: windows are kept and served over HTTP only."""

    async def on_updates(self, updates: Sequence[Update]) -> None:
        return None

    def forget(self, user_id: str, record: EventT) -> None:
        return None


class EventHandlers:
    def __init__(self, settings: Settings, tables: Tables, metrics: WorkerMetrics,
                 sink: KafkaSink, stage: InferenceStage,
                 catalog_cache: CatalogCache | None = None) -> None:
        self.settings = settings
        self.tables = tables
        self.metrics = metrics
        self.sink = sink
        self.stage = stage
        self.catalog_cache = CatalogCache() if catalog_cache is None else catalog_cache
        self.limits = Limits.from_settings(settings)
        self.state_limits = StateLimits.from_settings(settings)
        # Decoded states of recently active users, so an event costs one encode and no
        # decode. Only this worker writes a user's row while it owns the partition; the
        # cache is dropped whenever partitions move (see forget_cached_states).
        self._states: OrderedDict[str, UserState] = OrderedDict()
        self._cache_size = settings.state_cache_size

    # --- shared -----------------------------------------------------------------
    def _decode(self, event: EventT) -> object:
        msg = event.message
        decoded = decode(msg.topic, event.value, self.limits)
        user_id = getattr(decoded, "user_id", None)
        if user_id is not None and msg.key is not None and msg.key != user_id.encode():
            # it would sit on another partition than the user's rows and outputs
            raise InvalidEvent(Reason.KEY_MISMATCH, "the record key is not the event's user_id")
        return decoded

    def dead_letter(self, event: EventT, error: InvalidEvent) -> None:
        msg = event.message
        letter = DeadLetter.create(
            source_topic=msg.topic, source_partition=msg.partition, source_offset=msg.offset,
            error_class=type(error).__name__, reason=str(error.reason), detail=error.detail,
            raw=event.value, limit=self.settings.deadletter_raw_limit, dead_ts=now_ms(),
        )
        self.sink.send(t.DEADLETTER, msg.key, encode(letter))
        self.metrics.dead_letters.labels(reason=str(error.reason)).inc()
        self.metrics.count_out(t.DEADLETTER)
        log.warning("dead-lettered %s[%d]@%d: %s", msg.topic, msg.partition, msg.offset,
                    error.reason)

    def load_state(self, user_id: str, record: EventT | None = None) -> UserState | None:
        """The user's state; ``record`` (one of the user's events) points at the partition
        store to read, else every local store is searched."""
        state = self._states.get(user_id)
        if state is not None:
            self._states.move_to_end(user_id)
            return state
        raw = self.sink.get_row(self.tables.user_state, user_id, record)
        if raw is None:
            return None
        state = decode_state(raw, self.state_limits)
        self._remember(user_id, state)
        return state

    def _remember(self, user_id: str, state: UserState) -> None:
        if not self._cache_size:
            return
        self._states[user_id] = state
        self._states.move_to_end(user_id)
        if len(self._states) > self._cache_size:
            self._states.popitem(last=False)

    def _defer_state(self, user_id: str, state: UserState, record: EventT) -> None:
        """Have the sink write the user's state row later, encoded as the state is then (one
        write for all the changes meanwhile, the latest recommendation included)."""
        self.sink.defer_row(self.tables.user_state, user_id,
                            functools.partial(encode_state, state), record)

    def keep_latest(self, user_id: str, recommendation: bytes, record: EventT) -> None:
        """Keep the user's latest recommendation in their state row. The state as it is
        now, not as it was when the recommendation's batch was taken: with no state cache,
        that one is a copy that a later batch has since moved on from."""
        state = self.load_state(user_id, record)
        if state is None:  # erased meanwhile
            return
        state.latest = recommendation
        self._defer_state(user_id, state, record)

    def forget_cached_states(self) -> None:
        """After a rebalance another worker may have written our users' rows: re-read them."""
        self._states.clear()

    # --- per topic ----------------------------------------------------------------
    def _accept(self, event: EventT) -> object | None:
        """The decoded event, or None after dead-lettering a record that is not valid."""
        self.metrics.count_in(event.message.topic)
        try:
            return self._decode(event)
        except InvalidEvent as exc:
            self.dead_letter(event, exc)
            return None

    async def on_interactions(self, records: Sequence[EventT]) -> None:
        """One micro-batch of views and clicks, in partition order per user."""
        updates: dict[str, Update] = {}
        for record in records:
            decoded = self._accept(record)
            if decoded is None:
                continue
            assert isinstance(decoded, ViewEvent | ClickEvent)
            user = decoded.user_id
            state = self.load_state(user, record)
            if state is None:
                state = UserState(self.state_limits)
                self._remember(user, state)
            if not state.apply_event(decoded):
                self.metrics.duplicates.inc()
                continue
            newest = updates.get(user)
            if newest is None or (decoded.ts, decoded.event_id) >= (newest.event.ts,
                                                                   newest.event.event_id):
                updates[user] = Update(record, decoded, state)
        # One row per user, deferred before any await (the next batch, another actor's, may
        # read it), filed under the newest event's partition and written as the state is
        # then (streams.sink): once for all of the user's events while it waits.
        for user, update in updates.items():
            self._defer_state(user, update.state, update.record)
        if updates:
            await self.stage.on_updates(list(updates.values()))
        self.sink.poll()

    async def on_catalog(self, event: EventT) -> None:
        key = event.message.key
        if event.value is None and key:  # a tombstone: the item left the catalog
            self.metrics.count_in(t.CATALOG)
            item_id = key.decode("utf-8", errors="replace")
            self.tables.catalog.pop(item_id, None)
            self.catalog_cache.put(item_id, None)
            return
        item = self._accept(event)
        if item is None:
            return
        assert isinstance(item, CatalogItem)
        raw = encode(item)
        self.tables.catalog[item.item_id] = raw
        self.catalog_cache.put(item.item_id, raw)

    async def on_erasure(self, event: EventT) -> None:
        request = self._accept(event)
        if request is None:
            return
        assert isinstance(request, UserErasure)
        self.stage.forget(request.user_id, event)
        self._states.pop(request.user_id, None)
        for table in self.tables.user_tables():  # tombstones reach the changelogs
            self.sink.put_row(table, request.user_id, None, event)
        log.info("erased a user on partition %d", event.message.partition)
