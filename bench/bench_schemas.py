"""Decoding speed of a ViewEvent: schemas.decode against plain orjson.loads, same run.

    python bench/bench_schemas.py [--n 30000] [--repeats 3]

Prints a table and writes bench/results/bench_schemas.json and .png. ``decode`` does
strictly more than orjson.loads (size, UTF-8 and depth checks, typed validation, clock
check), so the ratio is the price of validation, not a race.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import orjson  # noqa: E402

from schemas import Limits, ViewEvent, decode  # noqa: E402
from schemas.times import now_ms  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


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

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "bench": "schemas.decode ViewEvent", "payload_bytes": len(raw), "calls": args.n,
        "repeats": args.repeats, "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "events_per_s": rates, "ratio_to_baseline": {k: v / base for k, v in rates.items()},
    }
    (RESULTS / "bench_schemas.json").write_text(json.dumps(out, indent=2) + "\n")
    fig, ax = plt.subplots(figsize=(7, 3.2))
    names = list(rates)
    ax.barh(names, [rates[n] for n in names], color=["#999999", "#6a9fd4", "#2c6fbb"])
    for y, n in enumerate(names):
        ax.text(rates[n], y, f" {rates[n]:,.0f}/s ({rates[n] / base:.2f}x)", va="center")
    ax.set_xlabel("ViewEvents decoded per second (one core, higher is better)")
    ax.set_xlim(0, max(rates.values()) * 1.45)
    ax.set_title("schemas.decode vs plain orjson.loads")
    fig.tight_layout()
    fig.savefig(RESULTS / "bench_schemas.png", dpi=120)
    print(f"wrote {RESULTS / 'bench_schemas.json'} and .png")


if __name__ == "__main__":
    main()
