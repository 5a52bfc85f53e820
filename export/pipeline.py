"""``export train`` end to end: load, split, train, export, check, evaluate, publish."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from export import GRAPH_TOP_K, build, registry
from export.data import EVENT_CODES, Interactions, load
from export.model import SeqRec
from export.onnx_eval import evaluate_graph
from export.onnx_export import (
    PARITY_ATOL,
    check_parity,
    export_fp16,
    export_fp32,
    export_int8,
)
from export.plots import training_curve
from export.sequences import ItemVocab, Split, encode, leave_one_out, left_pad
from export.text import title_matrix
from export.train import TrainConfig, TrainResult, evaluate, fit

log = logging.getLogger(__name__)


class ParityError(RuntimeError):
    """The exported graph does not compute what the trained model computes."""


@dataclass
class TrainRequest:
    data: Path
    out: Path
    fmt: str = "seq"
    parent: Path | None = None
    titles: Path | None = None
    top_k: int = GRAPH_TOP_K
    train: TrainConfig = field(default_factory=TrainConfig)
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig fields but n_items
    progress: bool = True


def run(req: TrainRequest) -> Path:
    """Train and publish a new version under ``req.out``; returns its folder."""
    torch.manual_seed(req.train.seed)
    data = load(req.data, req.fmt, req.titles)
    parent_meta = registry.read_metadata(req.parent) if req.parent else None
    vocab = ItemVocab(parent_meta["item_ids"] if parent_meta else None)
    old_size = len(vocab)
    split = leave_one_out(encode(data, vocab))
    log.info("data: %d users, %d events, %d items", len(data.users), data.n_events, len(vocab))

    text = title_matrix(vocab.item_ids, data.titles)
    if req.parent is not None:
        if not (req.parent / build.CHECKPOINT).is_file():
            raise registry.RegistryError(f"{req.parent} has no {build.CHECKPOINT} to continue from")
        parent = build.load_checkpoint(req.parent / build.CHECKPOINT)
        if parent.cfg.n_items != old_size:
            raise registry.RegistryError(f"{req.parent}: checkpoint and item list disagree")
        model = build.grow(parent, len(vocab), text)
        build.mark_known(model, split.train, also=parent.known)
    else:
        model = build.new_model(len(vocab), text, **req.model)
        build.mark_known(model, split.train)
    if len({int(c) for s in split.train for c in np.unique(s.events)}) <= 1:
        # One event type in the data: its embedding would only be a constant offset that
        # events of other types at serving time lack. Keep all of them at zero.
        model.event_emb.weight.requires_grad_(False)

    result = fit(model, split, req.train, progress=req.progress)
    metrics: dict[str, Any] = {"valid_torch": result.best_valid}
    if split.test:
        metrics["test_torch"] = evaluate(model, split.test)

    staging = registry.staging_dir(req.out)
    try:
        return _export(req, model, split, result, metrics, staging, data, vocab, parent_meta)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _export(req: TrainRequest, model: SeqRec, split: Split, result: TrainResult,
            metrics: dict[str, Any], staging: Path, data: Interactions, vocab: ItemVocab,
            parent_meta: dict[str, Any] | None) -> Path:
    name = registry.version_name(data.fingerprint)
    graph = export_fp32(model, staging / "model.onnx", min(req.top_k, len(vocab) - 1))
    feeds = [_parity_feeds(split.test, b, model.cfg.max_len) for b in (1, 16)]
    parity = [check_parity(graph, staging / "model.onnx", f) for f in feeds]
    if not all(p.ok for p in parity):
        raise ParityError(f"ONNX output differs from PyTorch: {parity}")
    export_fp16(staging / "model.onnx", staging / "model.fp16.onnx")
    export_int8(staging / "model.onnx", staging / "model.int8.onnx")
    table = graph.table.numpy()
    np.save(staging / "item_embeddings.npy", table)
    build.save_checkpoint(model, staging / build.CHECKPOINT)
    training_curve(result.history, result.best_epoch, staging / "training_curve.png")

    meta: dict[str, Any] = {
        "version": name,
        "created_ts": int(time.time() * 1000),
        "parent_version": parent_meta["version"] if parent_meta else None,
        "item_ids": vocab.item_ids,
        "max_len": model.cfg.max_len,
        "top_k": graph.top_k,
        "dim": model.cfg.dim,
        "event_types": EVENT_CODES,
        "data_fingerprint": data.fingerprint,
        "variants": {"fp32": "model.onnx", "fp16": "model.fp16.onnx",
                     "int8": "model.int8.onnx"},
        "parity": {"atol": PARITY_ATOL,
                   "max_abs_diff": {str(p.batch): p.max_abs_diff for p in parity}},
        "train": {**req.train.to_dict(), **model.cfg.to_dict(), "data": str(req.data),
                  "format": req.fmt, "epochs_run": len(result.history),
                  "best_epoch": result.best_epoch, "stopped": result.stopped,
                  "seconds": round(result.seconds, 1)},
        "history": result.history,
    }
    if split.test and graph.top_k >= 20:
        metrics["test_onnx_full"] = evaluate_graph(staging / "model.onnx", split.test, meta)
        metrics["test_onnx_int8_full"] = evaluate_graph(
            staging / "model.int8.onnx", split.test, meta)
        metrics["test_onnx_sampled"] = evaluate_graph(
            staging / "model.onnx", split.test, meta, protocol="sampled", table=table)
    meta["metrics"] = metrics
    registry.write_metadata(staging, meta)
    return registry.publish(staging, req.out, name)


def _parity_feeds(cases: list[Any], batch: int, max_len: int) -> dict[str, np.ndarray]:
    """Real histories where there are some (first ``batch`` users), else a dummy window."""
    chosen = cases[:batch]
    if not chosen:
        one = np.ones((batch, 1), dtype=np.int64)
        return {"item_seq": one, "event_type": one, "exclude": np.zeros_like(one)}
    width = max(len(h.items) for h, _ in chosen)
    items = left_pad([h.items for h, _ in chosen], width).numpy()
    events = left_pad([h.events for h, _ in chosen], width).numpy()
    return {"item_seq": items[:, -max_len:], "event_type": events[:, -max_len:],
            "exclude": items}
