"""The inference stage: every accepted event leads to a fresh recommendation for its user,
and to ad-targeting events where a campaign fits and its frequency cap allows.

The interactions agent hands over each micro-batch's updated users (one row per user: the
newest event of the batch is the trigger); they are submitted to the micro-batcher as one
batch, closed at once (the agent already gathered it) and scored in one inference. Rows
(latest recommendation, ad caps) are written under the triggering event, so they land in
that user's partition.

When two batches in flight hold the same user, both publish, in the order they were
submitted: each was scored on the user's state as it was then, and the later one on the
newer state. A result is dropped only when a later one of the same user was published
first, so a user's recommendations never go back to an older state, or when the user was
erased meanwhile. (Until 2026-11-29 only the newest event in flight published. Under a
backlog, where the next batch always holds the user's next event before the last batch's
results are back, that suppressed most recommendations of active users: 85% of them were
published while bench_worker drained batches of 256, 11% with batches of 512.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from faust.types import EventT

from inference.ads import decide, load_campaigns
from inference.batcher import MicroBatcher
from inference.engine import Prepared, Recommender, UserRequest, UserResult
from inference.freqcap import decode as decode_caps
from inference.freqcap import encode as encode_caps
from inference.popularity import DecayedPopularity
from inference.postfilter import FilterRules
from inference.registry import ModelRegistry, RegistryWatcher
from schemas import (
    AdTargeting,
    Recommendation,
    encode,
    now_ms,
)
from shopstream import topics as t
from shopstream.config import Settings
from streams.catalog import CatalogCache
from streams.handlers import Update
from streams.metrics import WorkerMetrics
from streams.sink import KafkaSink
from streams.tables import Tables

log = logging.getLogger(__name__)


def cap_key(user_id: str, campaign_id: str) -> str:
    return f"{user_id}\x1f{campaign_id}"


class _Flight:
    """A user's requests waiting for results, and the newest of theirs published so far."""

    __slots__ = ("waiting", "published")

    def __init__(self) -> None:
        self.waiting = 0
        self.published = -1  # submission number of the newest result published


