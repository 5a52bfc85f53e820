"""The latency runs' load: views of real sessions sent at a steady rate, each stamped with
the time it is sent (its ``ts``, from which bench_worker measures a recommendation's
latency).

bench_worker runs it as a process of its own at a lower CPU priority (``--sender-nice``):
a shop's event producers run on other machines, and on these 2 shared cores a sender at
the worker's priority took ~50 µs of CPU an event in the middle of the worker's work. It
then preempted the worker; at 3,000 events/s the worker's p99 was 149 and 250 ms with
it, 81 and 82 ms with the sender niced (two alternating pairs). Niced, the sender still
uses the same CPU, but only what the worker leaves. Each event is stamped just before it
is handed to the producer, so a sender that runs late sends late; it does not hide
latency. Prints one JSON line: {"sent": N, "seconds": S, "cpu_seconds": C}.

    python bench/paced_sender.py --bootstrap HOST:PORT --rate 3000 --seconds 20 --tag lat
"""

from __future__ import annotations

import argparse
import json
import os
import time

from _common import DEFAULT_DATA, sessions, view_record

from shopstream import topics as t
from shopstream.config import load_settings
from shopstream.kafkaio import make_producer

# The sender wakes at most once a tick and sends every event due by then, each stamped as it
# goes: waking for each event (4,000 times a second at 4,000 events/s) cost this machine's
# two cores a context switch each, in the middle of the worker's work.
TICK_S = 0.001


def send(bootstrap: str, rate: float, seconds: float, tag: str, linger_ms: float,
         first: int = 0) -> dict[str, float]:
    """Send views at ``rate``/s for ``seconds``, from the ``first``-th event of the stream on
    (users and event ids prefixed with ``tag``; an event id ends in its place in the stream):
    how many were sent, and the wall and CPU seconds from the first send until all were
    delivered."""
    settings = load_settings(kafka_bootstrap=bootstrap, _env_file=None)
    # as a shop's event producers would send: the client's usual few ms of linger (counted
    # in the latency, since an event's ts is taken before it is produced)
    producer = make_producer(settings, **{"linger.ms": linger_ms})
    pairs = sessions(DEFAULT_DATA, first + round(rate * seconds))[first:]
    cpu, start = os.times(), time.monotonic()
    for i, (user, item) in enumerate(pairs):
        wait = start + i / rate - time.monotonic()
        if wait > 0:
            # at least a tick: the events that come due meanwhile then go out together
            time.sleep(max(wait, TICK_S))
        key, value = view_record(f"{tag}-{user}", item, f"{tag}-{first + i}",
                                 int(time.time() * 1000))
        producer.produce(t.VIEWS, key=key, value=value)
        producer.poll(0)
    producer.flush(30)
    used = os.times()
    return {"sent": len(pairs), "seconds": time.monotonic() - start,
            "cpu_seconds": used.user + used.system - cpu.user - cpu.system}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--rate", type=float, required=True, help="events/s")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--tag", required=True, help="prefix of user and event ids")
    parser.add_argument("--linger-ms", type=float, default=5.0)
    parser.add_argument("--first", type=int, default=0,
                        help="start at this event of the stream (a run after a lead-in)")
    args = parser.parse_args()
    print(json.dumps(send(args.bootstrap, args.rate, args.seconds, args.tag, args.linger_ms,
                          args.first)))


if __name__ == "__main__":
    main()
