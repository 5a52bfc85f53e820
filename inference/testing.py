"""Build small random models that honour the ONNX contract, in a registry folder layout.

Tests and benchmarks use these so they do not depend on the export package. The model is a
plain causal-free attention encoder over a left-padded window (item + event-type +
position embeddings, pre-norm blocks), the user vector is the last position's output and
items are scored by a dot product with the (tied) item embeddings. Top-K and exclusion
happen inside the graph, as the contract asks.

Positions are counted from the right (the newest event is always position ``max_len-1``),
so a window trimmed of its left padding scores exactly as the padded one; with
``dynamic_len=True`` the exported graph accepts any length up to ``max_len``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from inference.registry import write_current

EVENT_TYPES = {"pad": 0, "view": 1, "click": 2, "add_to_cart": 3, "purchase": 4}
INPUT_NAMES = ["item_seq", "event_type", "exclude"]
OUTPUT_NAMES = ["top_items", "top_scores", "user_vec"]


class AttentionBlock(nn.Module):
    """Pre-norm self-attention plus feed-forward, written with plain ops so it exports."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor, pad_bias: torch.Tensor,
                last_only: bool = False) -> torch.Tensor:
        """[B, L, D] -> [B, L, D], or [B, 1, D] for the newest position alone."""
        b, length, dim = x.shape
        head_dim = dim // self.heads
        qkv = self.qkv(self.norm1(x)).view(b, length, 3, self.heads, head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, H, L, Dh]
        if last_only:  # the last block only feeds the user vector: one query, not L
            q, x = q[:, :, -1:], x[:, -1:]  # [B, H, 1, Dh], [B, 1, D]
        att = torch.softmax(q @ k.transpose(-1, -2) * head_dim**-0.5 + pad_bias, dim=-1)
        mixed = (att @ v).transpose(1, 2).reshape(b, -1, dim)  # [B, Lq, D]
        x = x + self.out(mixed)
        return x + self.ff(self.norm2(x))


