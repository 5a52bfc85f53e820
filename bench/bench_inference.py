"""Micro-batched ONNX Runtime vs scoring one user at a time in eager PyTorch.

Same model (random weights, width 64, 2 layers, L=50, as many items as the data, top 20
as exported), same users (real windows from the data file), one run. Eager PyTorch is
measured with one thread and with ``--threads`` (one thread is often faster for one user
at a time, and always on a busy machine) and with and without left padding; the baseline
is the fastest of those, so the ratio is against the strongest one-at-a-time variant. ORT
gets ``--threads`` (and one thread, for the batched path), at the worker's batch size and at
the larger one a backlog fills, with the fp32 graph and with its int8 variant (what
``make export`` writes for CPUs). Prints a table and writes bench/results/inference.json
and inference.png.

    python bench/bench_inference.py [--users 2000] [--threads 2]
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import warnings
from pathlib import Path

from _common import DEFAULT_DATA, RESULTS, cpu_model, rate, read_windows

from export import GRAPH_TOP_K


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--big-batch", type=int, default=1024,
                        help="the larger batch a backlog fills (and the int8 graph's)")
    parser.add_argument("--threads", type=int, default=2, help="for torch and ORT alike")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--max-len", type=int, default=50)
    parser.add_argument("--top-k", type=int, default=GRAPH_TOP_K,
                        help=f"K of the graph's top-K output (default {GRAPH_TOP_K}, what "
                        "`shopstream export` writes; until 2026-11-30 this benchmark used 50, "
                        "and a larger K costs more in the top-K over the catalogue)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not args.data.is_file():
        parser.exit(2, f"bench_inference: error: no data file at {args.data}\n")

    import matplotlib
    import numpy as np
    import torch

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from export.onnx_export import export_int8
    from inference.engine import Recommender, UserRequest
    from inference.popularity import DecayedPopularity
    from inference.postfilter import FilterRules
    from inference.registry import ModelRegistry
    from inference.session import CPU, ModelSession
    from inference.testing import build_version, load_torch_model
    from inference.windows import encode_windows
    from shopstream.config import load_settings

    users = read_windows(args.data, args.users, args.max_len)
    item_ids = sorted({item for _, w in users for item, _ in w} |
                      {i for line in open(args.data) for i in line.split()[1:]}, key=int)
    print(f"{len(users)} users, {len(item_ids)} items, mean window "
          f"{np.mean([len(w) for _, w in users]):.1f}, {args.threads} threads")

    with tempfile.TemporaryDirectory() as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            folder = build_version(Path(tmp), "bench", n_items=len(item_ids), dim=args.dim,
                                   layers=args.layers, max_len=args.max_len,
                                   top_k=args.top_k, item_ids=item_ids)
        settings = load_settings(model_dir=Path(tmp), ort_threads=args.threads)
        registry = ModelRegistry(settings, providers=[CPU])
        model = registry.current
        eager = load_torch_model(folder)
        batch = encode_windows(model.index, [w for _, w in users], args.max_len)
        seq, typ, exc, lengths = batch.item_seq, batch.event_type, batch.exclude, batch.lengths
        n = len(users)
        chunks = [slice(i, i + args.batch) for i in range(0, n, args.batch)]

        def eager_one_by_one(trim: bool, threads: int, count: int = n) -> int:
            torch.set_num_threads(threads)
            with torch.no_grad():
                for i in range(count):
                    start = args.max_len - max(int(lengths[i]), 1) if trim else 0
                    eager(torch.from_numpy(seq[i:i + 1, start:]),
                          torch.from_numpy(typ[i:i + 1, start:]), torch.from_numpy(exc[i:i + 1]))
            return count

        def ort_one_by_one(count: int = n) -> int:
            for i in range(count):
                model.session.run(seq[i:i + 1], typ[i:i + 1], exc[i:i + 1])
            return n

        one_thread = ModelSession(model.session.path, threads=1, providers=[CPU])
        # the int8 variant export writes for CPUs (dynamic quantisation of the matmuls)
        export_int8(model.session.path, Path(tmp) / "model.int8.onnx")
        int8 = ModelSession(Path(tmp) / "model.int8.onnx", threads=args.threads, providers=[CPU])
        big = [slice(i, i + args.big_batch) for i in range(0, n, args.big_batch)]

        def ort_batched(bucketed: bool, session: ModelSession = model.session,
                        parts: list[slice] = chunks) -> int:
            for s in parts:
                if bucketed:
                    session.score(seq[s], typ[s], exc[s], lengths[s])
                else:
                    model.session.run(seq[s], typ[s], exc[s])
            return n

        pop = DecayedPopularity(3600, 10_000)
        recommender = Recommender(registry, pop, FilterRules(top_k=10, diversity_cap=3))
        requests = [(u, UserRequest(w)) for u, w in users]

        def full_path() -> int:
            for s in chunks:
                recommender(requests[s], now_s=0.0)
            return n

        t = args.threads
        eager_cases = [
            ("eager torch, 1 at a time, padded to L, 1 thread",
             lambda: eager_one_by_one(False, 1)),
            ("eager torch, 1 at a time, unpadded, 1 thread", lambda: eager_one_by_one(True, 1)),
            (f"eager torch, 1 at a time, padded to L, {t} threads",
             lambda: eager_one_by_one(False, t)),
            (f"eager torch, 1 at a time, unpadded, {t} threads",
             lambda: eager_one_by_one(True, t)),
        ]
        cases = [
            *(eager_cases if t > 1 else eager_cases[:2]),
            ("ORT, 1 at a time, padded to L", ort_one_by_one),
            (f"ORT, batch {args.batch}, padded to L", lambda: ort_batched(False)),
            (f"ORT, batch {args.batch}, length buckets", lambda: ort_batched(True)),
            (f"ORT, batch {args.batch}, length buckets, 1 thread",
             lambda: ort_batched(True, one_thread)),
            (f"ORT, batch {args.big_batch}, length buckets",
             lambda: ort_batched(True, parts=big)),
            (f"ORT int8, batch {args.big_batch}, length buckets",
             lambda: ort_batched(True, int8, big)),
            (f"recommender, batch {args.batch} (ORT + filters + reasons)", full_path),
        ]
        # Long-lived objects (torch, the item index) make every full garbage collection
        # slow; a worker freezes them after start-up, and so does this run, for all cases.
        gc.freeze()
        for _, fn in cases:  # warm-up: first runs allocate and pick kernels
            fn()
        # Repeats go round the cases, so load from other processes on this shared machine
        # falls on every case alike; each case reports its median.
        runs: dict[str, list[float]] = {name: [] for name, _ in cases}
        for repeat in range(args.repeats):
            for name, fn in cases:
                runs[name].append(rate(fn, 1))
            print(f"pass {repeat + 1}/{args.repeats} done", flush=True)
        results = []
        for name, _ in cases:
            users_s = float(np.median(runs[name]))
            results.append({"case": name, "users_per_s": round(users_s, 1),
                            "runs": [round(r, 1) for r in runs[name]]})
            print(f"{name:58} {users_s:10.0f} users/s")

    eager_rows = [r for r in results if r["case"].startswith("eager")]
    best = max(eager_rows, key=lambda r: r["users_per_s"])
    best["baseline"] = True
    base = best["users_per_s"]
    for r in results:
        r["ratio_vs_baseline"] = round(r["users_per_s"] / base, 2)
    print(f"\nratios vs the baseline (the fastest eager case: {best['case']}):")
    for r in results:
        print(f"  {r['case']:58} {r['ratio_vs_baseline']:7.1f}x")
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "inference", "users": n, "items": len(item_ids), "dim": args.dim,
        "layers": args.layers, "max_len": args.max_len, "top_k": args.top_k,
        "batch": args.batch, "big_batch": args.big_batch, "threads": args.threads,
        "repeats": args.repeats,
        "data": args.data.name, "machine": cpu_model(),
        "baseline": best["case"], "results": results,
    }
    (RESULTS / "inference.json").write_text(json.dumps(report, indent=2))
    fig, ax = plt.subplots(figsize=(9, 4.5))
    names = [r["case"] for r in results]
    values = [r["users_per_s"] for r in results]
    batched = ("ORT, batch", "ORT int8")
    colours = ["#c44" if r.get("baseline") else "#48a" if r["case"].startswith(batched)
               else "#888" for r in results]
    bars = ax.barh(names[::-1], values[::-1], color=colours[::-1])
    for bar, r in zip(bars, results[::-1], strict=True):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2,
                f" {r['users_per_s']:.0f}/s ({r['ratio_vs_baseline']:.1f}x)", va="center")
    ax.set_xlabel("users scored per second (higher is better)")
    ax.set_title(f"{len(item_ids)} items, width {args.dim}, {args.layers} layers, "
                 f"L={args.max_len}, {args.threads} threads")
    ax.set_xlim(0, max(values) * 1.35)
    fig.tight_layout()
    fig.savefig(RESULTS / "inference.png", dpi=120)
    print(f"\nwrote {RESULTS / 'inference.json'} and {RESULTS / 'inference.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
