"""Replay throughput on a real local broker: ``shopstream replay``'s path against sending the
same records pre-encoded (the producer's ceiling), and against reading alone, same run.

    python bench/bench_replay.py [--data ../shared/data/amazon-beauty.txt] [--limit 50000]

Starts a broker on a free port (data in a temporary directory), stops it after. Prints a
table and writes bench/results/bench_replay.json and .png. The ratios say where the time
goes: reading (parse, derive, validate) or the producer and broker.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import DEFAULT_DATA, REPO, save_rates

from schemas import encode  # noqa: E402
from shopstream.config import load_settings  # noqa: E402
from shopstream.kafkaio import make_producer, produce_all  # noqa: E402
from shopstream.localkafka import LocalKafka, free_port  # noqa: E402
from shopstream.topics import create_topics  # noqa: E402
from streams.replay import ReplayOptions, open_log, run_replay  # noqa: E402
from streams.replay_formats import Parsed  # noqa: E402

BASELINE = "produce pre-encoded (baseline)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--limit", type=int, default=50_000, help="events per case")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        settings = load_settings(kafka_bootstrap=f"127.0.0.1:{free_port()}",
                                 kafka_data_dir=Path(tmp), local_dir=REPO / ".local")
        broker = LocalKafka(settings)
        broker.up()
        try:
            create_topics(settings)
            rates = measure(settings, args.data, args.limit)
        finally:
            broker.down()
    report(rates, args)


def measure(settings, data: Path, limit: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    options = ReplayOptions(data, "seq", limit=limit, progress=False)

    start = time.perf_counter()
    items = [i for i in open_log(settings, options) if isinstance(i, Parsed)]
    read_s = time.perf_counter() - start
    by_topic: dict[str, list[tuple[bytes, bytes]]] = {}
    for item in items:
        by_topic.setdefault(item.topic, []).append(
            (item.event.user_id.encode(), encode(item.event)))

    producer = make_producer(settings)
    produce_all(producer, "events.views", next(iter(by_topic.values()))[:2000])  # warm-up
    start = time.perf_counter()
    for topic, records in by_topic.items():
        produce_all(producer, topic, records)
    produce_s = time.perf_counter() - start

    summary = run_replay(settings, options)
    assert summary.ok and summary.sent == len(items)
    return {BASELINE: len(items) / produce_s, "read and validate only": len(items) / read_s,
            "shopstream replay (read + send)": summary.rate}


def report(rates: dict[str, float], args: argparse.Namespace) -> None:
    base = rates[BASELINE]
    print(f"{args.limit} events of {args.data.name}")
    print(f"{'case':34} {'events/s':>10} {'vs baseline':>12}")
    for name, r in rates.items():
        print(f"{name:34} {r:10,.0f} {r / base:11.2f}x")
    save_rates("bench_replay", rates,
               {"bench": "replay throughput", "data": args.data.name, "events": args.limit},
               "events per second (higher is better)",
               f"replay of {args.limit} events, local broker")


if __name__ == "__main__":
    main()
