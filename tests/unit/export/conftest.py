"""Factories for the export tests: tiny logs written to temporary files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shopstream.config import PROJECT_ROOT

BEAUTY = PROJECT_ROOT.parent / "shared" / "data" / "amazon-beauty.txt"


@pytest.fixture
def seq_file(tmp_path):
    """Write ``{user: [item, ...]}`` in the sequence text format; returns the path."""

    def make(users: dict[int, list[int]], name: str = "seq.txt") -> Path:
        path = tmp_path / name
        path.write_text("".join(f"{u} {' '.join(map(str, items))}\n" for u, items in users.items()))
        return path

    return make


@pytest.fixture
def beauty_slice(tmp_path):
    """The first ``n`` users of the shared Beauty file (the real data, cut small)."""

    def make(n: int = 300) -> Path:
        lines = BEAUTY.read_text().splitlines()[:n]
        path = tmp_path / f"beauty-{n}.txt"
        path.write_text("\n".join(lines) + "\n")
        return path

    return make


@pytest.fixture
def synthetic_users():
    """Users who each stay inside one of ``groups`` item groups (ids 1..groups*per_group)."""

    def make(n_users: int = 120, groups: int = 4, per_group: int = 10, length: int = 8,
             seed: int = 0) -> dict[int, list[int]]:
        rng = np.random.default_rng(seed)
        users = {}
        for u in range(1, n_users + 1):
            g = u % groups
            items = rng.choice(per_group, size=length, replace=False) + 1 + g * per_group
            users[u] = items.tolist()
        return users

    return make


@pytest.fixture(scope="session")
def tiny_version(tmp_path_factory):
    """One small model trained for one epoch on a Beauty slice and published; shared."""
    from export.pipeline import TrainRequest, run
    from export.train import TrainConfig

    root = tmp_path_factory.mktemp("registry")
    data = root / "beauty-200.txt"
    data.write_text("\n".join(BEAUTY.read_text().splitlines()[:200]) + "\n")
    req = TrainRequest(data=data, out=root / "models", train=TrainConfig(epochs=1),
                       model={"dim": 16, "max_len": 20}, progress=False)
    return run(req), data
