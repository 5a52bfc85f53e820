"""`shopstream kafka up/down/status` as a person uses them: a second instance on its own
port and data directory, idempotent start, stop by pid."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shopstream.config import PROJECT_ROOT
from shopstream.localkafka import free_port, port_is_open


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shopstream.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)


def _java_brokers_for(run_dir: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"kafka.Kafka" in args and str(run_dir / "server.properties").encode() in args:
            pids.append(int(proc.name))
    return pids


def test_up_twice_leaves_one_broker_and_down_stops_it(tmp_path):
    port = free_port()
    run_dir = tmp_path / "broker"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPSTREAM_")}
    env.update({"SHOPSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
                "SHOPSTREAM_KAFKA_DATA_DIR": str(run_dir)})
    try:
        first = _cli(env, "kafka", "up")
        assert first.returncode == 0, first.stderr
        second = _cli(env, "kafka", "up")
        assert second.returncode == 0, second.stderr
        assert "reusing" in second.stderr
        pids = _java_brokers_for(run_dir)
        assert len(pids) == 1
        assert int((run_dir / "broker.pid").read_text()) == pids[0]
        status = _cli(env, "kafka", "status")
        assert f"running (pid {pids[0]}), answering" in status.stdout
        topics = _cli(env, "topics", "create")
        assert "catalog.items: created" in topics.stdout
        assert "catalog.items: exists" in _cli(env, "topics", "create").stdout
    finally:
        down = _cli(env, "kafka", "down")
    assert down.returncode == 0 and "stopped" in down.stdout
    assert _java_brokers_for(run_dir) == [] and not port_is_open("127.0.0.1", port)
