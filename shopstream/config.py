"""The one settings object: every service reads its configuration from here.

Values come from environment variables prefixed ``SHOPSTREAM_`` (for example
``SHOPSTREAM_KAFKA_BOOTSTRAP=127.0.0.1:9092``) or from a ``.env`` file in the working
directory. Nothing else in the project reads ``os.environ``.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    broker_retry_max_s: float = Field(
        30.0, gt=0, description="longest back-off between tries to reach the broker"
    )

    # --- export (model training and the registry) -------------------------------
    model_dir: Path = Field(
        PROJECT_ROOT / "models", description="model registry: a folder per version, CURRENT"
    )
    export_data: Path = Field(
        PROJECT_ROOT.parent / "shared" / "data" / "amazon-beauty.txt",
        description="training data `shopstream export train` reads when --data is not given",
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
    def faust_broker(self) -> str:
        return ";".join(f"kafka://{s}" for s in self.bootstrap_servers)


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; keyword arguments win over it."""
    return Settings(**overrides)  # type: ignore[arg-type]
