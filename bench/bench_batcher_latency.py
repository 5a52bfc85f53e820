"""Latency and throughput of the micro-batcher + recommender under an open-loop load.

No Kafka: requests (real user windows) arrive at a fixed offered rate, are submitted to a
MicroBatcher that runs the Recommender (ORT + filters + reasons) in its thread, and the
time from submit to result is recorded. The baseline is the same path without batching
(max batch 1). For each offered rate: achieved users/s, p50 and p99 latency. Writes
bench/results/batcher_latency.json and .png.

    python bench/bench_batcher_latency.py [--rates 250 500 1000 2000 4000] [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import tempfile
import time
import warnings
from pathlib import Path

from _common import DEFAULT_DATA, RESULTS, read_windows


async def run_load(batcher, requests, rate: float, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    pending: set[asyncio.Future] = set()
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent = 0
    total = int(rate * seconds)

    def record(fut: asyncio.Future, t0: float) -> None:
        pending.discard(fut)
        if not fut.cancelled() and fut.exception() is None:
            latencies.append(loop.time() - t0)

    while sent < total:
        due = min(total, int((loop.time() - start) * rate) + 1)
        for i in range(sent, due):
            user, request = requests[i % len(requests)]
            fut = batcher.submit(f"{user}-{i // len(requests)}", request)
            t0 = loop.time()
            pending.add(fut)
            fut.add_done_callback(lambda f, t0=t0: record(f, t0))
        sent = due
        await asyncio.sleep(0.001)
    if pending:
        await asyncio.wait(pending, timeout=60)
    elapsed = loop.time() - start
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0

    return {"offered_per_s": rate, "achieved_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(pct(0.50), 2), "p99_ms": round(pct(0.99), 2),
            "max_ms": round(1000 * ordered[-1], 2) if ordered else 0.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rates", type=float, nargs="+", default=[250, 500, 1000, 2000, 4000])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-batch", type=int, default=256)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    args = parser.parse_args()
    if not args.data.is_file():
        parser.exit(2, f"bench_batcher_latency: error: no data file at {args.data}\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from inference.batcher import MicroBatcher
    from inference.engine import Recommender, UserRequest
    from inference.popularity import DecayedPopularity
    from inference.postfilter import FilterRules
    from inference.registry import ModelRegistry
    from inference.session import CPU
    from inference.testing import build_version
    from shopstream.config import load_settings

    users = read_windows(args.data, 5000, 50)
    ids = sorted({i for line in open(args.data) for i in line.split()[1:]}, key=int)
    configs = {"no batching (max batch 1)": (1, 0.0),
               f"micro-batched ({args.max_batch}, {args.max_wait_ms:g} ms)":
                   (args.max_batch, args.max_wait_ms / 1000)}
    report: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            build_version(Path(tmp), "bench", n_items=len(ids), dim=64, layers=2, max_len=50,
                          top_k=50, item_ids=ids)
        settings = load_settings(model_dir=Path(tmp), ort_threads=args.threads)
        registry = ModelRegistry(settings, providers=[CPU])
        pop = DecayedPopularity(3600, 10_000)
        recommender = Recommender(registry, pop, FilterRules(top_k=10, diversity_cap=3))
        requests = [(u, UserRequest(w)) for u, w in users]
        recommender(requests[:256], now_s=0.0)  # warm-up
        gc.freeze()
        for name, (size, wait) in configs.items():
            report[name] = []
            for rate in args.rates:

                async def one(size: int = size, wait: float = wait, rate: float = rate):
                    batcher = MicroBatcher(recommender, max_batch=size, max_wait_s=wait)
                    try:
                        return await run_load(batcher, requests, rate, args.seconds)
                    finally:
                        await batcher.aclose()

                row = asyncio.run(one())
                report[name].append(row)
                print(f"{name:32} offered {rate:6.0f}/s: achieved {row['achieved_per_s']:7.0f}"
                      f"/s, p50 {row['p50_ms']:8.2f} ms, p99 {row['p99_ms']:8.2f} ms",
                      flush=True)
                if row["achieved_per_s"] < 0.5 * rate:
                    break  # saturated: higher rates only queue up
                time.sleep(0.2)

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "batcher_latency.json").write_text(json.dumps(
        {"benchmark": "batcher_latency", "threads": args.threads, "seconds": args.seconds,
         "items": len(ids), "results": report}, indent=2))
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, rows in report.items():
        ax.plot([r["offered_per_s"] for r in rows], [r["p99_ms"] for r in rows], marker="o",
                label=f"{name}, p99")
    ax.axhline(50, color="#c44", linestyle=":", label="50 ms target")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered users/s")
    ax.set_ylabel("submit -> result latency (ms)")
    ax.legend()
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(RESULTS / "batcher_latency.png", dpi=120)
    print(f"wrote {RESULTS / 'batcher_latency.json'} and {RESULTS / 'batcher_latency.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
