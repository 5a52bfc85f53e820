"""Recommendations per second by batch size with ONNX Runtime's CUDA provider.

Needs a CUDA GPU; without one it stops with one line and exit code 2. Scores real windows
from the data file with the registry's current model (``--model-dir``) or, by default, a
random model of the realistic size (width 64, 2 layers, L=50, the data's items). For each
batch size it reports users/s and the median batch latency, with IO binding (the runtime's
GPU path), and writes bench/results/gpu_throughput.json and .png.

    python bench/gpu_throughput.py [--model-dir models] [--variant auto|fp32|fp16]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

from _common import DEFAULT_DATA, RESULTS, read_windows

BATCHES = (1, 8, 32, 64, 128, 256, 512, 1024, 2048, 4096)


def fail(message: str) -> int:
    print(f"gpu_throughput: error: {message}", file=sys.stderr)
    return 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--model-dir", type=Path, default=None,
                        help="a model registry; its CURRENT version is measured")
    parser.add_argument("--variant", default="auto", choices=["auto", "fp32", "fp16", "int8"])
    parser.add_argument("--users", type=int, default=8192)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per batch size")
    parser.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    args = parser.parse_args()

    import onnxruntime as ort

    from inference.session import CUDA, choose_providers, cuda_device_count

    if CUDA not in ort.get_available_providers():
        return fail("this onnxruntime build has no CUDAExecutionProvider")
    if choose_providers()[0] != CUDA:
        return fail(f"no CUDA GPU answers here (driver devices: {cuda_device_count()})")
    if not args.data.is_file():
        return fail(f"no data file at {args.data}")

    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from inference.registry import ModelRegistry
    from inference.windows import encode_windows
    from shopstream.config import load_settings

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model_dir
        if model_dir is None:
            from inference.testing import build_version

            ids = sorted({i for line in open(args.data) for i in line.split()[1:]}, key=int)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                build_version(Path(tmp), "random", n_items=len(ids), dim=64, layers=2,
                              max_len=50, top_k=50, item_ids=ids)
            model_dir = Path(tmp)
        settings = load_settings(model_dir=model_dir, model_variant=args.variant)
        model = ModelRegistry(settings, providers=[CUDA, "CPUExecutionProvider"]).current
        session = model.session
        if session.provider != CUDA:
            return fail(f"the session fell back to {session.provider}")
        users = read_windows(args.data, args.users, model.metadata.max_len)
        batch = encode_windows(model.index, [w for _, w in users], model.metadata.max_len)
        n = len(users)
        gc.freeze()
        rows = []
        for size in args.batches:
            idx = [np.arange(i, i + size) % n for i in range(0, max(n, size), size)]
            for part in idx[:3]:  # warm-up: CUDA kernels and allocations for this shape
                session.score(batch.item_seq[part], batch.event_type[part],
                              batch.exclude[part], batch.lengths[part])
            latencies, scored, start = [], 0, time.perf_counter()
            while time.perf_counter() - start < args.seconds:
                for part in idx:
                    t0 = time.perf_counter()
                    session.score(batch.item_seq[part], batch.event_type[part],
                                  batch.exclude[part], batch.lengths[part])
                    latencies.append(time.perf_counter() - t0)
                    scored += size
            elapsed = time.perf_counter() - start
            row = {"batch": size, "users_per_s": round(scored / elapsed, 1),
                   "median_batch_ms": round(1000 * float(np.median(latencies)), 3),
                   "p99_batch_ms": round(1000 * float(np.percentile(latencies, 99)), 3)}
            rows.append(row)
            print(f"batch {size:5d}: {row['users_per_s']:12.0f} users/s, median "
                  f"{row['median_batch_ms']:.2f} ms, p99 {row['p99_batch_ms']:.2f} ms",
                  flush=True)

    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"benchmark": "gpu_throughput", "model_version": model.version,
              "variant": args.variant, "graph": session.path.name, "items": model.metadata.n_items,
              "max_len": model.metadata.max_len, "top_k": model.metadata.top_k,
              "provider": session.provider, "results": rows}
    (RESULTS / "gpu_throughput.json").write_text(json.dumps(report, indent=2))
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([r["batch"] for r in rows], [r["users_per_s"] for r in rows], marker="o")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size (users)")
    ax.set_ylabel("recommendations per second")
    ax.set_title(f"CUDA provider, {model.metadata.n_items} items, graph {session.path.name}")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(RESULTS / "gpu_throughput.png", dpi=120)
    print(f"wrote {RESULTS / 'gpu_throughput.json'} and {RESULTS / 'gpu_throughput.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
