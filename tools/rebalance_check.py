"""Do two workers sharing a backlog lose events when the second joins? (a check, not a test)

Starts a local broker, queues the benchmark's 30,000 views, starts one worker and, a moment
later, a second in the same group, so the partitions move while the backlog drains. When
both are idle, every user's ``events_total`` (read over HTTP; duplicates are deduped) is
compared with the views sent for that user, and the users whose count differs are counted.

    python tools/rebalance_check.py [--events 30000] [--join-after 2.0] [--keep]

Exits 1 when any user's count differs, and then keeps its temp folder (the workers' logs,
stores and the broker's data), as ``--keep`` does. See issue #5's notes for what it found.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from _common import DEFAULT_DATA, sessions, view_record  # noqa: E402
from bench_worker import events_in, model_dir, start_worker, stop_workers  # noqa: E402

from shopstream import topics as t  # noqa: E402
from shopstream.config import load_settings  # noqa: E402
from shopstream.kafkaio import make_producer, produce_all  # noqa: E402
from shopstream.localkafka import LocalKafka, free_port  # noqa: E402
from shopstream.topics import create_topics  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30000)
    parser.add_argument("--join-after", type=float, default=2.0,
                        help="seconds between the first worker and the second")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temp folder (worker logs, stores, the broker's data)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rebalance-check-"))
    settings = load_settings(kafka_bootstrap=f"127.0.0.1:{free_port()}",
                             kafka_data_dir=tmp / "kafka", local_dir=REPO / ".local")
    broker = LocalKafka(settings)
    broker.up()
    workers = []
    wrong = -1  # until counted
    try:
        create_topics(settings)
        pairs = sessions(DEFAULT_DATA, args.events)
        sent = collections.Counter(user for user, _ in pairs)
        produce_all(make_producer(settings), t.VIEWS,
                    [view_record(user, item, f"r-{n}", 1_700_000_000_000 + n)
                     for n, (user, item) in enumerate(pairs)])
        models, _ = model_dir(tmp)
        app_id = f"rebalance-{uuid.uuid4().hex[:6]}"
        first, port = start_worker(settings, models, tmp / "worker0.log", app_id)
        workers.append(first)
        time.sleep(args.join_after)
        second, other_port = start_worker(settings, models, tmp / "worker1.log", app_id)
        workers.append(second)
        last, quiet = -1.0, 0
        while quiet < 4:  # idle for ~12 s
            time.sleep(3)
            now = events_in([port, other_port])
            quiet = quiet + 1 if now == last else 0
            last = now
        wrong = 0
        for user, n in sent.items():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/users/{user}",
                                        timeout=10) as resp:
                wrong += orjson.loads(resp.read())["window"]["events_total"] != n
        print(f"records consumed {last:.0f} for {args.events} views; {len(sent)} users, "
              f"{wrong} with a count other than the views sent")
        return 1 if wrong else 0
    finally:
        stop_workers(workers)
        broker.down()
        if args.keep or wrong:
            print(f"kept {tmp}")
        else:  # ~60 MB a run, and the integration tests run it every time
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
