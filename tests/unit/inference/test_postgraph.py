import numpy as np
import pytest

from inference.postfilter import first_allowed, nearest_sources
from inference.postgraph import first_picks, sources_of
from tests.unit.inference.factories import random_candidates


def _units(rng, n_items, dim=8):
    e = rng.standard_normal((n_items, dim)).astype(np.float32)
    e[0] = 0
    e[5] = e[3]  # two items pointing the same way: equal similarities, the first one wins
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    return e / np.where(norms > 0, norms, 1.0)


def _windows(rng, rows, width, vocab):
    """Left-padded windows of few distinct items (repeats, an item as its own candidate),
    some empty and some of a single item."""
    seq = np.zeros((rows, width), dtype=np.int64)
    events = np.zeros((rows, width), dtype=np.int64)
    for row in range(rows):
        size = int(rng.integers(0, width + 1)) if row % 5 else int(row % 3 == 0)
        seq[row, width - size:] = rng.integers(1, vocab, size)
        events[row, width - size:] = rng.integers(1, 5, size)
    return seq, events


@pytest.mark.parametrize("seed", range(8))
def test_the_sources_graph_gives_what_nearest_sources_gives(seed):
    rng = np.random.default_rng(seed)
    units = _units(rng, 40)
    seq, events = _windows(rng, 30, int(rng.integers(1, 20)), vocab=12)
    cand = rng.integers(0, 12, (30, int(rng.integers(1, 12))))
    longest = int(np.count_nonzero(seq, axis=1).max())
    expected = nearest_sources(cand, seq, events, units)
    got = sources_of(cand, seq, events, longest, units)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])


def test_no_candidates_and_empty_windows_have_no_sources():
    units = _units(np.random.default_rng(0), 10)
    empty = np.zeros((2, 4), dtype=np.int64)
    sources, codes = sources_of(np.array([[3, 0], [4, 5]]), empty, empty, 0, units)
    assert sources.tolist() == codes.tolist() == [[0, 0], [0, 0]]
    sources, codes = sources_of(np.zeros((2, 0), dtype=np.int64), empty, empty, 0, units)
    assert sources.shape == (2, 0)


@pytest.mark.parametrize("seed", range(8))
def test_the_picks_graph_gives_what_first_allowed_and_nearest_sources_give(seed):
    index, catalog, rules, view, items, scores = random_candidates(seed, max_top_k=40)
    rng = np.random.default_rng(seed + 100)
    n_items, rows = len(index), len(items)
    units = _units(rng, n_items)
    seq, events = _windows(rng, rows, 12, vocab=n_items)
    longest = int(np.count_nonzero(seq, axis=1).max())

    columns, counts, chosen, chosen_scores, sources, codes = first_picks(
        items, scores, view, rules.top_k, rules.diversity_cap, seq, events, longest, units)

    want_columns, want_counts = first_allowed(items, scores, view, rules.top_k,
                                              rules.diversity_cap)
    np.testing.assert_array_equal(columns, want_columns)
    np.testing.assert_array_equal(counts, want_counts)
    np.testing.assert_array_equal(chosen, np.take_along_axis(items, want_columns, axis=1))
    np.testing.assert_array_equal(chosen_scores,
                                  np.take_along_axis(scores, want_columns, axis=1))
    want_sources, want_codes = nearest_sources(chosen, seq, events, units)
    np.testing.assert_array_equal(sources, want_sources)
    np.testing.assert_array_equal(codes, want_codes)
