"""A stand-in for a slower or busier host: on each core a process that keeps the CPU for a
share of every period (a spin), and sleeps the rest.

bench_worker runs it with ``--busy SHARE`` for the whole run (the baseline's drains, the
worker's drain and the paced runs), so the worker's rate and the half-rate load are both
measured on the thinned cores, as they would be on a host that is that much slower or
that a neighbour shares. It runs at the others' priority: at a lower one it would yield
the core whenever the worker wants it, and take nothing. Ends on SIGTERM.

    python bench/busy_cores.py --share 0.2 [--period-ms 10]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time


def spin(share: float, period_s: float, seconds: float = float("inf")) -> None:
    """Take ``share`` of every ``period_s`` of this thread's core, for ``seconds`` (forever by
    default): CPU time, not wall time, so a spin that others preempt goes on until it has
    had its share (or the period is over)."""
    busy = share * period_s
    start = time.perf_counter()
    stop = start + seconds
    while start < stop:
        until, end = time.thread_time() + busy, start + period_s
        while time.thread_time() < until and time.perf_counter() < end:
            pass
        start = end
        now = time.perf_counter()
        if start > now:
            time.sleep(start - now)
        else:  # descheduled past a whole period: begin afresh, not with a debt to pay
            start = now


def share_arg(text: str) -> float:
    """``--share``'s value: a fraction strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"a share between 0 and 1, not {text}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--share", type=share_arg, required=True,
                        help="the share of each period a core is kept busy (0..1)")
    parser.add_argument("--period-ms", type=float, default=10.0)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    cores = sorted(os.sched_getaffinity(0))
    children = []
    for core in cores[1:]:
        pid = os.fork()
        if pid == 0:
            os.sched_setaffinity(0, {core})
            spin(args.share, args.period_ms / 1000)
        children.append(pid)
    os.sched_setaffinity(0, {cores[0]})
    try:
        spin(args.share, args.period_ms / 1000)
    finally:  # bench_worker ends the whole group at once; alone, end the children here
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


if __name__ == "__main__":
    main()
