"""Item vocabulary, leave-one-out split and length-grouped training batches.

Internal item indices start at 1; index 0 is padding. A vocabulary only ever grows, so a
model fine-tuned from a parent keeps every old item at its old index.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from export.data import Interactions


class ItemVocab:
    def __init__(self, item_ids: list[str] | None = None) -> None:
        self.item_ids: list[str] = list(item_ids) if item_ids else [""]
        if self.item_ids[0] != "":
            raise ValueError("index 0 of a vocabulary is the padding entry ''")
        self.index = {item: i for i, item in enumerate(self.item_ids) if i}

    def __len__(self) -> int:
        return len(self.item_ids)

    def add(self, item: str) -> int:
        idx = self.index.get(item)
        if idx is None:
            idx = len(self.item_ids)
            self.item_ids.append(item)
            self.index[item] = idx
        return idx


@dataclass
class UserSeq:
    items: np.ndarray  # int64 [n] internal indices, time order
    events: np.ndarray  # int64 [n] event codes


def encode(data: Interactions, vocab: ItemVocab) -> list[UserSeq]:
    """Map every user's events to internal indices, adding unseen items to ``vocab``.

    Items are added in order of first appearance so a fixed file gives fixed indices.
    """
    seqs = []
    for events in data.users.values():
        items = np.fromiter((vocab.add(item) for item, _ in events), np.int64, len(events))
        codes = np.fromiter((code for _, code in events), np.int64, len(events))
        seqs.append(UserSeq(items, codes))
    for item in data.titles:
        vocab.add(item)  # catalog items without interactions still get an index
    return seqs


@dataclass
class Split:
    train: list[UserSeq]  # what the model learns from
    valid: list[tuple[UserSeq, int]]  # (history, target) for early stopping
    test: list[tuple[UserSeq, int]]  # (history, target) for the reported figures


def leave_one_out(seqs: list[UserSeq]) -> Split:
    """Last item is the test target, second-last the validation target, the rest trains.

    Users with fewer than three events have nothing to hold out: they only train.
    """
    split = Split([], [], [])
    for s in seqs:
        n = len(s.items)
        if n < 3:
            split.train.append(s)
            continue
        split.train.append(UserSeq(s.items[:-2], s.events[:-2]))
        split.valid.append((UserSeq(s.items[:-2], s.events[:-2]), int(s.items[-2])))
        split.test.append((UserSeq(s.items[:-1], s.events[:-1]), int(s.items[-1])))
    return split


def left_pad(rows: list[np.ndarray], width: int) -> torch.Tensor:
    """Stack 1-d arrays into [len(rows), width], keeping each row's last ``width`` values."""
    out = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        tail = row[-width:] if width else row[:0]
        if len(tail):
            out[i, width - len(tail):] = tail
    return torch.from_numpy(out)


@dataclass
class TrainBatch:
    items: torch.Tensor  # [B, Lb] inputs, left-padded
    events: torch.Tensor  # [B, Lb]
    targets: torch.Tensor  # [B, Lb] next item at each position, 0 where nothing to learn


def train_batches(seqs: list[UserSeq], max_len: int, batch_size: int,
                  rng: np.random.Generator) -> Iterator[TrainBatch]:
    """Batches of users with similar lengths, in random order.

    Each batch is only as wide as its longest sequence, so short histories (most of them)
    do not pay for padding to ``max_len``.
    """
    usable = [s for s in seqs if len(s.items) >= 2]
    lengths = np.array([min(len(s.items) - 1, max_len) for s in usable])
    # Sort by length with a random tie-break so batch members change between epochs.
    order = np.lexsort((rng.random(len(usable)), lengths))
    chunks = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    for c in rng.permutation(len(chunks)):
        members = [usable[i] for i in chunks[c]]
        width = int(lengths[chunks[c]].max())
        yield TrainBatch(
            items=left_pad([s.items[:-1] for s in members], width),
            events=left_pad([s.events[:-1] for s in members], width),
            targets=left_pad([s.items[1:] for s in members], width),
        )


def eval_inputs(cases: list[tuple[UserSeq, int]], max_len: int
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(items [B, Lb], events [B, Lb], targets [B]) for a list of (history, target)."""
    width = max(1, min(max_len, max(len(h.items) for h, _ in cases)))
    items = left_pad([h.items for h, _ in cases], width)
    events = left_pad([h.events for h, _ in cases], width)
    targets = torch.tensor([t for _, t in cases], dtype=torch.int64)
    return items, events, targets
