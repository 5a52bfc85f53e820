"""bench/busy_cores.py, the stand-in for a slower host that bench_worker's --busy runs."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

from busy_cores import share_arg, spin  # noqa: E402


def test_spin_takes_its_share_of_cpu_time_and_sleeps_the_rest():
    cpu, wall = time.thread_time(), time.perf_counter()
    spin(0.3, 0.01, seconds=1.0)
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    assert 0.95 <= wall < 1.5
    assert 0.2 < cpu / wall < 0.45  # 0.3 asked; a busy test host may take a little


@pytest.mark.parametrize("text", ["0", "1", "1.5", "-0.2", "half"])
def test_a_share_outside_0_to_1_is_refused_in_one_line(text):
    with pytest.raises(argparse.ArgumentTypeError, match="a share between 0 and 1"):
        share_arg(text)
    assert share_arg("0.25") == 0.25
