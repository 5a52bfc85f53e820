"""The worker process's interpreter settings: the collector and the GIL switch interval."""

from __future__ import annotations

import gc
import sys

import pytest
from pydantic import ValidationError

from shopstream.config import load_settings
from shopstream.worker import GC_GEN0_THRESHOLD, tune_interpreter


@pytest.fixture
def restored_interpreter():
    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    yield
    sys.setswitchinterval(interval)
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def test_tune_interpreter_sets_the_switch_interval_from_settings(restored_interpreter):
    tune_interpreter(load_settings(gil_switch_ms=2.5, _env_file=None))
    assert sys.getswitchinterval() == pytest.approx(0.0025)
    assert gc.get_threshold()[0] == GC_GEN0_THRESHOLD


def test_the_default_switch_interval_is_shorter_than_pythons(restored_interpreter):
    tune_interpreter(load_settings(_env_file=None))
    assert sys.getswitchinterval() == pytest.approx(0.001)


def test_a_switch_interval_of_zero_is_refused():
    with pytest.raises(ValidationError, match="gil_switch_ms"):
        load_settings(gil_switch_ms=0, _env_file=None)
