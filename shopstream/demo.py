"""``shopstream demo``: the main job end to end on the embedded default.

Starts (or reuses) the local broker, creates the topics, runs a worker, sends generated
shopper events and prints the outputs as they arrive. Stops what it started on Ctrl-C or
after ``--duration`` seconds.
"""

from __future__ import annotations

import gc
import random
import signal
import subprocess
import sys
import time
import urllib.request
import uuid

import orjson

from shopstream import topics as t
from shopstream.config import Settings
from shopstream.kafkaio import make_consumer, make_producer, produce_all
from shopstream.localkafka import LocalKafka, port_is_open
from shopstream.topics import create_topics

SHOPPERS = [f"shopper-{i:02d}" for i in range(12)]


def describe_output(topic: str, out: dict) -> str:
    if topic == t.ADS:
        return (f"  ad   {out['user_id']:12} campaign {out['campaign_id']} "
                f"score {out['score']:.3f} ({out['segment']})")
    items = ", ".join(f"{i['item_id']} ({i['reason']})" for i in out["items"][:3])
    return f"  recs {out['user_id']:12} {items}"


def describe_window(settings: Settings, user: str) -> str:
    url = f"http://{settings.web_host}:{settings.web_port}/users/{user}"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = orjson.loads(resp.read())
    except (OSError, ValueError) as exc:
        return f"  window {user}: not available ({exc})"
    window = body["window"]
    recent = ", ".join(f"{w['event']} {w['item_id']}" for w in window["window"][-4:])
    return (f"  window {user:12} {window['events_total']} events, recent: {recent}; "
            f"see {url}")


def generated_events(n: int, run: str, seed: int = 7) -> list[tuple[str, dict]]:
    """Views and clicks for a handful of shoppers, (topic, event); the same for a seed, with
    event ids tagged by ``run`` so a second demo run is not taken for a redelivery."""
    rng = random.Random(seed)
    users = SHOPPERS
    now = int(time.time() * 1000)
    out = []
    for i in range(n):
        user = rng.choice(users)
        event = {"event_id": f"demo-{run}-{i}", "user_id": user,
                 "item_id": str(rng.randint(1, 500)), "ts": now - (n - i) * 1000,
                 "dwell_ms": rng.randint(500, 60_000)}
        if rng.random() < 0.3:
            event["action"] = rng.choice(["click", "click", "add_to_cart", "purchase"])
            out.append((t.CLICKS, event))
        else:
            out.append((t.VIEWS, event))
    return out


def _start_worker(settings: Settings) -> subprocess.Popen[bytes]:
    log_path = settings.local_dir / "demo-worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "shopstream.cli", "worker"],
                                stdout=log, stderr=subprocess.STDOUT)
    print(f"worker started (pid {proc.pid}), log in {log_path}")
    deadline = time.monotonic() + 90
    while not port_is_open(settings.web_host, settings.web_port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the worker did not start; see {log_path}")
        time.sleep(0.5)
    return proc


def run_demo(settings: Settings, duration: float | None, n_events: int) -> int:
    broker = LocalKafka(settings)
    started_broker = broker.running_pid() is None
    print(broker.up().describe())
    create_topics(settings)
    worker = _start_worker(settings)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    run = uuid.uuid4().hex[:8]
    consumer = make_consumer(settings, f"demo-{run}")
    consumer.subscribe([t.RECS, t.ADS])
    producer = make_producer(settings)
    try:
        events = generated_events(n_events, run)
        for topic in (t.VIEWS, t.CLICKS):
            produce_all(producer, topic, [(e["user_id"].encode(), orjson.dumps(e))
                                          for tp, e in events if tp == topic])
        print(f"sent {n_events} generated events for {len(SHOPPERS)} shoppers; outputs on "
              f"{t.RECS} and {t.ADS} follow (Ctrl-C to stop)")
        deadline = None if duration is None else time.monotonic() + duration
        seen = 0
        while not stop["now"] and (deadline is None or time.monotonic() < deadline):
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            out = orjson.loads(msg.value() or b"{}")
            if not str(out.get("trigger_event_id", "")).startswith(f"demo-{run}-"):
                continue  # an output of an earlier run
            seen += 1
            print(describe_output(msg.topic() or "", out))
        print(f"{seen} outputs received")
        for user in SHOPPERS[:3]:
            print(describe_window(settings, user))
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        consumer.close()
        del producer
        gc.collect()  # close librdkafka's connections before the broker goes away
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
        if started_broker:
            broker.down()
            print("stopped the broker this demo started")
