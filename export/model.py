"""SASRec-style causal self-attention over a user's recent items and event types.

    item + event type + position embeddings        [B, L, D]
      -> N x (pre-norm causal self-attention, feed-forward)
      -> layer norm                                 [B, L, D]   one state per position
    training:  every position predicts the next item, softmax over all items
    serving:   the last state is the user vector    [B, D], scored against the item table

The item table is shared between input and output (tied weights). Item vectors can start
from title embeddings: ``item_vectors = text @ proj + residual``; an item that only has a
title still gets ``text @ proj``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ModelConfig:
    n_items: int  # vocabulary size including padding index 0
    max_len: int = 50
    dim: int = 64
    layers: int = 2
    heads: int = 2
    dropout: float = 0.5
    emb_dropout: float = 0.5
    text_dim: int = 0  # width of title vectors; 0 when the catalog has no titles

    def to_dict(self) -> dict[str, int | float]:
        return asdict(self)


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout),
                                nn.Linear(4 * dim, dim))
        self.drop = nn.Dropout(dropout)
        self.attn_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, last_only: bool = False
                ) -> torch.Tensor:
        """[B, L, D] -> [B, L, D]; with ``last_only``, [B, 1, D]: the newest position alone
        asks (keys and values still come from every position)."""
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        if last_only:
            q, x, mask = q[:, -1:], x[:, -1:], mask[:, :, -1:]
        nq = q.shape[1]
        q = q.view(b, nq, self.heads, d // self.heads).transpose(1, 2)  # [B, H, Lq, D/H]
        k, v = (t.view(b, n, self.heads, d // self.heads).transpose(1, 2)
                for t in (k, v))  # [B, H, L, D/H]
        att = (q @ k.transpose(-1, -2)) / math.sqrt(d // self.heads)  # [B, H, Lq, L]
        att = self.attn_drop(att.masked_fill(~mask, float("-inf")).softmax(dim=-1))
        h = (att @ v).transpose(1, 2).reshape(b, nq, d)  # [B, Lq, D]
        x = x + self.drop(self.out(h))
        return x + self.drop(self.ff(self.norm2(x)))


class SeqRec(nn.Module):
    text: torch.Tensor  # [N+1, text_dim] title vectors, zero rows for untitled items
    known: torch.Tensor  # [N+1] bool

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.item_emb = nn.Embedding(cfg.n_items, cfg.dim, padding_idx=0)
        self.event_emb = nn.Embedding(len_event_codes(), cfg.dim, padding_idx=0)
        self.pos_emb = nn.Embedding(cfg.max_len, cfg.dim)
        self.emb_norm = nn.LayerNorm(cfg.dim)
        self.emb_drop = nn.Dropout(cfg.emb_dropout)
        self.blocks = nn.ModuleList(
            Block(cfg.dim, cfg.heads, cfg.dropout) for _ in range(cfg.layers))
        self.final_norm = nn.LayerNorm(cfg.dim)
        # Title vectors (fixed) and their learned projection into the model width.
        self.register_buffer("text", torch.zeros(cfg.n_items, cfg.text_dim))
        self.text_proj = nn.Linear(cfg.text_dim, cfg.dim, bias=False) if cfg.text_dim else None
        # Items with training interactions. The others (titles only, or only held out) are
        # no negatives in the softmax: being pushed down there would bury new items.
        self.register_buffer("known", torch.ones(cfg.n_items, dtype=torch.bool))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Small initial embeddings: N(0, 1) scaled by sqrt(dim) barely learns here.
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        nn.init.zeros_(self.event_emb.weight)  # types unseen in training add nothing
        if self.text_proj is not None:
            # A random projection keeps the titles' similarities; unit title vectors come out
            # at the scale of the id embeddings (std 0.02).
            nn.init.normal_(self.text_proj.weight, std=0.02)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def item_vectors(self) -> torch.Tensor:
        """The item table scored against, [N+1, D]; row 0 (padding) is zero."""
        table = self.item_emb.weight
        if self.text_proj is not None:
            table = table + self.text_proj(self.text)
        pad = torch.ones_like(table[:, :1])
        pad[0] = 0.0
        return table * pad

    def encode(self, items: torch.Tensor, events: torch.Tensor,
               table: torch.Tensor | None = None, last_only: bool = False) -> torch.Tensor:
        """States for every position, [B, L, D]; inputs are left-padded [B, L], L <= max_len.
        With ``last_only`` the last block computes the newest position alone, [B, 1, D]:
        what serving needs, at a fraction of that block's cost."""
        table = self.item_vectors() if table is None else table
        length = items.shape[1]
        # Right-aligned positions: the newest item always has the last position.
        pos = torch.arange(self.cfg.max_len - length, self.cfg.max_len, device=items.device)
        x = F.embedding(items, table) + self.event_emb(events) + self.pos_emb(pos)  # [B, L, D]
        x = self.emb_drop(self.emb_norm(x))
        real = items > 0  # [B, L]
        step = torch.arange(length, device=items.device)
        causal = step[None, :] <= step[:, None]  # [L, L] key not after query
        eye = step[None, :] == step[:, None]
        # Attend to earlier real items; every position sees itself so no row is empty.
        mask = (causal & real[:, None, :]) | eye  # [B, L, L]
        mask = mask[:, None]  # [B, 1, L, L]
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            x = block(x, mask, last_only=last_only and i == last)
        return self.final_norm(x)

    def loss(self, items: torch.Tensor, events: torch.Tensor, targets: torch.Tensor,
             label_smoothing: float = 0.0) -> torch.Tensor:
        """Softmax cross-entropy over all items, only where there is a next item."""
        table = self.item_vectors()
        states = self.encode(items, events, table)  # [B, L, D]
        keep = targets > 0
        # Padding is never a target, so it is left out of the softmax: column j is item j+1.
        logits = states[keep] @ table[1:].T  # [P, N]
        if not bool(self.known[1:].all()):
            logits = logits.masked_fill(~self.known[1:], float("-inf"))
        return F.cross_entropy(logits, targets[keep] - 1, label_smoothing=label_smoothing)

    def user_vectors(self, items: torch.Tensor, events: torch.Tensor) -> torch.Tensor:
        """The last position's state, [B, D]."""
        return self.encode(items, events, last_only=True)[:, -1]