class TinyRecModel(nn.Module):
    """Scores every item for a window; returns (top_items, top_scores, user_vec)."""

    def __init__(self, n_items: int, dim: int, layers: int, max_len: int, top_k: int,
                 heads: int = 2) -> None:
        super().__init__()
        self.max_len = max_len
        self.top_k = top_k
        self.items = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.types = nn.Embedding(len(EVENT_TYPES), dim)
        self.positions = nn.Embedding(max_len, dim)
        self.blocks = nn.ModuleList(AttentionBlock(dim, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def encode(self, item_seq: torch.Tensor, event_type: torch.Tensor) -> torch.Tensor:
        length = item_seq.shape[1]
        pos = torch.arange(length) + (self.max_len - length)  # right-aligned positions
        h = self.items(item_seq) + self.types(event_type) + self.positions(pos)  # [B, L, D]
        pad = item_seq == 0
        # the newest slot always attends, so an empty window gives a vector, not NaN
        pad = torch.cat([pad[:, :-1], torch.zeros_like(pad[:, -1:])], dim=1)
        pad_bias = pad[:, None, None, :].float() * -1e9  # [B, 1, 1, L]
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            h = block(h, pad_bias, last_only=i == last)
        return self.norm(h[:, -1])  # [B, D]

    def forward(self, item_seq: torch.Tensor, event_type: torch.Tensor,
                exclude: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        user_vec = self.encode(item_seq, event_type)  # [B, D]
        scores = user_vec @ self.items.weight.T  # [B, N+1]
        # index 0 (padding) is always excluded, whatever the caller sends
        never = torch.cat([torch.zeros_like(exclude[:, :1]), exclude], dim=1)  # [B, E+1]
        # The best K allowed items are among the best K+E+1 of all, so exclusion only
        # touches that short list instead of copying the whole [B, N+1] score matrix.
        wide = min(self.top_k + never.shape[1], self.items.num_embeddings)
        cand_scores, cand_items = scores.topk(wide, dim=1)  # [B, K+E+1]
        banned = (cand_items[:, :, None] == never[:, None, :]).any(dim=2)  # [B, K+E+1]
        cand_scores = cand_scores.masked_fill(banned, float("-inf"))
        top_scores, order = cand_scores.topk(self.top_k, dim=1)  # [B, K]
        top_items = cand_items.gather(1, order)
        return top_items, top_scores, user_vec


def random_model(n_items: int = 60, dim: int = 16, layers: int = 1, max_len: int = 8,
                 top_k: int = 20, seed: int = 0) -> TinyRecModel:
    """A model with random weights (item vectors a little larger than the default init)."""
    torch.manual_seed(seed)
    model = TinyRecModel(n_items, dim, layers, max_len, top_k)
    with torch.no_grad():
        model.items.weight.normal_(0.0, 0.5)
        model.items.weight[0].zero_()
    return model.eval()


def export_onnx(model: TinyRecModel, path: Path, dynamic_len: bool = True) -> None:
    """Export with dynamic batch (and exclude width; and window length when asked)."""
    b, length = 2, model.max_len
    example = (
        torch.randint(1, model.items.num_embeddings, (b, length)),
        torch.randint(1, len(EVENT_TYPES), (b, length)),
        torch.zeros(b, 3, dtype=torch.long),
    )
    seq_axes = {0: "batch", 1: "window"} if dynamic_len else {0: "batch"}
    with torch.no_grad():
        torch.onnx.export(
            model, example, str(path), dynamo=False, opset_version=17,
            input_names=INPUT_NAMES, output_names=OUTPUT_NAMES,
            dynamic_axes={"item_seq": seq_axes, "event_type": seq_axes,
                          "exclude": {0: "batch", 1: "excluded"},
                          "top_items": {0: "batch"}, "top_scores": {0: "batch"},
                          "user_vec": {0: "batch"}},
        )


def build_version(model_dir: Path, version: str | None = None, *, n_items: int = 60,
                  dim: int = 16, layers: int = 1, max_len: int = 8, top_k: int = 20,
                  seed: int = 0, item_ids: Sequence[str] | None = None,
                  dynamic_len: bool = True, make_current: bool = True,
                  parent_version: str | None = None) -> Path:
    """Write ``<model_dir>/<version>/`` (model.onnx, item_embeddings.npy, metadata.json).

    Item ids default to "1".."n_items" (index i holds item "i"). Returns the folder.
    """
    created_ms = int(time.time() * 1000)
    if version is None:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(created_ms / 1000))
        version = f"v{stamp}-{hashlib.sha256(str(seed).encode()).hexdigest()[:6]}"
    ids = [str(i) for i in range(1, n_items + 1)] if item_ids is None else list(item_ids)
    if len(ids) != n_items:
        raise ValueError(f"{len(ids)} item ids for {n_items} items")
    folder = Path(model_dir) / version
    folder.mkdir(parents=True, exist_ok=False)
    model = random_model(n_items, dim, layers, max_len, top_k, seed)
    export_onnx(model, folder / "model.onnx", dynamic_len=dynamic_len)
    np.save(folder / "item_embeddings.npy",
            model.items.weight.detach().numpy().astype(np.float32))
    metadata = {
        "version": version,
        "created_ts": created_ms,
        "parent_version": parent_version,
        "item_ids": ["", *ids],
        "max_len": max_len,
        "top_k": top_k,
        "dim": dim,
        "event_types": EVENT_TYPES,
        "data_fingerprint": hashlib.sha256(f"random-{seed}".encode()).hexdigest(),
        "metrics": {},
        "variants": {"fp32": "model.onnx"},
        "train": {"random_seed": seed, "layers": layers},
    }
    (folder / "metadata.json").write_text(json.dumps(metadata))
    if make_current:
        write_current(model_dir, version)
    return folder


def load_torch_model(folder: Path) -> TinyRecModel:
    """Rebuild the eager model a folder was exported from (same seed, same weights)."""
    meta = json.loads((Path(folder) / "metadata.json").read_text())
    return random_model(len(meta["item_ids"]) - 1, meta["dim"], meta["train"]["layers"],
                        meta["max_len"], meta["top_k"], meta["train"]["random_seed"])
