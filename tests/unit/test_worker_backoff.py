"""A worker started with no reachable broker says so and keeps retrying with back-off."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from shopstream.config import PROJECT_ROOT
from shopstream.localkafka import free_port


def test_worker_without_broker_logs_once_and_retries(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPSTREAM_")}
    env.update({"SHOPSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
                "SHOPSTREAM_WORKER_DATA_DIR": str(tmp_path / "w"),
                "SHOPSTREAM_BROKER_RETRY_MAX_S": "1"})
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        # Ctrl-C reaches it even when the tests run in a background job, which starts
        # with SIGINT ignored (and Python then never installs its handler)
        proc = subprocess.Popen([sys.executable, "-m", "shopstream.cli", "worker"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        time.sleep(6)
        assert proc.poll() is None  # still trying, not crashed
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    text = log.read_text()
    assert text.count("is not reachable; retrying with back-off") == 1
    assert text.count("Retrying") >= 3
    assert "Traceback" not in text
