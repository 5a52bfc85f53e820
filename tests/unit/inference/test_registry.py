import json
import time
from types import SimpleNamespace

import numpy as np
import pytest

from inference.registry import (
    CURRENT,
    ModelRegistry,
    RegistryError,
    RegistryWatcher,
    _variant_file,
    ab_bucket,
    read_current,
    write_current,
)
from inference.session import CPU
from inference.windows import encode_windows


def test_current_pointer_is_replaced_without_leftover_temp_files(registry_dir):
    folder = registry_dir("v1")
    registry_dir("v2", seed=1, make_current=False)
    write_current(folder.parent, "v2")
    assert read_current(folder.parent) == "v2"
    assert sorted(p.name for p in folder.parent.iterdir()) == [CURRENT, "v1", "v2"]


def test_pointing_at_a_missing_version_is_refused(registry_dir):
    folder = registry_dir("v1")
    with pytest.raises(RegistryError):
        write_current(folder.parent, "v9")
    assert read_current(folder.parent) == "v1"


def test_a_registry_without_current_says_so(inference_settings, tmp_path):
    (tmp_path / "models").mkdir()
    with pytest.raises(RegistryError, match="no CURRENT"):
        ModelRegistry(inference_settings(), providers=[CPU])


def test_loading_gives_metadata_index_and_unit_embeddings(registry_dir, registry_factory):
    registry_dir("v1")
    model = registry_factory().current
    assert model.version == "v1" and model.metadata.top_k == 20
    assert model.index.get("7") == 7
    norms = np.linalg.norm(model.unit_embeddings[1:], axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    assert not model.unit_embeddings[0].any()


def test_refresh_is_a_no_op_while_current_is_unchanged(registry_dir, registry_factory):
    registry_dir("v1")
    registry = registry_factory()
    before = registry.current
    assert registry.refresh() is False
    assert registry.current is before


def test_hot_swap_loads_the_new_version_and_batches_in_flight_keep_the_old(
        registry_dir, registry_factory):
    registry_dir("v1")
    registry = registry_factory()
    in_flight, variant = registry.pick("user-1")  # a batch took its model before the swap
    registry_dir("v2", seed=1)  # publishes v2 as CURRENT
    assert registry.refresh() is True
    assert registry.current.version == "v2" and variant == "A"
    # the batch that started on v1 still scores on v1, and v1 is unchanged
    batch = encode_windows(in_flight.index, [[("3", 1)]], in_flight.metadata.max_len)
    items, _, _ = in_flight.session.run(batch.item_seq, batch.event_type, batch.exclude)
    assert in_flight.version == "v1" and items.shape == (1, 20)
    assert registry.pick("user-1")[0].version == "v2"


def test_a_version_that_fails_to_load_keeps_the_old_one_serving(registry_dir, registry_factory):
    registry_dir("v1")
    registry = registry_factory()
    broken = registry_dir("v2", seed=1)
    (broken / "model.onnx").write_bytes(b"not a graph")
    assert registry.refresh() is False
    assert registry.current.version == "v1"


def test_watcher_thread_swaps_when_current_changes(registry_dir, registry_factory):
    registry_dir("v1")
    registry = registry_factory()
    watcher = RegistryWatcher(registry, interval_s=0.02).start()
    try:
        registry_dir("v2", seed=1)
        deadline = time.monotonic() + 10
        while registry.current.version != "v2" and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        watcher.stop()
    assert registry.current.version == "v2"


def test_ab_bucket_is_stable_and_spread_evenly():
    users = [f"user-{i}" for i in range(4000)]
    buckets = [ab_bucket(u) for u in users]
    assert buckets == [ab_bucket(u) for u in users]
    assert all(0.0 <= b < 1.0 for b in buckets)
    assert abs(np.mean(np.array(buckets) < 0.3) - 0.3) < 0.03


def test_ab_split_serves_the_candidate_to_its_share(registry_dir, registry_factory):
    registry_dir("v1")
    registry_dir("v2", seed=1, make_current=False)
    registry = registry_factory(ab_version="v2", ab_share=0.25)
    picks = [registry.pick(f"u{i}") for i in range(2000)]
    share_b = np.mean([variant == "B" for _, variant in picks])
    assert abs(share_b - 0.25) < 0.04
    assert {m.version for m, v in picks if v == "B"} == {"v2"}
    assert {m.version for m, v in picks if v == "A"} == {"v1"}
    assert registry.pick("u7") == registry.pick("u7")


def test_no_ab_split_without_a_share(registry_dir, registry_factory):
    registry_dir("v1")
    registry_dir("v2", seed=1, make_current=False)
    registry = registry_factory(ab_version="v2", ab_share=0.0)
    assert registry.candidate is None
    assert {registry.pick(f"u{i}")[1] for i in range(200)} == {"A"}


def test_a_graph_whose_window_disagrees_with_metadata_is_refused(registry_dir, registry_factory):
    folder = registry_dir("v1", dynamic_len=False)
    meta = json.loads((folder / "metadata.json").read_text())
    (folder / "metadata.json").write_text(json.dumps({**meta, "max_len": 5}))
    with pytest.raises(RegistryError, match="max_len 5"):
        registry_factory()


@pytest.mark.parametrize(("variants", "on_gpu", "wanted", "expected"), [
    ({"fp32", "fp16", "int8"}, False, "auto", "int8"),  # CPUs get the quantised graph
    ({"fp32", "fp16", "int8"}, True, "auto", "fp16"),
    ({"fp32"}, False, "auto", "fp32"),  # a version without variants still loads
    ({"fp32"}, True, "auto", "fp32"),
    ({"fp32", "int8"}, False, "fp32", "fp32"),  # an explicit choice wins
])
def test_auto_variant_is_int8_on_cpu_and_fp16_on_gpu(variants, on_gpu, wanted, expected):
    meta = SimpleNamespace(version="v1", variants={v: f"model.{v}.onnx" for v in variants})
    assert _variant_file(meta, wanted, on_gpu) == f"model.{expected}.onnx"


def test_a_missing_variant_asked_for_by_name_is_refused():
    meta = SimpleNamespace(version="v1", variants={"fp32": "model.onnx"})
    with pytest.raises(RegistryError, match="no int8 variant"):
        _variant_file(meta, "int8", on_gpu=False)
