"""Evaluating the exported graph itself, the artefact that is served.

Full ranking reads the rank of the target from the graph's own top-K, with the user's
whole history in ``exclude``. The sampled protocol scores the target and 100 sampled
negatives with the graph's ``user_vec`` against ``item_embeddings.npy``, the table the graph
scores against.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from export.metrics import (
    KS,
    hr_ndcg,
    ranks_from_top,
    ranks_sampled,
    sample_negatives,
)
from export.onnx_export import session
from export.sequences import UserSeq, left_pad


def run_graph(path: Path, cases: list[tuple[UserSeq, int]], max_len: int, batch: int = 512,
              progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(top_items [U, K], user_vec [U, D]) for every case, in the order given."""
    sess = session(path)
    order = np.argsort([len(h.items) for h, _ in cases], kind="stable")
    tops: list[np.ndarray] = []
    vecs: list[np.ndarray] = []
    starts = range(0, len(cases), batch)
    for start in tqdm(starts, desc="evaluating", unit="batch",
                      disable=None if progress else True):
        chunk = [cases[i][0] for i in order[start:start + batch]]
        width = min(max_len, max(len(h.items) for h in chunk))
        feeds = {
            "item_seq": left_pad([h.items for h in chunk], width).numpy(),
            "event_type": left_pad([h.events for h in chunk], width).numpy(),
            "exclude": left_pad([h.items for h in chunk], max(len(h.items) for h in chunk)).numpy(),
        }
        top_items, _, user_vec = sess.run(["top_items", "top_scores", "user_vec"], feeds)
        tops.append(top_items)
        vecs.append(user_vec)
    top_all = np.empty((len(cases), tops[0].shape[1]), dtype=np.int64)
    vec_all = np.empty((len(cases), vecs[0].shape[1]), dtype=np.float32)
    top_all[order] = np.concatenate(tops)
    vec_all[order] = np.concatenate(vecs)
    return top_all, vec_all


def evaluate_graph(path: Path, cases: list[tuple[UserSeq, int]], meta: dict[str, Any],
                   protocol: str = "full", table: np.ndarray | None = None, seed: int = 0,
                   progress: bool = False) -> dict[str, float]:
    """HR@K and NDCG@K (K = 5, 10, 20) of the graph at ``path`` on the held-out ``cases``."""
    if not cases:
        raise ValueError("no users with enough events to evaluate")
    targets = np.array([t for _, t in cases], dtype=np.int64)
    top_items, user_vec = run_graph(path, cases, int(meta["max_len"]), progress=progress)
    if protocol == "full":
        if top_items.shape[1] < max(KS):
            raise ValueError(f"the graph returns top {top_items.shape[1]}; need {max(KS)}")
        return hr_ndcg(ranks_from_top(top_items, targets))
    if table is None:
        raise ValueError("the sampled protocol needs the item table")
    rng = np.random.default_rng(seed)
    negatives = sample_negatives([h.items for h, _ in cases], targets, len(table), rng)
    return hr_ndcg(ranks_sampled(user_vec, table, targets, negatives))
