from __future__ import annotations

import numpy as np
import pytest
import torch

from export.build import new_model
from export.onnx_export import (
    check_parity,
    export_fp16,
    export_fp32,
    export_int8,
    session,
)


@pytest.fixture
def exported(tmp_path):
    torch.manual_seed(0)
    model = new_model(60, None, max_len=12, dim=16)
    with torch.no_grad():  # spread-out vectors, so the top-K has no near ties
        model.item_emb.weight.normal_(0, 1.0)
        model.item_emb.weight[0].zero_()
    path = tmp_path / "model.onnx"
    graph = export_fp32(model, path, top_k=10)
    return graph, path


def _feeds(batch, length=12, n_exclude=4, seed=0):
    rng = np.random.default_rng(seed)
    items = rng.integers(1, 60, size=(batch, length))
    items[0, : length // 2] = 0  # one left-padded row
    events = np.where(items > 0, rng.integers(1, 5, size=items.shape), 0)
    exclude = rng.integers(1, 60, size=(batch, n_exclude))
    return {"item_seq": items, "event_type": events, "exclude": exclude}


@pytest.mark.parametrize("batch", [1, 33])
def test_onnx_matches_pytorch(exported, batch):
    graph, path = exported
    parity = check_parity(graph, path, _feeds(batch))
    assert parity.batch == batch
    assert parity.ok, parity


def test_shorter_windows_are_accepted_and_match(exported):
    graph, path = exported
    assert check_parity(graph, path, _feeds(4, length=5)).ok


def test_excluded_items_and_padding_never_come_back(exported):
    _, path = exported
    feeds = _feeds(8)
    top_items, top_scores, user_vec = session(path).run(None, feeds)
    assert top_items.shape == (8, 10) and user_vec.shape == (8, 16)
    for row, banned in zip(top_items, feeds["exclude"], strict=True):
        assert not set(row.tolist()) & (set(banned.tolist()) | {0})
    assert (np.diff(top_scores, axis=1) <= 0).all()  # best first


def test_top_scores_are_user_vec_dot_item_table(exported):
    graph, path = exported
    top_items, top_scores, user_vec = session(path).run(None, _feeds(3))
    table = graph.table.numpy()
    expected = np.einsum("bd,bkd->bk", user_vec, table[top_items])
    np.testing.assert_allclose(top_scores, expected, rtol=1e-4, atol=1e-4)


def test_fp16_and_int8_variants_rank_like_fp32(exported, tmp_path):
    _, path = exported
    export_fp16(path, tmp_path / "model.fp16.onnx")
    export_int8(path, tmp_path / "model.int8.onnx")
    feeds = _feeds(16)
    ref = session(path).run(None, feeds)[0]
    for name in ("model.fp16.onnx", "model.int8.onnx"):
        top = session(tmp_path / name).run(None, feeds)[0]
        assert top.shape == ref.shape and top.dtype == np.int64
        overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, ref, strict=True)])
        assert overlap >= 0.7, (name, overlap)


def test_serving_encodes_only_the_newest_position_with_the_same_result(exported):
    graph, _ = exported
    feeds = _feeds(5)
    items, events = (torch.from_numpy(feeds[n]) for n in ("item_seq", "event_type"))
    with torch.no_grad():
        full = graph.model.encode(items, events)  # every position, as in training
        last = graph.model.encode(items, events, last_only=True)
    assert last.shape == (5, 1, 16)
    torch.testing.assert_close(last[:, 0], full[:, -1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n_exclude", [1, 15, 40])
def test_excluding_the_best_items_gives_the_next_best(exported, n_exclude):
    graph, path = exported
    feeds = _feeds(4)
    user_vec = session(path).run(None, feeds)[2]
    scores = user_vec @ graph.table.numpy().T  # [B, 60]
    scores[:, 0] = -np.inf
    order = np.argsort(-scores, axis=1)
    feeds["exclude"] = order[:, :n_exclude]  # the items the graph would rank first
    top_items = session(path).run(None, feeds)[0]
    np.testing.assert_array_equal(top_items, order[:, n_exclude:n_exclude + 10])


def test_a_catalog_smaller_than_k_plus_exclusions_still_scores(tmp_path):
    torch.manual_seed(1)
    model = new_model(10, None, max_len=6, dim=8)  # 9 items: top 8 plus exclusions do not fit
    path = tmp_path / "tiny.onnx"
    export_fp32(model, path, top_k=8)
    for width in (1, 3):
        feeds = _feeds(2, length=6, n_exclude=width)
        feeds["item_seq"] = feeds["item_seq"] % 10
        feeds["exclude"] = feeds["exclude"] % 10
        top_items, top_scores, _ = session(path).run(None, feeds)
        for row, banned, scores in zip(top_items, feeds["exclude"], top_scores, strict=True):
            allowed = scores > -np.inf
            assert not set(row[allowed].tolist()) & (set(banned.tolist()) | {0})