def len_event_codes() -> int:
    from export.data import EVENT_CODES

    return max(EVENT_CODES.values()) + 1


class Recommender(nn.Module):
    """The served graph: user vector, scores over the item table, exclusion, top-K."""

    table: torch.Tensor  # [N+1, D]

    def __init__(self, model: SeqRec, top_k: int) -> None:
        super().__init__()
        self.model = model
        self.top_k = top_k
        self.register_buffer("table", model.item_vectors().detach().clone())

    def forward(self, item_seq: torch.Tensor, event_type: torch.Tensor, exclude: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        user_vec = self.model.encode(item_seq, event_type, self.table, last_only=True)[:, -1]
        scores = user_vec @ self.table.T  # [B, N+1]
        # Index 0 (padding) is never recommended, whatever the caller sends. The best K
        # allowed items are among the best K+E+1 of all, so exclusion works on that short
        # list rather than on a mask as wide as the item table (which cost about a third
        # of a short window's run). Callers keep K+E+1 within the table (engine caps E);
        # a table smaller than that at export time (a tiny catalog) is taken whole instead.
        never = torch.cat([torch.zeros_like(exclude[:, :1]), exclude], dim=1)  # [B, E+1]
        wide = min(self.top_k + never.shape[1], self.table.shape[0])
        cand_scores, cand_items = scores.topk(wide, dim=1)
        banned = (cand_items[:, :, None] == never[:, None, :]).any(dim=2)  # [B, K+E+1]
        cand_scores = cand_scores.masked_fill(banned, float("-inf"))
        top_scores, order = cand_scores.topk(self.top_k, dim=1)  # [B, K]
        return cand_items.gather(1, order), top_scores, user_vec
