"""A real Apache Kafka broker for the session, started through the project's own code,
and a factory for `shopstream worker` processes pointed at it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shopstream.config import PROJECT_ROOT, Settings, load_settings
from shopstream.localkafka import LocalKafka, free_port, port_is_open
from shopstream.topics import create_topics

pytestmark = pytest.mark.integration


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings pointing at a running broker: the one named by
    SHOPSTREAM_TEST_KAFKA_BOOTSTRAP, or one started here on a free port and stopped after."""
    reuse = load_settings().test_kafka_bootstrap
    if reuse:
        settings = load_settings(kafka_bootstrap=reuse)
        create_topics(settings)
        yield settings
        return
    run_dir = tmp_path_factory.mktemp("kafka")
    settings = load_settings(
        kafka_bootstrap=f"127.0.0.1:{free_port()}",
        kafka_data_dir=run_dir,
        local_dir=PROJECT_ROOT / ".local",  # shares the cached jars
    )
    broker = LocalKafka(settings)
    broker.up()
    try:
        create_topics(settings)
        yield settings
    finally:
        broker.down()


@dataclass
class WorkerProcess:
    """A `shopstream worker` subprocess with its own app id, data dir and web port."""

    env: dict[str, str]
    data_dir: Path
    web_port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = field(default=0)

    def start(self, timeout: float = 90.0) -> WorkerProcess:
        self.starts += 1
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shopstream.cli", "worker"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT,
        )
        log.close()
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        """Ready when Faust reports it and the HTTP port answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log_tail()}")
            ready_lines = self.log_path.read_text(errors="replace").count("[^Worker]: Ready")
            if ready_lines >= self.starts and port_is_open("127.0.0.1", self.web_port):
                return
            time.sleep(0.3)
        raise TimeoutError(f"worker not ready in {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def wipe_tables(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)


@pytest.fixture
def worker_factory(kafka: Settings, tmp_path: Path) -> Iterator:
    """Make workers on the session broker; each test gets its own app id (consumer group and
    changelog topics), so tests do not see each other's state."""
    made: list[WorkerProcess] = []

    def make(**settings: str) -> WorkerProcess:
        app_id = f"t{uuid.uuid4().hex[:8]}"
        port = free_port()
        data_dir = tmp_path / f"worker-{len(made)}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPSTREAM_")}
        env.update({
            "SHOPSTREAM_KAFKA_BOOTSTRAP": kafka.kafka_bootstrap,
            "SHOPSTREAM_APP_ID": app_id,
            "SHOPSTREAM_WORKER_DATA_DIR": str(data_dir),
            "SHOPSTREAM_WEB_PORT": str(port),
            "SHOPSTREAM_LOG_LEVEL": "info",
            "SHOPSTREAM_MODEL_DIR": str(tmp_path / "no-models"),  # tests publish their own
            "PYTHONUNBUFFERED": "1",
        })
        env.update({f"SHOPSTREAM_{k.upper()}": v for k, v in settings.items()})
        worker = WorkerProcess(env, data_dir, port, tmp_path / f"worker-{len(made)}.log")
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.stop()


@pytest.fixture
def topic_namer() -> Iterator:
    """Unique topic names for tests that make their own topics."""
    yield lambda prefix: f"{prefix}-{uuid.uuid4().hex[:8]}"
