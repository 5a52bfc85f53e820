"""The baseline of bench_worker.py: a Faust agent that consumes events.views and does nothing.

Run as a process of its own: prints one JSON line {"events": N, "seconds": S, "cpu_seconds": C}
once it has consumed N records after the first ``--skip`` (timed from the first of them; C
is this process's CPU time over the same span), then stops its worker. ``--latest`` reads
only what is sent after it joined (for the live baseline); ``--app-id`` names its consumer
group.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
import uuid

import faust
import orjson

from shopstream import topics as t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--skip", type=int, default=0,
                        help="records read before the timed ones (a backlog's lead-in)")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--latest", action="store_true",
                        help="start at the end of the topic instead of its beginning")
    parser.add_argument("--app-id", default=f"bench-consume-{uuid.uuid4().hex[:8]}")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-consume-") as datadir:
        run(args, datadir)  # the worker stops through SystemExit; the folder goes either way


def run(args: argparse.Namespace, datadir: str) -> None:
    app = faust.App(args.app_id, broker=f"kafka://{args.bootstrap}",
                    store="memory://", web_enabled=False, topic_partitions=args.partitions,
                    datadir=datadir,
                    consumer_auto_offset_reset="latest" if args.latest else "earliest")
    topic = app.topic(t.VIEWS, key_type=bytes, value_type=bytes, key_serializer="raw",
                      value_serializer="raw")
    seen = {"n": 0, "start": 0.0, "cpu": 0.0}

    @app.agent(topic)
    async def consume(stream: faust.StreamT[bytes]) -> None:
        async for _value in stream:
            if seen["n"] == args.skip:
                seen["start"] = time.perf_counter()
                seen["cpu"] = time.process_time()
            seen["n"] += 1
            if seen["n"] == args.skip + args.events:
                elapsed = time.perf_counter() - seen["start"]
                cpu = time.process_time() - seen["cpu"]
                print(orjson.dumps({"events": args.events, "seconds": elapsed,
                                    "cpu_seconds": cpu}).decode(), flush=True)
                os.kill(os.getpid(), signal.SIGTERM)

    worker = faust.Worker(app, loglevel="warning", quiet=True)
    # as in the worker (shopstream.worker): the spinner turns every debug call into a record
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    sys.exit(main())
