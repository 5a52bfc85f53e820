"""Running a stream worker: wait for the broker with back-off, then hand over to Faust."""

from __future__ import annotations

import gc
import logging
import sys
import time
from typing import Any

from tenacity import before_sleep_log, retry, retry_if_result, wait_exponential

from shopstream.config import Settings
from shopstream.localkafka import broker_answers
from shopstream.topics import create_changelogs, create_topics

log = logging.getLogger(__name__)


def wait_for_broker(settings: Settings) -> None:
    """Block until the broker answers, logging each failed try and backing off up to a cap."""
    if broker_answers(settings.kafka_bootstrap):
        return
    log.warning("Kafka at %s is not reachable; retrying with back-off (Ctrl-C to stop)",
                settings.kafka_bootstrap)
    retry(
        retry=retry_if_result(lambda ok: not ok),
        wait=wait_exponential(multiplier=0.5, max=settings.broker_retry_max_s),
        before_sleep=before_sleep_log(log, logging.WARNING),
    )(broker_answers)(settings.kafka_bootstrap)
    log.info("Kafka at %s answers", settings.kafka_bootstrap)


def tune_interpreter(settings: Settings) -> None:
    """The collector and thread switching, for a process that runs the worker (call it once
    the app and the model are loaded)."""
    # Events and outputs die by reference counting; what survives is users' state: ~20
    # tracked objects a user, and a worker keeps up to state_cache_size users. Generational
    # collection scans the survivors again and again, and everything stops while it does:
    # bench_worker saw young collections of 20-75 ms every few seconds and older ones of
    # ~400 ms once the worker held a few tens of thousands of users (each a p99 spike).
    # Freezing what each young collection left (out of every later scan) cut those to
    # 4-13 ms, three or four a second at 3,300 events/s (threshold 5,000): ~2% of the
    # loop's time, during which every event in flight waits. A trace of 81 such collections
    # in a latency run found they freed nothing at all (a drain's freed a few dozen objects
    # each: cycles in Faust's flow control and in cancelled waits). So by default
    # (gc_young_threshold=0) the worker runs no automatic collections: what dies in a
    # reference cycle waits for full_collection, every gc_full_collect_s, which the worker
    # needs anyway for what was frozen. A threshold above 0 brings back young collections,
    # with what each leaves frozen. Three alternating pairs of bench_worker at 3,300
    # events/s: p99 85, 105, 124 ms without young collections against 184, 138, 108 with
    # them, the worker 277-297 against 291-310 us of CPU an event. The price: a cycle's
    # memory waits for the full collection (a latency run, scraped every 0.5 s, left ~45
    # objects a second, most of them its closed HTTP connections). The model and start-up
    # objects are frozen first.
    gc.freeze()
    if settings.gc_young_threshold:
        gc.set_threshold(settings.gc_young_threshold, 10, 10)
        if freeze_survivors not in gc.callbacks:
            gc.callbacks.append(freeze_survivors)
        gc.enable()
    else:
        gc.disable()
        if not settings.gc_full_collect_s:
            log.warning("gc_young_threshold and gc_full_collect_s are both 0: memory held in "
                        "reference cycles is never freed")
    # Two threads run Python: the event loop and the scoring thread (between model runs),
    # three where Faust's Kafka client has a thread of its own (kafka_client_thread). The
    # loop is busy most of the time under load, so a scored batch (or a fetch's records,
    # from that thread) can wait up to the switch interval for the GIL before it moves on
    # to the loop. And the other way round: each time the loop lets go of the GIL (every
    # turn's select, a write to another thread's wake-up pipe, a numpy step over a few
    # hundred values) and another thread takes it, the loop waits up to the switch
    # interval to get it back. In six alternating pairs of bench_worker,
    # 0.2 ms drained at 0.48-0.53x of the consume-only agent against 0.41-0.44x with 1 ms;
    # at 3,300 events/s p99 69, 106, 65 ms against 118, 85, 176 (two pairs of 0.1 ms
    # against 0.2 did not tell them apart).
    sys.setswitchinterval(settings.gil_switch_ms / 1000)


def freeze_survivors(phase: str, info: dict[str, Any]) -> None:
    """A gc callback: once a collection is over, freeze what it left (see tune_interpreter)."""
    if phase == "stop":
        gc.freeze()


def full_collection() -> int:
    """Collect every generation, frozen objects included, then freeze the survivors again;
    returns the unreachable objects found (reference cycles that died after being frozen).
    It pauses the process in proportion to everything it holds (~0.5 s per million tracked
    objects here)."""
    gc.unfreeze()
    try:
        return gc.collect()
    finally:
        gc.freeze()


def run_worker(settings: Settings) -> int:
    import faust

    from streams.app import create_app

    wait_for_broker(settings)
    create_topics(settings)  # idempotent; source topics must exist with the table's partitions
    settings.worker_data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    create_changelogs(settings, {table.changelog_topic.get_topic_name(): table.partitions
                                 for table in app.tables.values()})
    tune_interpreter(settings)
    if settings.gc_full_collect_s:
        @app.timer(settings.gc_full_collect_s)
        async def collect_cycles() -> None:
            started = time.perf_counter()
            found = full_collection()
            log.info("full garbage collection: %d unreachable objects, %.0f ms", found,
                     (time.perf_counter() - started) * 1000)
    # web host/port/bind come from the app's settings (see streams.app.create_app)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    # Faust's terminal spinner sets the root logger to DEBUG (at warning level and above) so
    # that it turns on every record: every debug call in aiokafka and Faust then builds a
    # record, ~10% of the event loop in bench_worker. A service needs no spinner.
    worker.spinner = None
    worker.execute_from_commandline()  # returns through SystemExit when stopped
    return 0
