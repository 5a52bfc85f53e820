"""Making a model for a dataset: a fresh one, or one grown from a parent version.

Growing keeps every parent item at its index with its learned vector; new items get a row
from their title where they have one, else a small random one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from export.model import ModelConfig, SeqRec
from export.sequences import UserSeq
from export.text import TEXT_DIM

CHECKPOINT = "checkpoint.pt"


def new_model(n_items: int, text: np.ndarray | None, **config: Any) -> SeqRec:
    cfg = ModelConfig(n_items=n_items, text_dim=TEXT_DIM if text is not None else 0, **config)
    model = SeqRec(cfg)
    if text is not None:
        _set_text(model, text, rows=range(n_items))
    return model


def _set_text(model: SeqRec, text: np.ndarray, rows: range) -> None:
    """Fill title vectors for ``rows``; titled items start from their title alone."""
    with torch.no_grad():
        block = torch.from_numpy(text[rows.start:rows.stop])
        model.text[rows.start:rows.stop] = block
        titled = block.abs().sum(1) > 0
        model.item_emb.weight[rows.start:rows.stop][titled] = 0.0


def grow(parent: SeqRec, n_items: int, text: np.ndarray | None) -> SeqRec:
    """A copy of ``parent`` whose vocabulary has ``n_items`` entries (at least the parent's)."""
    old = parent.cfg
    if n_items < old.n_items:
        raise ValueError("a grown vocabulary cannot be smaller than the parent's")
    text_dim = TEXT_DIM if (old.text_dim or text is not None) else 0
    fields: dict[str, Any] = {**old.to_dict(), "n_items": n_items, "text_dim": text_dim}
    cfg = ModelConfig(**fields)
    child = SeqRec(cfg)
    state = {k: v for k, v in parent.state_dict().items()
             if k not in ("item_emb.weight", "text", "known")}
    child.load_state_dict(state, strict=False)  # text_proj is fresh if the parent had none
    with torch.no_grad():
        child.item_emb.weight[:old.n_items] = parent.item_emb.weight
        if old.text_dim:
            child.text[:old.n_items] = parent.text
    if text is not None:
        _set_text(child, text, rows=range(old.n_items, n_items))
    return child


def mark_known(model: SeqRec, train: list[UserSeq], also: torch.Tensor | None = None) -> None:
    """Record which items have training interactions (see ``SeqRec.known``)."""
    known = torch.zeros(model.cfg.n_items, dtype=torch.bool)
    for seq in train:
        known[torch.from_numpy(seq.items)] = True
    if also is not None:
        known[: len(also)] |= also
    known[0] = False
    model.known.copy_(known)


def save_checkpoint(model: SeqRec, path: Path) -> None:
    torch.save({"config": model.cfg.to_dict(), "state": model.state_dict()}, path)


def load_checkpoint(path: Path) -> SeqRec:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = SeqRec(ModelConfig(**blob["config"]))
    model.load_state_dict(blob["state"])
    return model
