"""The worker process's interpreter settings: the collector and the GIL switch interval."""

from __future__ import annotations

import gc
import sys
import weakref

import pytest
from pydantic import ValidationError

from shopstream.config import load_settings
from shopstream.worker import (
    freeze_survivors,
    full_collection,
    tune_interpreter,
)


@pytest.fixture
def restored_interpreter():
    interval, thresholds, enabled = sys.getswitchinterval(), gc.get_threshold(), gc.isenabled()
    yield
    sys.setswitchinterval(interval)
    gc.set_threshold(*thresholds)
    (gc.enable if enabled else gc.disable)()
    while freeze_survivors in gc.callbacks:
        gc.callbacks.remove(freeze_survivors)
    gc.unfreeze()


def test_tune_interpreter_sets_the_switch_interval_from_settings(restored_interpreter):
    tune_interpreter(load_settings(gil_switch_ms=2.5, gc_young_threshold=1234, _env_file=None))
    assert sys.getswitchinterval() == pytest.approx(0.0025)
    assert gc.get_threshold()[0] == 1234


def test_the_default_switch_interval_is_shorter_than_pythons(restored_interpreter):
    tune_interpreter(load_settings(_env_file=None))
    assert sys.getswitchinterval() == pytest.approx(0.0002)


def test_a_switch_interval_of_zero_is_refused():
    with pytest.raises(ValidationError, match="gil_switch_ms"):
        load_settings(gil_switch_ms=0, _env_file=None)


class _Node:
    pass


def _in_generations(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects())


def test_by_default_the_worker_runs_no_automatic_collections(restored_interpreter):
    tune_interpreter(load_settings(_env_file=None))
    assert not gc.isenabled()
    assert freeze_survivors not in gc.callbacks


def test_a_young_threshold_brings_automatic_collections_back(restored_interpreter):
    gc.disable()
    tune_interpreter(load_settings(gc_young_threshold=700, _env_file=None))
    assert gc.isenabled()
    assert gc.get_threshold()[0] == 700


def test_a_cycle_left_by_the_default_is_freed_by_the_full_collection(restored_interpreter):
    tune_interpreter(load_settings(_env_file=None))
    node = _Node()
    node.me = node
    gone = weakref.ref(node)
    del node
    kept = [_Node() for _ in range(20_000)]  # what would have set off young collections
    assert gone() is not None  # nothing collected it on its own
    del kept
    assert full_collection() >= 1
    assert gone() is None


def test_what_a_collection_leaves_is_frozen_out_of_later_scans(restored_interpreter):
    tune_interpreter(load_settings(gc_young_threshold=5000, _env_file=None))
    assert freeze_survivors in gc.callbacks
    survivor = [_Node() for _ in range(3)]
    assert _in_generations(survivor)  # young, so the next collection scans it
    frozen = gc.get_freeze_count()
    gc.collect(0)
    assert not _in_generations(survivor)  # frozen: no collection scans it again
    assert gc.get_freeze_count() >= frozen + 4


def test_a_young_collection_still_frees_young_cycles(restored_interpreter):
    tune_interpreter(load_settings(gc_young_threshold=5000, _env_file=None))
    node = _Node()
    node.me = node
    gone = weakref.ref(node)
    del node
    gc.collect(0)
    assert gone() is None


def test_full_collection_frees_cycles_that_died_frozen(restored_interpreter):
    node = _Node()
    node.me = node
    gone = weakref.ref(node)
    gc.freeze()
    del node
    gc.collect()
    assert gone() is not None  # frozen: the collector never looks at it
    assert full_collection() >= 1
    assert gone() is None
    assert gc.get_freeze_count() > 0  # the survivors are frozen again
