import numpy as np
import pytest
import torch

import inference.session as session_module
from inference.session import CPU, CUDA, ModelSession, choose_providers, merge_small_buckets
from inference.testing import load_torch_model
from inference.windows import ItemIndex, encode_windows


def test_cpu_alone_is_asked_for_when_no_gpu_answers():
    assert choose_providers([CUDA, CPU], gpu_count=0) == [CPU]


def test_cuda_is_asked_for_first_when_a_gpu_answers():
    assert choose_providers([CUDA, CPU], gpu_count=1) == [CUDA, CPU]


def test_cuda_is_not_asked_for_when_the_build_lacks_it():
    assert choose_providers([CPU], gpu_count=2) == [CPU]


def test_without_a_gpu_the_session_runs_on_cpu_and_logs_no_error(shared_registry, capfd,
                                                                 monkeypatch):
    monkeypatch.setattr("inference.session.cuda_device_count", lambda: 0)
    session = ModelSession(shared_registry / "v1" / "model.onnx")
    err = capfd.readouterr().err
    assert session.provider == CPU
    assert "CUDA" not in err and "error" not in err.lower()


def _windows():
    return [[("3", 1), ("5", 2), ("7", 3)], [(str(i), 1) for i in range(1, 30)], [("9", 4)]]


def _eager(folder, batch):
    model = load_torch_model(folder)
    with torch.no_grad():
        return model(*(torch.from_numpy(a) for a in (batch.item_seq, batch.event_type,
                                                     batch.exclude)))


@pytest.mark.parametrize("rows", [slice(0, 1), slice(0, 3)], ids=["batch1", "batchN"])
def test_onnx_matches_eager_pytorch(shared_registry, v1, rows):
    batch = encode_windows(v1.index, _windows()[rows], v1.metadata.max_len)
    items, scores, user_vec = v1.session.run(batch.item_seq, batch.event_type, batch.exclude)
    ref_items, ref_scores, ref_vec = _eager(shared_registry / "v1", batch)
    np.testing.assert_allclose(user_vec, ref_vec.numpy(), atol=1e-4)
    np.testing.assert_allclose(scores, ref_scores.numpy(), atol=1e-4)
    assert (items == ref_items.numpy()).mean() > 0.95  # near-ties may swap places


def test_scoring_by_length_bucket_gives_the_fully_padded_result(shared_registry, monkeypatch):
    monkeypatch.setattr(session_module, "MERGE_POSITIONS", 0)  # a run for every bucket
    session = ModelSession(shared_registry / "long" / "model.onnx", providers=[CPU])
    windows = [[(str(i), 1 + i % 4) for i in range(1, n + 1)] for n in (3, 35, 12, 1, 20)]
    batch = encode_windows(ItemIndex(["", *map(str, range(1, 61))]), windows, 40)
    full = session.run(batch.item_seq, batch.event_type, batch.exclude)
    bucketed = session.score(batch.item_seq, batch.event_type, batch.exclude, batch.lengths)
    np.testing.assert_allclose(bucketed[2], full[2], atol=1e-5)
    np.testing.assert_allclose(bucketed[1], full[1], atol=1e-4)


def test_excluded_items_and_padding_never_come_back(v1):
    batch = encode_windows(v1.index, _windows(), v1.metadata.max_len)
    first, _, _ = v1.session.run(batch.item_seq, batch.event_type, batch.exclude)
    banned = first[:, :5]  # the five best of each row
    items, _, _ = v1.session.run(batch.item_seq, batch.event_type, banned)
    for row, bad in zip(items, banned, strict=True):
        assert not set(row) & set(bad)
        assert 0 not in row


def test_a_fixed_length_graph_is_fed_full_windows(shared_registry):
    session = ModelSession(shared_registry / "v2" / "model.onnx", providers=[CPU])
    assert not session.dynamic_len and session.max_len == 8
    seq = np.array([[0, 0, 0, 0, 0, 1, 2, 3]])
    items, scores, vec = session.score(seq, np.ones_like(seq), np.zeros((1, 1), np.int64),
                                       np.array([3]))
    assert items.shape == (1, 20) and vec.shape == (1, 16)


def test_many_exclusions_still_return_the_best_allowed_items(shared_registry, v1):
    batch = encode_windows(v1.index, _windows(), v1.metadata.max_len)
    first, first_scores, _ = v1.session.run(batch.item_seq, batch.event_type, batch.exclude)
    banned = first[:, :15]  # wider than the graph was exported with
    items, scores, _ = v1.session.run(batch.item_seq, batch.event_type, banned)
    # the next best items of the unfiltered ranking, in order
    np.testing.assert_array_equal(items[:, :5], first[:, 15:20])
    np.testing.assert_allclose(scores[:, :5], first_scores[:, 15:20], atol=1e-5)


