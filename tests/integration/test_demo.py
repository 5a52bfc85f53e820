"""`shopstream demo --duration` end to end on the session's broker: worker, live page,
replayed sessions, recommendations printed, everything it started stopped."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from inference.testing import build_version
from shopstream.config import PROJECT_ROOT
from shopstream.localkafka import free_port, port_is_open

BEAUTY = PROJECT_ROOT.parent / "shared" / "data" / "amazon-beauty.txt"


def test_demo_with_duration_prints_recommendations_and_stops(kafka, tmp_path):
    data = tmp_path / "beauty-head.txt"
    data.write_text("".join(BEAUTY.open().readlines()[:150]))
    models = tmp_path / "models"
    build_version(models, "demo-test", n_items=12101, dim=16, max_len=20, top_k=30)
    web_port, live_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPSTREAM_")}
    env.update({
        "SHOPSTREAM_KAFKA_BOOTSTRAP": kafka.kafka_bootstrap,
        "SHOPSTREAM_LOCAL_DIR": str(tmp_path / "local"),
        "SHOPSTREAM_MODEL_DIR": str(models), "SHOPSTREAM_EXPORT_DATA": str(data),
        "SHOPSTREAM_WEB_PORT": str(web_port), "SHOPSTREAM_LIVE_PORT": str(live_port),
    })
    if kafka.kafka_data_dir is not None:  # the session's own broker: reuse it, do not stop it
        env["SHOPSTREAM_KAFKA_DATA_DIR"] = str(kafka.kafka_data_dir)
    # the jars stay where the session's broker found them
    (tmp_path / "local" / "kafka").mkdir(parents=True)
    (tmp_path / "local" / "kafka" / "libs").symlink_to(PROJECT_ROOT / ".local/kafka/libs")
    result = subprocess.run(
        [sys.executable, "-m", "shopstream.cli", "demo", "--duration", "25", "--rate", "100"],
        env=env, capture_output=True, text=True, timeout=240, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "model: reusing demo-test" in out
    assert f"live page: http://127.0.0.1:{live_port}/" in out
    assert re.search(r"^  recs ", out, re.M)
    produced = re.search(r"(\d+) recommendations and (\d+) ad events in this run", out)
    assert produced and int(produced.group(1)) > 0
    # it stopped the worker and the live page, and left the shared broker running
    assert not port_is_open("127.0.0.1", web_port)
    assert not port_is_open("127.0.0.1", live_port)
    assert port_is_open("127.0.0.1", int(kafka.kafka_bootstrap.rsplit(":", 1)[1]))