class ModelStage:
    def __init__(self, settings: Settings, registry: ModelRegistry, catalog: CatalogCache,
                 metrics: WorkerMetrics) -> None:
        self.settings = settings
        self.registry = registry
        self.metrics = metrics
        self.campaigns = {c.campaign_id: c for c in (
            load_campaigns(settings.campaigns_path) if settings.campaigns_path else [])}
        self.popularity = DecayedPopularity(settings.popularity_half_life_s,
                                            settings.popularity_capacity)
        self.recommender = Recommender(registry, self.popularity,
                                       FilterRules.from_settings(settings),
                                       catalog=catalog.lookup,
                                       campaigns=list(self.campaigns.values()),
                                       catalog_changes=catalog.take_changes)
        # the scoring thread runs array work only; inputs and picks are Python, on the loop
        self.batcher: MicroBatcher[UserRequest, UserResult] = MicroBatcher(
            self.recommender.infer, settings.max_batch_size, settings.max_wait_ms / 1000,
            prepare=self.recommender.prepare, finish=self._finish)
        self.watcher = RegistryWatcher(registry, settings.model_poll_s)
        # users with requests in flight; forget() drops a user's entry, which drops the
        # results still on their way. Requests are numbered in the order they are submitted.
        self._flights: dict[str, _Flight] = {}
        self._submitted = 0
        self.tables: Tables | None = None
        self.sink: KafkaSink | None = None
        # keeps a user's latest recommendation in their state row (EventHandlers.keep_latest)
        self.keep_latest: Callable[[str, bytes, EventT], None] | None = None

    def bind(self, tables: Tables, sink: KafkaSink,
             keep_latest: Callable[[str, bytes, EventT], None]) -> None:
        self.tables, self.sink, self.keep_latest = tables, sink, keep_latest
        self.watcher.start()
        log.info("serving model %s; %d ad campaigns", self.registry.current.version,
                 len(self.campaigns))

    def _finish(self, prepared: Prepared) -> list[UserResult]:
        self.metrics.batch_size.observe(prepared.size)
        return self.recommender.finish(prepared)

    async def on_updates(self, updates: Sequence[Update]) -> None:
        requests, mine = [], []
        self.popularity.add_many((u.event.item_id, u.event.ts / 1000) for u in updates)
        first = self._submitted
        self._submitted += len(updates)
        for update in updates:
            event, state = update.event, update.state
            flight = self._flights.get(event.user_id)
            if flight is None:
                flight = self._flights[event.user_id] = _Flight()
            flight.waiting += 1
            mine.append(flight)
            requests.append((event.user_id,
                             UserRequest(window=tuple(state.window),
                                         bought=frozenset(state.bought))))
        results = self.batcher.submit_many(requests)
        self.batcher.flush()  # the batch is already gathered: no second wait
        try:
            scored = await results
        except BaseException:
            for update, flight in zip(updates, mine, strict=True):
                self._land(update.event.user_id, flight)
            raise
        kept: list[tuple[Update, bytes]] = []
        # The oldest events' recommendations go out first (each is stamped as it is sent):
        # a batch's records come partition by partition, not in time order. Their rows are
        # kept once every record is out.
        for i in sorted(range(len(updates)), key=lambda i: updates[i].event.ts):
            update, flight, number = updates[i], mine[i], first + i
            # not when the user was erased meanwhile, nor after a later result of theirs
            if self._land(update.event.user_id, flight) and number > flight.published:
                flight.published = number
                kept.append((update, self._publish(update, scored[i])))
        assert self.keep_latest is not None
        for update, raw in kept:
            # kept in the user's state row, deferred (streams.sink): written once for the
            # events and recommendations that come while it waits
            self.keep_latest(update.event.user_id, raw, update.record)

    def _land(self, user_id: str, flight: _Flight) -> bool:
        """One of the user's requests is back: False if the user was erased meanwhile."""
        flight.waiting -= 1
        if self._flights.get(user_id) is not flight:
            return False
        if not flight.waiting:
            del self._flights[user_id]
        return True

    def forget(self, user_id: str, record: EventT) -> None:
        self._flights.pop(user_id, None)
        assert self.tables is not None and self.sink is not None
        for campaign_id in self.campaigns:
            self.sink.put_row(self.tables.ad_caps, cap_key(user_id, campaign_id), None, record)

    def _publish(self, update: Update, result: UserResult) -> bytes:
        """Send the user's recommendation (and ad events); return the recommendation."""
        assert self.sink is not None
        event, record = update.event, update.record
        emitted = now_ms()
        raw = Recommendation.wire(
            user_id=event.user_id, model_version=result.model_version, variant=result.variant,
            items=result.items,
            trigger_event_id=event.event_id, event_ts=event.ts, emitted_ts=emitted)
        key = event.user_id.encode()
        self.sink.send(t.RECS, key, raw)
        self.metrics.count_out(t.RECS)
        self.metrics.latency.observe(max(0, emitted - event.ts) / 1000)
        for ad in result.ads:
            allowed = self._cap(cap_key(event.user_id, ad.campaign_id), ad.campaign_id,
                                ad.score, emitted, record)
            if not allowed:
                continue
            target = AdTargeting.create(
                user_id=event.user_id, campaign_id=ad.campaign_id, score=ad.score,
                segment=ad.segment, model_version=result.model_version,
                trigger_event_id=event.event_id, event_ts=event.ts, emitted_ts=emitted)
            self.sink.send(t.ADS, key, encode(target))
            self.metrics.count_out(t.ADS)
        return raw

    def _cap(self, key: str, campaign_id: str, score: float, now: int,
             record: EventT) -> bool:
        assert self.tables is not None and self.sink is not None
        history = decode_caps(self.sink.get_row(self.tables.ad_caps, key, record))
        allowed, history = decide(self.campaigns[campaign_id], score, history, now)
        if allowed:
            self.sink.put_row(self.tables.ad_caps, key, encode_caps(history), record)
        return allowed
