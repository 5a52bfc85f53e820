"""``shopstream export``: train and publish a model version, or evaluate an exported one.

Nothing heavy is imported here at module level; the handlers import torch and friends.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from export import GRAPH_TOP_K
from shopstream.config import Settings


def _fail(message: str) -> int:
    sys.stderr.write(f"shopstream: error: {message}\n")
    return 2


def _train(args: argparse.Namespace, settings: Settings) -> int:
    from export.data import DataError
    from export.pipeline import ParityError, TrainRequest, run
    from export.registry import RegistryError
    from export.train import TrainConfig

    for name in ("epochs", "batch_size", "dim", "layers", "top_k"):
        if getattr(args, name) <= 0:
            return _fail(f"--{name.replace('_', '-')} must be a positive integer")
    if not 0 <= args.dropout < 1:
        return _fail("--dropout must be in [0, 1)")
    model = {"dim": args.dim, "layers": args.layers, "dropout": args.dropout,
             "emb_dropout": args.dropout}
    if args.dim % 2:
        return _fail("--dim must be even (two attention heads)")
    req = TrainRequest(
        data=args.data or settings.export_data, out=args.out or settings.model_dir,
        fmt=args.format, parent=args.parent, titles=args.titles, top_k=args.top_k,
        train=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                          max_minutes=args.max_minutes, seed=args.seed),
        model=model, progress=not args.quiet)
    try:
        version = run(req)
    except (DataError, RegistryError) as exc:
        return _fail(str(exc))
    except ParityError as exc:
        sys.stderr.write(f"shopstream: {exc}\n")
        return 1
    sys.stdout.write(f"{version}\n")
    return 0


def _evaluate(args: argparse.Namespace, settings: Settings) -> int:
    import numpy as np
    import orjson

    from export.data import DataError, load
    from export.onnx_eval import evaluate_graph
    from export.registry import RegistryError, read_metadata
    from export.sequences import ItemVocab, encode, leave_one_out

    try:
        meta = read_metadata(args.model)
        variant = meta["variants"].get(args.variant)
        if variant is None or not (args.model / variant).is_file():
            return _fail(f"{args.model} has no {args.variant} graph")
        data = load(args.data, args.format)
    except (DataError, RegistryError) as exc:
        return _fail(str(exc))
    vocab = ItemVocab(meta["item_ids"])
    unknown = sorted({item for events in data.users.values() for item, _ in events
                      if item not in vocab.index})
    if unknown:
        return _fail(f"{args.data}: {len(unknown)} item ids are not in the model's catalog "
                     f"(out of range), e.g. {unknown[0]!r}")
    split = leave_one_out(encode(data, vocab))
    if not split.test:
        return _fail(f"{args.data}: no user has the 3 events leave-one-out needs")
    table = np.load(args.model / "item_embeddings.npy") if args.protocol == "sampled" else None
    scores = evaluate_graph(args.model / variant, split.test, meta, protocol=args.protocol,
                            table=table, seed=args.seed, progress=not args.quiet)
    sys.stdout.write(orjson.dumps({k: round(v, 6) for k, v in scores.items()}).decode() + "\n")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("export", help="train, evaluate and export the recommendation model")
    actions = p.add_subparsers(dest="export_action", required=True, metavar="ACTION",
                               parser_class=type(p))

    train = actions.add_parser(
        "train", help="train on a log, export to ONNX, publish a version; prints its folder")
    train.add_argument("--data", type=Path, default=None,
                       help="interaction log (default: setting SHOPSTREAM_EXPORT_DATA, "
                            "../shared/data/amazon-beauty.txt)")
    train.add_argument("--format", choices=["seq", "jsonl", "retailrocket"], default="seq")
    train.add_argument("--titles", type=Path, default=None,
                       help='JSONL of {"item_id", "title"} to start item vectors from text')
    train.add_argument("--out", type=Path, default=None,
                       help="model registry folder (default: setting SHOPSTREAM_MODEL_DIR)")
    train.add_argument("--from", dest="parent", type=Path, default=None, metavar="VERSION_DIR",
                       help="continue from this version, keeping its items and weights")
    train.add_argument("--epochs", type=int, default=20,
                       help="most epochs (the learning rate decays over them); training stops "
                            "early when validation stalls")
    train.add_argument("--max-minutes", type=float, default=18.0,
                       help="stop training after this many minutes (0: no limit)")
    train.add_argument("--batch-size", type=int, default=256)
    train.add_argument("--lr", type=float, default=2e-3)
    train.add_argument("--dim", type=int, default=64)
    train.add_argument("--layers", type=int, default=2)
    train.add_argument("--dropout", type=float, default=0.5)
    train.add_argument("--top-k", type=int, default=GRAPH_TOP_K,
                       help="K of the graph's top-K output")
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(func=_train)

    ev = actions.add_parser(
        "evaluate", help="evaluate an exported version on a log; prints one JSON line")
    ev.add_argument("--model", type=Path, required=True, metavar="VERSION_DIR")
    ev.add_argument("--data", type=Path, required=True)
    ev.add_argument("--format", choices=["seq", "jsonl", "retailrocket"], default="seq")
    ev.add_argument("--protocol", choices=["full", "sampled"], default="full",
                    help="rank against all items, or against 100 sampled negatives")
    ev.add_argument("--variant", choices=["fp32", "fp16", "int8"], default="fp32")
    ev.add_argument("--seed", type=int, default=0, help="seed of the sampled negatives")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    ev.set_defaults(func=_evaluate)
