import numpy as np

from inference.windows import ItemIndex, encode_windows
from streams.state import Interaction

INDEX = ItemIndex(["", "a", "b", "c", "d"])


def test_windows_are_left_padded_with_their_event_codes():
    batch = encode_windows(INDEX, [[("a", 1), ("c", 3)]], max_len=4)
    assert batch.item_seq.tolist() == [[0, 0, 1, 3]]
    assert batch.event_type.tolist() == [[0, 0, 1, 3]]
    assert batch.lengths.tolist() == [2]


def test_long_windows_keep_the_newest_items():
    window = [("a", 1), ("b", 1), ("c", 2), ("d", 4)]
    batch = encode_windows(INDEX, [window], max_len=2)
    assert batch.item_seq.tolist() == [[3, 4]]
    assert batch.event_type.tolist() == [[2, 4]]


def test_unknown_ids_are_dropped_before_truncating():
    batch = encode_windows(INDEX, [[("a", 1), ("zz", 1), ("b", 2), ("", 1)]], max_len=2)
    assert batch.item_seq.tolist() == [[1, 2]]
    assert batch.lengths.tolist() == [2]


def test_excludes_are_mapped_and_padded_to_the_widest_row():
    batch = encode_windows(INDEX, [[], []], max_len=2, excludes=[["b", "zz", "d"], []])
    assert batch.exclude.tolist() == [[2, 4], [0, 0]]
    assert batch.exclude.dtype == np.int64


def test_excludes_are_capped_at_what_the_graph_can_take():
    batch = encode_windows(INDEX, [[]], max_len=2, excludes=[["a", "b", "c", "d"]],
                           max_exclude=2)
    assert batch.exclude.tolist() == [[1, 2]]


def test_index_maps_back_to_external_ids():
    assert INDEX.external([3, 1]) == ["c", "a"]
    assert INDEX.get("") == 0 and INDEX.get("nope") == 0


def test_a_batch_of_mixed_windows_matches_encoding_each_on_its_own():
    # rows of every length (empty, unknown-only, longer than L) placed in one pass
    rng = np.random.default_rng(7)
    pool = ["a", "b", "c", "d", "zz", ""]
    windows = [[(pool[i], int(c)) for i, c in zip(rng.integers(0, 6, n), rng.integers(1, 5, n),
                                                  strict=True)]
               for n in rng.integers(0, 9, 40)]
    windows += [[], [("zz", 1)] * 3]
    batch = encode_windows(INDEX, windows, max_len=4)
    for row, window in enumerate(windows):
        known = [(INDEX.get(item), code) for item, code in window if INDEX.get(item)][-4:]
        pad = [0] * (4 - len(known))
        assert batch.item_seq[row].tolist() == pad + [i for i, _ in known]
        assert batch.event_type[row].tolist() == pad + [c for _, c in known]
        assert batch.lengths[row] == len(known)


def test_the_workers_own_window_entries_encode_as_their_item_and_code_pairs():
    pairs = [("a", 1), ("zz", 2), ("c", 4), ("b", 3)]
    entries = [Interaction(item, code, 1_000 + n, 50) for n, (item, code) in enumerate(pairs)]
    from_pairs = encode_windows(INDEX, [pairs, []], max_len=3)
    from_entries = encode_windows(INDEX, [tuple(entries), ()], max_len=3)
    assert from_entries.item_seq.tolist() == from_pairs.item_seq.tolist() == [[1, 3, 2],
                                                                               [0, 0, 0]]
    assert from_entries.event_type.tolist() == from_pairs.event_type.tolist()
