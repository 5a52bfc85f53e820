from __future__ import annotations

import numpy as np
import pytest

from export.metrics import hr_ndcg, ranks_from_top, ranks_full, sample_negatives


def test_hr_and_ndcg_from_ranks():
    m = hr_ndcg(np.array([0, 4, 9, 30]))
    assert m["hr@5"] == pytest.approx(0.5)
    assert m["hr@10"] == pytest.approx(0.75)
    assert m["hr@20"] == pytest.approx(0.75)
    assert m["ndcg@5"] == pytest.approx((1 + 1 / np.log2(6)) / 4)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / np.log2(6) + 1 / np.log2(11)) / 4)


def test_full_rank_counts_strictly_better_items():
    scores = np.array([[-np.inf, 0.1, 0.9, 0.5, -np.inf]])
    assert ranks_full(scores, np.array([3])).tolist() == [1]
    assert ranks_full(scores, np.array([2])).tolist() == [0]


def test_rank_from_top_list_is_k_on_a_miss():
    top = np.array([[5, 3, 8], [1, 2, 4]])
    assert ranks_from_top(top, np.array([8, 9])).tolist() == [2, 3]


def test_sampled_negatives_avoid_history_and_target():
    rng = np.random.default_rng(1)
    hist = [np.array([1, 2, 3]), np.array([4])]
    neg = sample_negatives(hist, np.array([5, 6]), n_items=300, rng=rng, n=100)
    assert neg.shape == (2, 100)
    assert not set(neg[0]) & {1, 2, 3, 5}
    assert not set(neg[1]) & {4, 6}
    assert all(len(set(row)) == 100 for row in neg)
    assert neg.min() >= 1
