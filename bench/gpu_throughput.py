"""Recommendations per second by batch size with ONNX Runtime's CUDA provider.

Needs a CUDA GPU; without one it stops with one line and exit code 2. Scores real windows
from the data file with one model version (``--version-dir``, or the CURRENT version of
``--model-dir``): for each graph variant (fp32, and fp16 when the version has it) and each
batch size it reports users/s and the median and p99 batch latency through the runtime's GPU
path (IO binding, as the worker scores). The baseline runs beside it in the same process:
the fp32 graph on the CPU provider with every core, for the batch sizes up to
``--cpu-max-batch``. It also checks that the GPU graphs pick the same top items as the CPU.
Writes gpu_throughput.json and .png to ``--out`` (default bench/results/).

    python bench/gpu_throughput.py --model-dir models [--batches 1 64 1024] [--seconds 2]

The metadata is read as plain JSON (not through the registry's pydantic model) so the
script needs only numpy, matplotlib and onnxruntime-gpu on a GPU machine.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
from pathlib import Path

from _common import DEFAULT_DATA, RESULTS, read_windows

BATCHES = (1, 8, 32, 64, 128, 256, 512, 1024, 2048, 4096)


def fail(message: str) -> int:
    print(f"gpu_throughput: error: {message}", file=sys.stderr)
    return 2


def version_folder(args: argparse.Namespace) -> Path:
    if args.version_dir is not None:
        return args.version_dir
    return args.model_dir / (args.model_dir / "CURRENT").read_text().strip()


def measure(session, batch, size: int, seconds: float) -> dict[str, float]:  # noqa: ANN001
    """Score batches of ``size`` users round-robin over the data for ``seconds``."""
    import numpy as np

    n = len(batch.lengths)
    parts = [np.arange(i, i + size) % n for i in range(0, max(n, size), size)]
    for part in parts[:3]:  # warm-up: kernels, allocations and buckets for this shape
        session.score(batch.item_seq[part], batch.event_type[part], batch.exclude[part],
                      batch.lengths[part])
    latencies, scored, start = [], 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for part in parts:
            t0 = time.perf_counter()
            session.score(batch.item_seq[part], batch.event_type[part], batch.exclude[part],
                          batch.lengths[part])
            latencies.append(time.perf_counter() - t0)
            scored += size
    elapsed = time.perf_counter() - start
    return {"batch": size, "users_per_s": round(scored / elapsed, 1),
            "median_batch_ms": round(1000 * float(np.median(latencies)), 3),
            "p99_batch_ms": round(1000 * float(np.percentile(latencies, 99)), 3)}


def top_overlap(a, b, k: int) -> float:  # noqa: ANN001
    """Mean share of the first ``k`` items that two rankings have in common."""
    return sum(len(set(x[:k]) & set(y[:k])) for x, y in zip(a, b, strict=True)) / (k * len(a))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--model-dir", type=Path, help="a model registry (its CURRENT version)")
    where.add_argument("--version-dir", type=Path, help="one model version folder")
    parser.add_argument("--users", type=int, default=8192)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per batch size")
    parser.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    parser.add_argument("--cpu-max-batch", type=int, default=1024,
                        help="largest batch the CPU baseline is measured at")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    import onnxruntime as ort

    from inference.session import CPU, CUDA, ModelSession, cuda_device_count
    from inference.windows import ItemIndex, encode_windows

    if CUDA not in ort.get_available_providers():
        return fail("this onnxruntime build has no CUDAExecutionProvider (install onnxruntime-gpu)")
    if cuda_device_count() == 0:
        return fail("no CUDA GPU answers here")
    if not args.data.is_file():
        return fail(f"no data file at {args.data}")
    try:
        folder = version_folder(args)
        meta = json.loads((folder / "metadata.json").read_text())
    except OSError as exc:
        return fail(f"no model version to measure: {exc}")

    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    max_len, top_k = meta["max_len"], meta["top_k"]
    variants = {name: folder / file for name, file in meta.get("variants", {}).items()
                if name in ("fp32", "fp16") and (folder / file).is_file()}
    if "fp32" not in variants:
        return fail(f"{folder} has no fp32 graph")
    users = read_windows(args.data, args.users, max_len)
    batch = encode_windows(ItemIndex(meta["item_ids"]), [w for _, w in users], max_len)
    gc.freeze()

    cpu = ModelSession(variants["fp32"], threads=0, providers=[CPU])
    sample = np.arange(min(1024, len(users)))
    reference = cpu.score(batch.item_seq[sample], batch.event_type[sample],
                          batch.exclude[sample], batch.lengths[sample])[0]
    curves: dict[str, list[dict[str, float]]] = {}
    agreement: dict[str, float] = {}
    for name, graph in variants.items():
        session = ModelSession(graph, threads=1, providers=[CUDA, CPU])
        if session.provider != CUDA:
            return fail(f"the {name} session fell back to {session.provider}")
        top = session.score(batch.item_seq[sample], batch.event_type[sample],
                            batch.exclude[sample], batch.lengths[sample])[0]
        agreement[name] = round(top_overlap(top, reference, min(10, top_k)), 4)
        print(f"{name} on {CUDA}: top-10 overlap with the CPU fp32 graph "
              f"{agreement[name]:.4f}", flush=True)
        curves[f"cuda_{name}"] = rows = []
        for size in args.batches:
            rows.append(measure(session, batch, size, args.seconds))
            print(f"cuda {name} batch {size:5d}: {rows[-1]['users_per_s']:12,.0f} users/s, "
                  f"median {rows[-1]['median_batch_ms']:.2f} ms, "
                  f"p99 {rows[-1]['p99_batch_ms']:.2f} ms", flush=True)
        del session
    curves["cpu_fp32"] = rows = []
    for size in [s for s in args.batches if s <= args.cpu_max_batch]:
        rows.append(measure(cpu, batch, size, args.seconds))
        print(f"cpu  fp32 batch {size:5d}: {rows[-1]['users_per_s']:12,.0f} users/s, "
              f"median {rows[-1]['median_batch_ms']:.2f} ms", flush=True)

    cpu_rate = {r["batch"]: r["users_per_s"] for r in curves["cpu_fp32"]}
    best_cpu = max(cpu_rate.values())
    ratios = {name: {str(r["batch"]): round(r["users_per_s"] / cpu_rate[r["batch"]], 2)
                     for r in rows if r["batch"] in cpu_rate}
              for name, rows in curves.items() if name.startswith("cuda")}
    best = {name: max(r["users_per_s"] for r in rows) for name, rows in curves.items()}
    report = {
        "benchmark": "gpu_throughput", "model_version": meta["version"],
        "items": len(meta["item_ids"]) - 1, "max_len": max_len, "top_k": top_k,
        "dim": meta.get("dim"), "users": len(users), "onnxruntime": ort.__version__,
        "gpu": gpu_name(), "cpu_cores": cpu_cores(), "machine": platform.machine(),
        "curves": curves, "top10_overlap_with_cpu": agreement,
        "ratio_to_cpu_same_batch": ratios, "best_users_per_s": best,
        "best_ratio_to_best_cpu": {k: round(v / best_cpu, 2) for k, v in best.items()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_throughput.json").write_text(json.dumps(report, indent=2) + "\n")
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for name, rows in curves.items():
        ax.plot([r["batch"] for r in rows], [r["users_per_s"] for r in rows], marker="o",
                label=name.replace("_", " "))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size (users)")
    ax.set_ylabel("recommendations per second")
    ax.set_title(f"{report['gpu']}: {report['items']:,} items, L={max_len}, K={top_k}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "gpu_throughput.png", dpi=120)
    print(json.dumps({"best_users_per_s": best,
                      "best_ratio_to_best_cpu": report["best_ratio_to_best_cpu"]}))
    print(f"wrote {args.out / 'gpu_throughput.json'} and .png")
    return 0


def gpu_name() -> str:
    import subprocess

    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True)
        return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "CUDA GPU"


def cpu_cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    raise SystemExit(main())
