"""Hit rate and NDCG at K from the rank of each held-out item (0 = ranked first)."""

from __future__ import annotations

import numpy as np

KS = (5, 10, 20)
SAMPLED_NEGATIVES = 100


def hr_ndcg(ranks: np.ndarray, ks: tuple[int, ...] = KS) -> dict[str, float]:
    """``hr@k`` and ``ndcg@k`` averaged over users; one relevant item per user."""
    ranks = np.asarray(ranks, dtype=np.float64)
    out: dict[str, float] = {}
    for k in ks:
        out[f"hr@{k}"] = float(np.mean(ranks < k)) if len(ranks) else 0.0
    for k in ks:
        gains = np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)
        out[f"ndcg@{k}"] = float(np.mean(gains)) if len(ranks) else 0.0
    return out


def ranks_full(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Rank of each target among all items: how many items score strictly higher.

    ``scores`` [B, N+1] must already hold -inf for excluded items and padding.
    """
    target_scores = scores[np.arange(len(targets)), targets][:, None]
    return (scores > target_scores).sum(axis=1)


def ranks_from_top(top_items: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Rank of each target from a top-K list; K (a miss) when the target is not in it."""
    hits = top_items == targets[:, None]
    return np.where(hits.any(axis=1), hits.argmax(axis=1), top_items.shape[1])


def sample_negatives(histories: list[np.ndarray], targets: np.ndarray, n_items: int,
                     rng: np.random.Generator, n: int = SAMPLED_NEGATIVES) -> np.ndarray:
    """[B, n] items drawn uniformly from 1..n_items-1, none in the history or the target."""
    out = np.empty((len(targets), n), dtype=np.int64)
    for row, (hist, target) in enumerate(zip(histories, targets, strict=True)):
        seen = set(hist.tolist()) | {int(target)}
        if n_items - 1 - len(seen) < n:
            raise ValueError("too few items to draw the sampled negatives from")
        picked: set[int] = set()
        while len(picked) < n:
            for cand in rng.integers(1, n_items, size=2 * n).tolist():
                if cand not in seen and cand not in picked and len(picked) < n:
                    picked.add(cand)
        out[row] = sorted(picked)
    return out


def ranks_sampled(user_vecs: np.ndarray, table: np.ndarray, targets: np.ndarray,
                  negatives: np.ndarray) -> np.ndarray:
    """Rank of each target against its sampled negatives, scored as ``user_vec . item``."""
    target_scores = np.einsum("bd,bd->b", user_vecs, table[targets])  # [B]
    neg_scores = np.einsum("bd,bnd->bn", user_vecs, table[negatives])  # [B, n]
    return (neg_scores > target_scores[:, None]).sum(axis=1)
