"""The inference stage: every accepted event leads to a fresh recommendation for its user,
and to ad-targeting events where a campaign fits and its frequency cap allows.

The interactions agent hands over each micro-batch's updated users (one row per user: the
newest event of the batch is the trigger); they are submitted to the micro-batcher as one
batch, closed at once (the agent already gathered it) and scored in one inference. Rows
(latest recommendation, ad caps) are written under the triggering event, so they land in
that user's partition. When two batches in flight hold the same user, only the newest
event publishes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

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
                                       campaigns=list(self.campaigns.values()))
        # the scoring thread runs the graphs only; inputs and filters are Python, on the loop
        self.batcher: MicroBatcher[UserRequest, UserResult] = MicroBatcher(
            self.recommender.infer, settings.max_batch_size, settings.max_wait_ms / 1000,
            prepare=self.recommender.prepare, finish=self._finish)
        self.watcher = RegistryWatcher(registry, settings.model_poll_s)
        # user -> (ts, event id) of the newest event waiting for a result. Concurrent actors
        # can take a user's events out of order, so "newest" is by timestamp.
        self._newest: dict[str, tuple[int, str]] = {}
        self.tables: Tables | None = None
        self.sink: KafkaSink | None = None

    def bind(self, tables: Tables, sink: KafkaSink) -> None:
        self.tables, self.sink = tables, sink
        self.watcher.start()
        log.info("serving model %s; %d ad campaigns", self.registry.current.version,
                 len(self.campaigns))

    def _finish(self, prepared: Prepared) -> list[UserResult]:
        self.metrics.batch_size.observe(prepared.size)
        return self.recommender.finish(prepared)

    async def on_updates(self, updates: Sequence[Update]) -> None:
        requests, mine = [], []
        self.popularity.add_many((u.event.item_id, u.event.ts / 1000) for u in updates)
        for update in updates:
            event, state = update.event, update.state
            key = (event.ts, event.event_id)
            if key >= self._newest.get(event.user_id, key):
                self._newest[event.user_id] = key
            mine.append(key)
            requests.append((event.user_id,
                             UserRequest(window=tuple(state.window),
                                         bought=frozenset(state.bought))))
        results = self.batcher.submit_many(requests)
        self.batcher.flush()  # the batch is already gathered: no second wait
        for update, key, result in zip(updates, mine, await results, strict=True):
            user = update.event.user_id
            if self._newest.get(user) != key:
                continue  # a newer event of this user publishes, or the user was erased
            del self._newest[user]
            self._publish(update, result)

    def forget(self, user_id: str, record: EventT) -> None:
        self._newest.pop(user_id, None)
        assert self.tables is not None and self.sink is not None
        for campaign_id in self.campaigns:
            self.sink.put_row(self.tables.ad_caps, cap_key(user_id, campaign_id), None, record)

    def _publish(self, update: Update, result: UserResult) -> None:
        assert self.tables is not None and self.sink is not None
        event, record = update.event, update.record
        emitted = now_ms()
        raw = Recommendation.wire(
            user_id=event.user_id, model_version=result.model_version, variant=result.variant,
            items=[(p.item_id, float(p.score), p.reason) for p in result.items],
            trigger_event_id=event.event_id, event_ts=event.ts, emitted_ts=emitted)
        key = event.user_id.encode()
        self.sink.put_row(self.tables.last_recs, event.user_id, raw, record)
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

    def _cap(self, key: str, campaign_id: str, score: float, now: int,
             record: EventT) -> bool:
        assert self.tables is not None and self.sink is not None
        history = decode_caps(self.sink.get_row(self.tables.ad_caps, key, record))
        allowed, history = decide(self.campaigns[campaign_id], score, history, now)
        if allowed:
            self.sink.put_row(self.tables.ad_caps, key, encode_caps(history), record)
        return allowed
