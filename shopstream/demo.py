"""``shopstream demo``: the main job end to end on the embedded default.

Starts (or reuses) the local broker, creates the topics, trains a quick model when the
registry has none (``make export`` trains the full one), starts a worker and the live page,
replays the Beauty sessions with a generated catalog at a steady rate, and prints live
recommendations and ad events for a few shoppers. Stops what it started on Ctrl-C or after
``--duration`` seconds.

Each run gets a fresh worker state (its own app id, starting at the topics' ends), so
replaying the same sessions again shows recommendations again instead of being dropped
as repeats; the run's changelog topics are deleted at the end.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson

from shopstream import topics as t
from shopstream.config import Settings
from shopstream.kafkaio import make_consumer
from shopstream.localkafka import LocalKafka, free_port, port_is_open
from shopstream.topics import create_topics

WATCHED = 3  # shoppers whose every recommendation is printed


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({f"SHOPSTREAM_{k.upper()}": v for k, v in extra.items()})
    env["SHOPSTREAM_KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap
    return env


def _spawn(name: str, args: list[str], env: dict[str, str], log: Path,
           port: int) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "shopstream.cli", *args], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not port_is_open("127.0.0.1", port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"the {name} did not start; see {log}")
        time.sleep(0.3)
    return proc


def ensure_model(settings: Settings, minutes: float) -> None:
    if (settings.model_dir / "CURRENT").exists():
        print(f"model: reusing {(settings.model_dir / 'CURRENT').read_text().strip()} "
              f"from {settings.model_dir}")
        return
    print(f"model: none in {settings.model_dir}; training a quick one (at most {minutes:g} "
          "min; `make export` trains the full model)")
    subprocess.run([sys.executable, "-m", "shopstream.cli", "export", "train",
                    "--max-minutes", str(minutes)], check=True)


def write_campaigns(path: Path, data: Path) -> None:
    """Two demo campaigns: the data's 50 most bought-into items, and one category of the
    generated catalog. With a few minutes of training a quarter or so of the shoppers pass
    the bestsellers threshold; the category one (random categories, which the model cannot
    learn) fires rarely."""
    counts: Counter[str] = Counter()
    with data.open() as fh:
        for line in fh:
            counts.update(line.split()[1:])
    bestsellers = sorted(item for item, _ in counts.most_common(50))
    cap = {"max_events": 1, "period_s": 3600}
    path.write_text(json.dumps({"campaigns": [
        {"campaign_id": "bestsellers", "items": bestsellers, "threshold": 0.2,
         "frequency_cap": cap},
        {"campaign_id": "spring-skincare", "categories": ["skincare"], "threshold": 0.089,
         "frequency_cap": cap},
    ]}, indent=2))


@contextmanager
def _stopping(procs: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(procs):
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def _replay_in_background(settings: Settings, rate: float, done: threading.Event,
                          halt: threading.Event) -> threading.Thread:
    """The replay in a thread of its own; it sets ``done`` when it is over, and ends early
    (delivering what it has produced) once ``halt`` is set."""
    from streams.replay import ReplayOptions, run_replay

    def run() -> None:
        options = ReplayOptions(path=settings.export_data, fmt="seq", rate=rate,
                                catalog=True, seq_base_ms=int(time.time() * 1000),
                                progress=False)
        try:
            run_replay(settings, options, halt)
        finally:
            done.set()

    thread = threading.Thread(target=run, name="demo-replay", daemon=True)
    thread.start()
    return thread


def _print_outputs(settings: Settings, run: str, deadline: float | None,
                   replay_done: threading.Event) -> tuple[int, int]:
    consumer = make_consumer(settings, f"demo-{run}", **{"auto.offset.reset": "latest"})
    consumer.subscribe([t.RECS, t.ADS])
    watched: list[str] = []
    recs = ads = 0
    last_status = time.monotonic()
    try:
        while deadline is None or time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if time.monotonic() - last_status > 10:
                last_status = time.monotonic()
                print(f"  ... {recs} recommendations and {ads} ad events so far")
            if msg is None or msg.error():
                if replay_done.is_set() and msg is None and time.monotonic() - last_status > 5:
                    break  # the replay is over and the outputs have dried up
                continue
            out = orjson.loads(msg.value() or b"{}")
            if msg.topic() == t.ADS:
                ads += 1
                print(f"  ad    {out['user_id']:>6}  campaign {out['campaign_id']}  "
                      f"score {out['score']:.2f}  segment {out['segment']}")
                continue
            recs += 1
            user = out["user_id"]
            if user not in watched and len(watched) < WATCHED:
                watched.append(user)
            if user in watched:
                top = "; ".join(f"{i['item_id']} ({i['reason']})" for i in out["items"][:3])
                print(f"  recs  {user:>6}  {top}")
    finally:
        consumer.close()
    return recs, ads


def run_demo(settings: Settings, duration: float | None, rate: float,
             train_minutes: float) -> int:
    broker = LocalKafka(settings)
    started_broker = broker.running_pid() is None
    print(broker.up().describe())
    create_topics(settings)
    ensure_model(settings, train_minutes)
    run = uuid.uuid4().hex[:6]
    demo_dir = settings.local_dir / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    campaigns = demo_dir / "campaigns.json"
    write_campaigns(campaigns, settings.export_data)
    app_id = f"shopstream-demo-{run}"
    web_port = settings.web_port if not port_is_open("127.0.0.1", settings.web_port) \
        else free_port()
    worker_env = _env(settings, app_id=app_id, web_port=str(web_port),
                      worker_data_dir=str(demo_dir / f"worker-{run}"),
                      campaigns_path=str(campaigns), consumer_offset_reset="latest")
    procs: list[subprocess.Popen[bytes]] = []
    replay_done, halt = threading.Event(), threading.Event()
    replay: threading.Thread | None = None
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with _stopping(procs):
            procs.append(_spawn("worker", ["worker"], worker_env, demo_dir / "worker.log",
                                web_port))
            live_port = settings.live_port if not port_is_open("127.0.0.1", settings.live_port) \
                else free_port()
            live_env = _env(settings, live_port=str(live_port),
                            worker_url=f"http://127.0.0.1:{web_port}")
            procs.append(_spawn("live page", ["live"], live_env, demo_dir / "live.log",
                                live_port))
            print(f"worker on http://127.0.0.1:{web_port}/users/<user_id>, logs in {demo_dir}")
            print(f"live page: http://127.0.0.1:{live_port}/")
            time.sleep(3)  # let the worker take its partitions before the first event
            replay = _replay_in_background(settings, rate, replay_done, halt)
            print(f"replaying {settings.export_data.name} at {rate:g} events/s with a generated "
                  "catalog; recommendations and ad events follow (Ctrl-C to stop)")
            deadline = None if duration is None else time.monotonic() + duration
            recs, ads = _print_outputs(settings, run, deadline, replay_done)
            print(f"{recs} recommendations and {ads} ad events in this run")
            return 0 if recs else 1
    except KeyboardInterrupt:
        print("stopping")
        return 0
    finally:
        halt.set()  # the replay's producer must be done before its broker goes away
        if replay is not None:
            replay.join(settings.replay_delivery_timeout_s + 5)
        _delete_run_topics(settings, app_id)
        shutil.rmtree(demo_dir / f"worker-{run}", ignore_errors=True)
        if started_broker:
            gc.collect()  # close our Kafka clients before their broker goes away
            broker.down()
            print("stopped the broker this demo started")


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt  # SIGTERM ends the demo as Ctrl-C does


def _delete_run_topics(settings: Settings, app_id: str) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    names = [n for n in admin.list_topics(timeout=10).topics if n.startswith(f"{app_id}-")]
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            future.result(30)
