"""The one settings object: every service reads its configuration from here.

Values come from environment variables prefixed ``SHOPSTREAM_`` (for example
``SHOPSTREAM_KAFKA_BOOTSTRAP=127.0.0.1:9092``) or from a ``.env`` file in the working
directory. Nothing else in the project reads ``os.environ``.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SHOPSTREAM_", env_file=".env", extra="ignore", frozen=True
    )

    # --- Kafka -----------------------------------------------------------------
    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="host:port of the Kafka broker(s), comma separated"
    )
    local_dir: Path = Field(
        PROJECT_ROOT / ".local",
        description="where the local broker's jars, data and logs live",
    )
    kafka_data_dir: Path | None = Field(
        None, description="the local broker's data directory (default: under local_dir, per port)"
    )
    kafka_heap: str = Field("512m", description="heap size of the local broker's JVM")
    kafka_jvm_opts: str = Field(
        "-XX:TieredStopAtLevel=1",
        description="extra JVM options of the local broker (default: the quick JIT only, "
        "whose compiling costs little next to the worker on a small machine)",
    )
    kafka_start_timeout_s: float = Field(60.0, gt=0)

    # --- topics ----------------------------------------------------------------
    topic_partitions: int = Field(4, ge=1, description="partitions of each per-user topic")
    topic_replication: int = Field(1, ge=1)
    event_retention_ms: int = Field(
        7 * 24 * 3600 * 1000, description="retention of event and output topics"
    )
    deadletter_retention_ms: int = Field(30 * 24 * 3600 * 1000)

    # --- worker ----------------------------------------------------------------
    app_id: str = Field("shopstream", description="Faust app id: consumer group and table prefix")
    worker_data_dir: Path = Field(
        PROJECT_ROOT / ".local" / "worker", description="RocksDB tables of this worker"
    )
    web_host: str = Field("127.0.0.1", description="bind address of the worker's HTTP server")
    web_port: int = Field(6066, ge=1, le=65535)
    log_level: str = Field("info")
    consumer_offset_reset: Literal["earliest", "latest"] = Field(
        "earliest", description="where a new consumer group starts reading the input topics"
    )
    agent_concurrency: int = Field(
        2, ge=1, le=64,
        description="actors taking micro-batches of views and clicks (one scores, one reads)",
    )
    intake: Literal["librdkafka", "faust"] = Field(
        "librdkafka",
        description="what reads views and clicks: a librdkafka consumer thread beside Faust "
        "(streams.kafka_intake), or Faust's own consumer as every other topic is read",
    )
    kafka_client_thread: bool = Field(
        False,
        description="run Faust's Kafka client in a thread of its own, as Faust does, instead "
        "of on the worker's event loop (see streams.consumer.client_on_loop)",
    )
    producer_linger_ms: float = Field(
        2.0, ge=0, description="how long the worker gathers output records per request"
    )
    changelog_linger_ms: float = Field(
        100.0, ge=0,
        description="how long the worker gathers table changelog records per request",
    )
    commit_interval_s: float = Field(
        2.8, gt=0,
        description="how often the worker commits its input offsets; each commit first waits "
        "up to deferred_row_age_s for the rows deferred before it to be written (Faust's "
        "default; Kafka Streams' is 30)",
    )
    fetch_max_wait_ms: int = Field(
        10, ge=1, le=60_000,
        description="longest the broker holds the worker's fetch to gather fetch_min_bytes",
    )
    faust_fetch_max_wait_ms: int = Field(
        250, ge=1, le=60_000,
        description="the same for Faust's own Kafka client where librdkafka reads views and "
        "clicks (intake): it then reads only the catalog, erasures and standby changelogs, "
        "so it need not ask every few ms",
    )
    fetch_min_bytes: int = Field(
        32 * 1024, ge=1, le=64 * 1024 * 1024,
        description="data the broker gathers for the worker's fetch before it answers",
    )
    gil_switch_ms: float = Field(
        0.2, gt=0, le=100,
        description="how long a worker thread keeps the GIL while another waits for it "
        "(Python's default: 5)",
    )
    gc_young_threshold: int = Field(
        0, ge=0,
        description="net allocations between the worker's young garbage collections, what each "
        "leaves frozen; 0: none, reference cycles wait for the full collection (see "
        "shopstream.worker; CPython's default is 700)",
    )
    gc_full_collect_s: float = Field(
        3600.0, ge=0,
        description="how often the worker collects garbage in full, finding the reference "
        "cycles no young collection freed (0: never; it pauses the worker ~0.5 s per million "
        "objects)",
    )
    producer_buffer_messages: int = Field(
        10_000, ge=1, description="catalog-table writes Faust buffers before the stream waits"
    )
    broker_retry_max_s: float = Field(
        30.0, gt=0, description="longest back-off between tries to reach the broker"
    )

    # --- events and per-user state (schemas/, streams/state) ---------------------
    max_event_bytes: int = Field(
        65_536, ge=256, description="input records larger than this are dead-lettered"
    )
    max_json_depth: int = Field(8, ge=1, description="deepest array/object nesting accepted")
    window_size: int = Field(50, ge=1, le=10_000, description="interactions kept per user")
    dedupe_memory: int = Field(
        64, ge=1, le=10_000, description="recent event ids remembered per user to drop repeats"
    )
    bought_memory: int = Field(100, ge=0, le=10_000, description="bought items kept per user")
    session_idle_ms: int = Field(
        30 * 60 * 1000, ge=1, description="idle gap after which a new session starts"
    )
    state_cache_size: int = Field(
        100_000, ge=0, description="decoded user states kept in memory per worker (0: none)"
    )
    deferred_rows: int = Field(
        4096, ge=0, description="user state rows (with the latest recommendation in each) that "
        "wait up to deferred_row_age_s to be written, once however many events changed them "
        "meanwhile (0: written at once; see streams.sink)"
    )
    deferred_row_age_s: float = Field(
        2.0, gt=0, le=60,
        description="how long a deferred row waits to be written; each commit first waits up "
        "to this long for the rows deferred before it (streams.sink)"
    )
    deadletter_raw_limit: int = Field(
        4096, ge=0, description="bytes of a rejected record copied into its dead letter"
    )

    # --- inference (issue #5) -----------------------------------------------------
    model_dir: Path = Field(PROJECT_ROOT / "models", description="the model registry directory")
    model_poll_s: float = Field(
        1.0, gt=0, description="how often workers look at the registry's CURRENT pointer"
    )
    model_variant: Literal["auto", "fp32", "fp16", "int8"] = Field(
        "auto", description="graph variant to load; auto: fp16 on CUDA, int8 on CPU (fp32 where "
        "the version has no such variant)"
    )
    ab_version: str | None = Field(
        None, description="a second model version served to a share of users (A/B test)"
    )
    ab_share: float = Field(0.0, ge=0.0, le=1.0, description="share of users given ab_version")
    max_batch_size: int = Field(
        256, ge=1, description="most events taken, and users scored, in one micro-batch "
        "(a backlog drains in batches this large; live traffic fills them a fetch at a time)")
    max_wait_ms: float = Field(
        0.1, gt=0.0, description="longest an event waits for its batch (records come a fetch "
        "at a time, so waiting longer rarely gathers more; see streams.intake)")
    top_k: int = Field(10, ge=1, description="items per recommendation")
    exclude_viewed: bool = Field(False, description="also exclude items in the user's window")
    excluded_categories: Annotated[frozenset[str], NoDecode] = Field(
        frozenset(), description="catalog categories never recommended (comma separated)"
    )
    diversity_cap: int = Field(3, ge=0, description="most items per category (0: no cap)")
    campaigns_path: Path | None = Field(None, description="JSON file of ad campaigns")
    popularity_half_life_s: float = Field(
        3600.0, gt=0, description="half-life of the streaming popularity counts"
    )
    popularity_capacity: int = Field(10_000, ge=1, description="items the popularity table keeps")
    ort_threads: int = Field(
        1, ge=0, description="ONNX Runtime intra-op threads (0: one per physical core; 1 keeps "
        "scoring to one core, the cheapest in CPU per user at every batch size measured)"
    )

    # --- live page (issue #6) ------------------------------------------------------
    live_host: str = Field("127.0.0.1", description="bind address of `shopstream live`")
    live_port: int = Field(6080, ge=1, le=65535, description="port of the live page")
    worker_url: str | None = Field(
        None, description="the worker's HTTP base URL (default: http://web_host:web_port)"
    )
    live_queue_size: int = Field(
        100, ge=1, le=100_000, description="events buffered per browser; the oldest drop first"
    )
    live_scrape_s: float = Field(2.0, gt=0, description="how often the worker's metrics are read")

    @field_validator("excluded_categories", mode="before")
    @classmethod
    def _split_categories(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(part.strip() for part in value.split(",") if part.strip())
        return value

    # --- replay (issue #6) ----------------------------------------------------------
    replay_delivery_timeout_s: float = Field(
        60.0, gt=0, description="how long replay waits for the broker to take a record"
    )

    # --- export (model training) ---------------------------------------------------
    export_data: Path = Field(
        PROJECT_ROOT.parent / "shared" / "data" / "amazon-beauty.txt",
        description="training data `shopstream export train` reads when --data is not given",
    )

    # --- tests -----------------------------------------------------------------
    test_kafka_bootstrap: str | None = Field(
        None, description="tests reuse this broker instead of starting their own"
    )

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_has_port(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port, got {server!r}")
        return value

    @cached_property
    def bootstrap_servers(self) -> list[str]:
        return [s.strip() for s in self.kafka_bootstrap.split(",")]

    @property
    def worker_base_url(self) -> str:
        """Where the live page reaches the worker; a wildcard bind is reached on loopback."""
        if self.worker_url:
            return self.worker_url.rstrip("/")
        host = "127.0.0.1" if self.web_host in ("0.0.0.0", "::", "") else self.web_host
        return f"http://{host}:{self.web_port}"

    @property
    def faust_broker(self) -> str:
        return ";".join(f"kafka://{s}" for s in self.bootstrap_servers)


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; keyword arguments win over it."""
    return Settings(**overrides)  # type: ignore[arg-type]