def test_io_binding_path_gives_the_plain_run_result(shared_registry):
    # the GPU path binds inputs and outputs; CPU sessions accept the same binding calls
    session = ModelSession(shared_registry / "v1" / "model.onnx", providers=[CPU])
    seq = np.array([[0, 0, 0, 0, 0, 4, 9, 2]])
    feeds = (seq, np.ones_like(seq), np.array([[9]]))
    plain = session.run(*feeds)
    session.on_gpu = True
    bound = session.run(*feeds)
    for a, b in zip(plain, bound, strict=True):
        np.testing.assert_array_equal(a, b)


def test_small_buckets_join_the_next_bucket_that_has_rows():
    bounds = [8, 16, 32, 50]
    # two rows of 8 add 16 padded positions at 16: joined; then four rows of 16 add 64 at
    # 32: kept apart; the lone row at 32 has no bucket with rows above it
    assert merge_small_buckets(np.array([0, 0, 1, 1, 2]), bounds).tolist() == [1, 1, 1, 1, 2]
    # a row of 8 with the next rows at 50 adds 42 positions there: joined
    assert merge_small_buckets(np.array([0, 3, 3]), bounds).tolist() == [3, 3, 3]
    # many short rows stay in their own run
    assert merge_small_buckets(np.array([0] * 9 + [1]), bounds).tolist() == [0] * 9 + [1]


def _record_runs(session, monkeypatch):
    """The shapes of the windows each call into the graph gets, as they come."""
    runs = []
    real_run = session.run

    def recording_run(item_seq, event_type, exclude):
        runs.append(item_seq.shape)
        return real_run(item_seq, event_type, exclude)

    monkeypatch.setattr(session, "run", recording_run)
    return runs


@pytest.mark.parametrize("on_gpu", [False, True])
def test_three_short_windows_are_one_run_of_16_positions(shared_registry, monkeypatch,
                                                         on_gpu):
    # on a GPU a batch is one run trimmed to its longest window's bucket; on CPUs the two
    # short windows join the 12 items' bucket (merge_small_buckets)
    session = ModelSession(shared_registry / "long" / "model.onnx", providers=[CPU])
    windows = [[(str(i), 1) for i in range(1, n + 1)] for n in (3, 12, 1)]
    batch = encode_windows(ItemIndex(["", *map(str, range(1, 61))]), windows, 40)
    full = session.run(batch.item_seq, batch.event_type, batch.exclude)
    runs = _record_runs(session, monkeypatch)
    session.on_gpu = on_gpu
    items, scores, vec = session.score(batch.item_seq, batch.event_type, batch.exclude,
                                       batch.lengths)
    assert [width for _, width in runs] == [16]
    np.testing.assert_allclose(vec, full[2], atol=1e-5)
    np.testing.assert_allclose(scores, full[1], atol=1e-4)


def test_a_batch_too_big_for_one_cpu_run_is_split_into_runs_of_run_positions(shared_registry,
                                                                            monkeypatch):
    session = ModelSession(shared_registry / "long" / "model.onnx", providers=[CPU])
    monkeypatch.setattr(session_module, "RUN_POSITIONS", 160)  # 4 rows of 40, 20 of 8
    rng = np.random.default_rng(3)
    windows = [[(str(i), 1 + i % 4) for i in rng.integers(1, 61, n)]
               for n in [*[40] * 7, *[3] * 3]]  # seven full windows, three short
    batch = encode_windows(ItemIndex(["", *map(str, range(1, 61))]), windows, 40)
    full = session.run(batch.item_seq, batch.event_type, batch.exclude)
    runs = _record_runs(session, monkeypatch)
    items, scores, vec = session.score(batch.item_seq, batch.event_type, batch.exclude,
                                       batch.lengths)
    assert sorted(runs) == [(3, 8), (3, 40), (4, 40)]  # the short ones in their own bucket
    np.testing.assert_allclose(vec, full[2], atol=1e-5)
    np.testing.assert_allclose(scores, full[1], atol=1e-4)
    runs.clear()
    split = session.score(batch.item_seq, batch.event_type, batch.exclude)  # full width
    assert runs == [(4, 40), (4, 40), (2, 40)]
    np.testing.assert_allclose(split[2], full[2], atol=1e-5)
    runs.clear()
    session.on_gpu = True  # one run there, however big
    session.score(batch.item_seq, batch.event_type, batch.exclude, batch.lengths)
    assert runs == [(10, 40)]
