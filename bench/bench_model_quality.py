"""Model quality on the shared data: the exported ONNX graph against baselines, same run.

For each data file this trains with the default settings of ``shopstream export train``
(timed), evaluates the published graph with ``shopstream export evaluate`` (full ranking and
100 sampled negatives), and puts beside it, computed in the same run on the same split:
a most-popular baseline, the int8 variant, and the published ICLRec figures (the bar).

    python bench/bench_model_quality.py [--data beauty toys] [--max-minutes 18]

Writes bench/results/model_quality.json and model_quality.png.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from export.data import load  # noqa: E402
from export.metrics import hr_ndcg, ranks_full, ranks_sampled, sample_negatives  # noqa: E402
from export.sequences import ItemVocab, encode, leave_one_out  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
FILES = {"beauty": DATA / "amazon-beauty.txt", "toys": DATA / "amazon-toys.txt"}
# ICLRec's published full-ranking figures on these exact files (its repository README).
REFERENCE = {
    "beauty": {"hr@5": 0.0500, "ndcg@5": 0.0326, "hr@10": 0.0744, "ndcg@10": 0.0403,
               "hr@20": 0.1058, "ndcg@20": 0.0483},
    "toys": {"hr@5": 0.0598, "ndcg@5": 0.0404, "hr@10": 0.0834, "ndcg@10": 0.0480,
             "hr@20": 0.1138, "ndcg@20": 0.0557},
}


def shopstream(*args: str) -> str:
    cmd = [sys.executable, "-m", "shopstream.cli", *args]
    done = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1]


def popularity(path: Path) -> dict[str, dict[str, float]]:
    """Most-bought items of the training part, history excluded, both protocols."""
    vocab = ItemVocab()
    split = leave_one_out(encode(load(path), vocab))
    counts = np.zeros(len(vocab))
    for seq in split.train:
        np.add.at(counts, seq.items, 1)
    targets = np.array([t for _, t in split.test])
    ranks = []
    for start in range(0, len(targets), 2048):  # [2048, N] at a time keeps memory small
        cases = split.test[start:start + 2048]
        scores = np.tile(counts.astype(np.float32), (len(cases), 1))
        scores[:, 0] = -np.inf
        for row, (hist, _) in enumerate(cases):
            scores[row, hist.items] = -np.inf
        ranks.append(ranks_full(scores, targets[start:start + 2048]))
    full = hr_ndcg(np.concatenate(ranks))
    # Popularity as a one-dimensional "user vector . item vector" for the sampled protocol.
    negatives = sample_negatives([h.items for h, _ in split.test], targets, len(vocab),
                                 np.random.default_rng(0))
    sampled = hr_ndcg(ranks_sampled(np.ones((len(targets), 1), np.float32),
                                    counts[:, None].astype(np.float32), targets, negatives))
    return {"full": full, "sampled": sampled}


def bench(name: str, max_minutes: float, registry: Path) -> dict[str, object]:
    path = FILES[name]
    started = time.monotonic()
    version = Path(shopstream("export", "train", "--data", str(path), "--out", str(registry),
                              "--max-minutes", str(max_minutes), "--quiet"))
    seconds = time.monotonic() - started
    meta = json.loads((version / "metadata.json").read_text())
    full = json.loads(shopstream("export", "evaluate", "--model", str(version), "--data",
                                 str(path), "--quiet"))
    sampled = json.loads(shopstream("export", "evaluate", "--model", str(version), "--data",
                                    str(path), "--protocol", "sampled", "--quiet"))
    int8 = meta["metrics"]["test_onnx_int8_full"]
    return {
        "data": str(path), "version": version.name,
        "command": f"shopstream export train --data {path} --max-minutes {max_minutes}",
        "train_and_export_seconds": round(seconds, 1),
        "training_seconds": meta["train"]["seconds"],
        "epochs_run": meta["train"]["epochs_run"], "best_epoch": meta["train"]["best_epoch"],
        "model_full": full, "model_sampled": sampled, "model_int8_full": int8,
        "int8_loss_ndcg@10": full["ndcg@10"] - int8["ndcg@10"],
        "popularity": popularity(path), "reference_full": REFERENCE[name],
        "ratio_to_reference": {k: full[k] / v for k, v in REFERENCE[name].items()},
        "meets_bar": full["hr@10"] >= REFERENCE[name]["hr@10"]
        and full["ndcg@10"] >= REFERENCE[name]["ndcg@10"],
    }


def plot(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4), squeeze=False)
    for ax, (name, r) in zip(axes[0], results.items(), strict=True):
        rows = {"popularity": r["popularity"]["full"], "model int8": r["model_int8_full"],
                "model fp32": r["model_full"], "ICLRec (published)": r["reference_full"]}
        x = np.arange(2)
        for i, (label, m) in enumerate(rows.items()):
            ax.bar(x + i * 0.2, [m["hr@10"], m["ndcg@10"]], width=0.2, label=label)
        ax.set_xticks(x + 0.3, ["HR@10", "NDCG@10"])
        ax.set_title(f"{name}: full ranking, test split")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", choices=sorted(FILES), default=["beauty", "toys"])
    parser.add_argument("--max-minutes", type=float, default=18.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    with tempfile.TemporaryDirectory() as registry:
        for name in args.data:
            results[name] = r = bench(name, args.max_minutes, Path(registry))
            print(f"\n{name}: trained and exported in {r['train_and_export_seconds']:.0f} s "
                  f"({r['epochs_run']} epochs, best {r['best_epoch']})")
            print(f"  {'':22} {'HR@10':>8} {'NDCG@10':>8} {'HR@20':>8} {'NDCG@20':>8}")
            for label, m in (("popularity", r["popularity"]["full"]),
                             ("model (ONNX fp32)", r["model_full"]),
                             ("model (ONNX int8)", r["model_int8_full"]),
                             ("ICLRec published", r["reference_full"]),
                             ("ratio model/ICLRec", r["ratio_to_reference"])):
                print(f"  {label:22} {m['hr@10']:8.4f} {m['ndcg@10']:8.4f} "
                      f"{m['hr@20']:8.4f} {m['ndcg@20']:8.4f}")
            print(f"  sampled (100 negatives): model HR@10 {r['model_sampled']['hr@10']:.4f} "
                  f"NDCG@10 {r['model_sampled']['ndcg@10']:.4f}; popularity HR@10 "
                  f"{r['popularity']['sampled']['hr@10']:.4f}")
            print(f"  meets the bar: {r['meets_bar']}")
    (args.out / "model_quality.json").write_text(json.dumps(results, indent=2))
    plot(results, args.out / "model_quality.png")
    print(f"\nwrote {args.out / 'model_quality.json'} and {args.out / 'model_quality.png'}")


if __name__ == "__main__":
    main()
