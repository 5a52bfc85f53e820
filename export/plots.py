"""The training-curve PNG written beside each model version."""

from __future__ import annotations

from pathlib import Path


def training_curve(history: list[dict[str, float]], best_epoch: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [row["loss"] for row in history], marker=".")
    left.set(title="training loss (cross-entropy)", xlabel="epoch", ylabel="loss")
    for key in ("valid_hr@10", "valid_ndcg@10"):
        if history and key in history[0]:
            right.plot(epochs, [row[key] for row in history], marker=".", label=key[6:])
    if best_epoch:
        right.axvline(best_epoch, color="grey", linestyle="--", label=f"best (epoch {best_epoch})")
    right.set(title="validation, full ranking", xlabel="epoch")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
