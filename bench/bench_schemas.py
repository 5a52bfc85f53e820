"""Decoding speed of a ViewEvent: schemas.decode against plain orjson.loads, same run.

    python bench/bench_schemas.py [--n 30000] [--repeats 3]

Prints a table and writes bench/results/bench_schemas.json and .png. ``decode`` does
strictly more than orjson.loads (size, UTF-8 and depth checks, typed validation, clock
check), so the ratio is the price of validation, not a race.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import orjson
from _common import save_rates

from schemas import Limits, ViewEvent, decode
from schemas.times import now_ms


def sample() -> bytes:
    return orjson.dumps({
        "schema_version": 1, "event_id": "4f1c2a9e-0b7d-4c55-9a8e-2d1f3b6c7a90",
        "user_id": "u-1289344", "item_id": "10231", "ts": now_ms() - 1500,
        "session_id": "s-77120", "dwell_ms": 5230, "source": "search",
    })


def rate(fn: Callable[[], object], n: int, repeats: int) -> float:
    """Best of ``repeats`` runs, in calls per second."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=30_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    raw, limits, now = sample(), Limits(), now_ms()
    cases: dict[str, Callable[[], object]] = {
        "orjson.loads (baseline)": lambda: orjson.loads(raw),
        "pydantic validate_json only": lambda: ViewEvent.model_validate_json(raw),
        "schemas.decode": lambda: decode("events.views", raw, limits, now=now),
    }
    rates = {name: rate(fn, args.n, args.repeats) for name, fn in cases.items()}
    base = rates["orjson.loads (baseline)"]

    print(f"ViewEvent of {len(raw)} bytes, {args.n} calls, best of {args.repeats}")
    print(f"{'case':32} {'events/s':>12} {'us/event':>9} {'vs baseline':>12}")
    for name, r in rates.items():
        print(f"{name:32} {r:12,.0f} {1e6 / r:9.2f} {r / base:11.2f}x")

    save_rates("bench_schemas", rates,
               {"bench": "schemas.decode ViewEvent", "payload_bytes": len(raw),
                "calls": args.n, "repeats": args.repeats},
               "ViewEvents decoded per second (one core, higher is better)",
               "schemas.decode vs plain orjson.loads")


if __name__ == "__main__":
    main()
