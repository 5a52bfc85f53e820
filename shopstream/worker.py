"""Running a stream worker: wait for the broker with back-off, then hand over to Faust."""

from __future__ import annotations

import gc
import logging
import sys

from tenacity import before_sleep_log, retry, retry_if_result, wait_exponential

from shopstream.config import Settings
from shopstream.localkafka import broker_answers
from shopstream.topics import create_changelogs, create_topics

GC_GEN0_THRESHOLD = 50_000  # net allocations between young collections (CPython: 700)

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
    # The model and start-up objects live for the whole run: keep them out of the garbage
    # collector's generations, whose scans otherwise pause the event loop (measured ~2x).
    gc.freeze()
    # Events and outputs die by reference counting; what survives is users' state (tens of
    # thousands of small objects). With the default thresholds a full collection ran every
    # 1-2 s under load and paused everything for 20-50 ms, a share of the latency tail;
    # with a higher first threshold, bench_worker's whole run saw one young collection.
    gc.set_threshold(GC_GEN0_THRESHOLD, 10, 10)
    # Three threads run Python: the event loop, Faust's Kafka consumer and the scoring
    # thread (between model runs). The loop is busy most of the time under load, so a
    # fetch's records, or a scored batch, can wait up to the switch interval for the GIL
    # before they move on to the loop.
    sys.setswitchinterval(settings.gil_switch_ms / 1000)


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
    # web host/port/bind come from the app's settings (see streams.app.create_app)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    # Faust's terminal spinner sets the root logger to DEBUG (at warning level and above) so
    # that it turns on every record: every debug call in aiokafka and Faust then builds a
    # record, ~10% of the event loop in bench_worker. A service needs no spinner.
    worker.spinner = None
    worker.execute_from_commandline()  # returns through SystemExit when stopped
    return 0
