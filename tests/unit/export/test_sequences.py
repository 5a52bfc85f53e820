from __future__ import annotations

import numpy as np

from export.data import load
from export.sequences import ItemVocab, encode, leave_one_out, train_batches


def _split(seq_file, users):
    vocab = ItemVocab()
    return vocab, leave_one_out(encode(load(seq_file(users)), vocab))


def test_leave_one_out_holds_out_last_two(seq_file):
    vocab, split = _split(seq_file, {1: [10, 11, 12, 13, 14]})
    idx = [vocab.index[str(i)] for i in (10, 11, 12, 13, 14)]
    assert split.train[0].items.tolist() == idx[:3]
    (vh, vt), = split.valid
    (th, tt), = split.test
    assert vh.items.tolist() == idx[:3] and vt == idx[3]
    assert th.items.tolist() == idx[:4] and tt == idx[4]


def test_short_users_only_train(seq_file):
    _, split = _split(seq_file, {1: [1, 2], 2: [3, 4, 5]})
    assert len(split.train) == 2
    assert len(split.valid) == len(split.test) == 1


def test_vocab_grows_without_moving_old_items():
    vocab = ItemVocab(["", "a", "b"])
    assert vocab.add("c") == 3
    assert vocab.add("a") == 1
    assert vocab.item_ids == ["", "a", "b", "c"]


def test_batches_pair_each_position_with_the_next_item(seq_file):
    _, split = _split(seq_file, {1: [1, 2, 3, 4, 5, 6], 2: [7, 8, 9, 10], 3: [11, 12, 13, 14, 15]})
    rng = np.random.default_rng(0)
    batches = list(train_batches(split.train, max_len=50, batch_size=2, rng=rng))
    assert sum(len(b.items) for b in batches) == 3
    for b in batches:
        real = b.items > 0
        # Inputs and targets are left-padded alike; each target is the next input.
        assert ((b.targets > 0) == real).all()
        both = real[:, :-1] & real[:, 1:]
        assert both.any()
        assert (b.targets[:, :-1][both] == b.items[:, 1:][both]).all()
        # A batch is as wide as its longest member, not max_len.
        assert b.items.shape[1] == int(real.sum(1).max())


def test_batches_truncate_to_max_len(seq_file):
    _, split = _split(seq_file, {1: list(range(1, 30))})
    batch, = train_batches(split.train, max_len=5, batch_size=8, rng=np.random.default_rng(0))
    assert batch.items.shape == (1, 5)
    assert batch.targets[0, -1] == split.train[0].items[-1]
