"""Training with early stopping on validation, and evaluation of the eager model."""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from export.metrics import hr_ndcg, ranks_full
from export.model import SeqRec
from export.sequences import Split, UserSeq, eval_inputs, left_pad, train_batches

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    # Chosen on Beauty's validation split: lr 2e-3 reached lr 1e-3's best in half the epochs;
    # 3e-3 levelled off lower. The best epoch came at 9-16.
    epochs: int = 20
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.0
    warmup_epochs: int = 1
    label_smoothing: float = 0.0
    patience: int = 5  # epochs without a better validation NDCG@10 before stopping
    max_minutes: float = 0.0  # stop training after this long; 0 = no limit
    seed: int = 42
    eval_batch: int = 1024
    # Validation users scored after each epoch (a fixed random subset; 0 = all). Choosing the
    # epoch does not need every user, and scoring all of them costs a quarter of an epoch.
    valid_users: int = 8000

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass
class TrainResult:
    best_epoch: int = 0
    best_valid: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    stopped: str = "epochs"


def _lr_factor(epoch: float, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 10% over the configured epochs."""
    if epoch < cfg.warmup_epochs:
        return (epoch + 1) / (cfg.warmup_epochs + 1)
    span = max(1, cfg.epochs - cfg.warmup_epochs)
    progress = min(1.0, (epoch - cfg.warmup_epochs) / span)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def score_all(model: SeqRec, cases: list[tuple[UserSeq, int]], batch: int = 1024
              ) -> np.ndarray:
    """Rank of each case's target among all items, history items excluded."""
    model.eval()
    table = model.item_vectors()
    # Similar lengths share a batch so short histories are not padded to the longest one.
    order = np.argsort([len(h.items) for h, _ in cases], kind="stable")
    ranks = []
    for start in range(0, len(cases), batch):
        chunk = [cases[i] for i in order[start:start + batch]]
        items, events, targets = eval_inputs(chunk, model.cfg.max_len)
        user_vec = model.encode(items, events, table)[:, -1]  # [B, D]
        scores = user_vec @ table.T  # [B, N+1]
        # The whole history is excluded, as the served graph's exclude input does.
        seen = left_pad([h.items for h, _ in chunk], max(len(h.items) for h, _ in chunk))
        scores.scatter_(1, seen, float("-inf"))  # padding 0 lands on index 0, also excluded
        ranks.append(ranks_full(scores.numpy(), targets.numpy()))
    out = np.zeros(len(cases), dtype=np.int64)
    if ranks:
        out[order] = np.concatenate(ranks)
    return out


def evaluate(model: SeqRec, cases: list[tuple[UserSeq, int]], batch: int = 1024
             ) -> dict[str, float]:
    return hr_ndcg(score_all(model, cases, batch))


def fit(model: SeqRec, split: Split, cfg: TrainConfig, progress: bool = True) -> TrainResult:
    """Train ``model`` in place; it ends holding the weights of the best validation epoch."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    result = TrainResult()
    valid = split.valid
    if cfg.valid_users and len(valid) > cfg.valid_users:
        pick = np.sort(rng.choice(len(valid), cfg.valid_users, replace=False))
        valid = [valid[i] for i in pick]
    best_score, best_state, stale = -1.0, copy.deepcopy(model.state_dict()), 0
    started = time.monotonic()
    epochs = tqdm(range(cfg.epochs), desc="training", unit="epoch",
                  disable=None if progress else True)  # None: a bar on a terminal only
    with logging_redirect_tqdm():  # each epoch's line prints above the bar
        for epoch in epochs:
            for group in opt.param_groups:
                group["lr"] = cfg.lr * _lr_factor(epoch, cfg)
            model.train()
            total, count = 0.0, 0
            for batch in train_batches(split.train, model.cfg.max_len, cfg.batch_size, rng):
                loss = model.loss(batch.items, batch.events, batch.targets, cfg.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                n = int((batch.targets > 0).sum())
                total, count = total + float(loss.detach()) * n, count + n
            scores = evaluate(model, valid, cfg.eval_batch) if valid else {}
            row = {"epoch": epoch + 1, "loss": total / max(count, 1),
                   "seconds": time.monotonic() - started,
                   **{f"valid_{k}": v for k, v in scores.items()}}
            result.history.append(row)
            score = scores.get("ndcg@10", -float(row["loss"]))
            if score > best_score:
                best_score, best_state, stale = score, copy.deepcopy(model.state_dict()), 0
                result.best_epoch, result.best_valid = epoch + 1, scores
            else:
                stale += 1
            epochs.set_postfix(loss=f"{row['loss']:.3f}", ndcg10=f"{scores.get('ndcg@10', 0):.4f}",
                               best=result.best_epoch)
            log.info("epoch %d loss %.4f valid %s", epoch + 1, row["loss"],
                     " ".join(f"{k} {v:.4f}" for k, v in scores.items()) or "-")
            if valid and stale >= cfg.patience:
                result.stopped = "early stop"
                break
            if cfg.max_minutes and time.monotonic() - started > cfg.max_minutes * 60:
                result.stopped = "time limit"
                break
    model.load_state_dict(best_state)
    result.seconds = time.monotonic() - started
    return result
