import numpy as np
import pytest

from inference.postfilter import (
    GENERIC_REASON,
    POPULAR_REASON,
    CatalogItem,
    CatalogView,
    FilterRules,
    Pick,
    explain,
    explain_batch,
    explain_encoded,
    first_allowed,
    graph_exclusions,
    no_catalog,
    select,
)
from inference.windows import ItemIndex, encode_windows
from streams.state import Interaction
from tests.unit.inference.factories import random_candidates

CATALOG = {
    "a": CatalogItem(True, "shoes"), "b": CatalogItem(True, "shoes"),
    "c": CatalogItem(True, "shoes"), "d": CatalogItem(False, "bags"),
    "e": CatalogItem(True, "adult"), "f": CatalogItem(True, "bags"),
}


def _model(*ids):
    return [(item, 10.0 - i, "model") for i, item in enumerate(ids)]


def test_bought_items_are_excluded_and_viewed_ones_only_when_configured():
    window = [("a", 1), ("b", 4), ("c", 2)]
    assert graph_exclusions(window, FilterRules(), bought={"z"}) == {"b", "z"}
    assert graph_exclusions(window, FilterRules(exclude_viewed=True)) == {"a", "b", "c"}
    assert graph_exclusions([("a", 1), ("c", 2)], FilterRules(), bought={"z"}) == {"z"}


def test_exclusions_read_the_workers_own_window_entries():
    window = [Interaction("a", 1, 1, 0), Interaction("b", 4, 2, 0), Interaction("b", 1, 3, 0)]
    assert graph_exclusions(window, FilterRules()) == {"b"}
    assert graph_exclusions(window, FilterRules(exclude_viewed=True)) == {"a", "b"}


def test_select_drops_excluded_out_of_stock_and_banned_categories():
    rules = FilterRules(top_k=10, excluded_categories=frozenset({"adult"}))
    picks = select(_model("a", "b", "d", "e", "f", "g"), {"b"}, CATALOG.get, rules)
    assert [item for item, _, _ in picks] == ["a", "f", "g"]  # g: unknown to the catalog


def test_diversity_cap_limits_items_per_category():
    rules = FilterRules(top_k=10, diversity_cap=2)
    picks = select(_model("a", "b", "c", "f"), set(), CATALOG.get, rules)
    assert [item for item, _, _ in picks] == ["a", "b", "f"]


def test_select_stops_at_top_k_in_rank_order():
    picks = select(_model("g", "h", "i", "j"), set(), no_catalog, FilterRules(top_k=2))
    assert picks == [("g", 10.0, "model"), ("h", 9.0, "model")]  # as they came


def test_too_few_model_items_are_topped_up_by_allowed_popular_ones():
    popular = [("a", 5.0, "popular"), ("d", 4.0, "popular"), ("h", 3.0, "popular")]
    picks = select([*_model("a", "b"), *popular], {"b"}, CATALOG.get, FilterRules(top_k=3))
    assert [(item, source) for item, _, source in picks] == [("a", "model"), ("h", "popular")]


@pytest.mark.parametrize("seed", range(6))
def test_first_allowed_picks_what_select_picks_for_every_row(seed):
    index, catalog, rules, view, items, scores = random_candidates(seed)
    columns, counts = first_allowed(items, scores, view, rules.top_k, rules.diversity_cap)
    assert columns.shape == (40, rules.top_k)
    for row in range(40):
        candidates = [(index.ids[i], float(s), "model")
                      for i, s in zip(items[row], scores[row], strict=True)
                      if i > 0 and s > -np.inf]
        expected = [item for item, _, _ in select(candidates, set(), catalog.get, rules)]
        got = [index.ids[i] for i in items[row, columns[row, :counts[row]]]]
        assert got == expected


def test_a_catalog_view_follows_the_items_that_changed():
    index = ItemIndex(["", "a", "b", "d", "e", "z"])
    catalog = dict(CATALOG)
    categories: dict[str, int] = {}
    view = CatalogView(index, catalog.get, FilterRules(excluded_categories=frozenset({"adult"})),
                       categories)
    assert view.allowed.tolist() == [False, True, True, False, False, True]
    assert view.category[5] == -1 and view.category[1] == view.category[2] == categories["shoes"]
    catalog["a"] = CatalogItem(False, "bags")
    catalog["d"] = CatalogItem(True, "bags")
    del catalog["e"]  # left the catalog: allowed, no category
    view.update(["a", "d", "e", "not-in-the-model"], catalog.get)
    assert view.allowed.tolist() == [False, False, True, True, True, True]
    assert view.category[1] == view.category[3] == categories["bags"] and view.category[4] == -1


def _embeddings():
    # items 1..4: 1 and 3 point the same way, 2 and 4 the same way
    e = np.array([[0, 0], [1, 0], [0, 1], [0.9, 0.1], [0.1, 0.9]], dtype=np.float32)
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-9)


INDEX = ItemIndex(["", "1", "2", "3", "4"])


def test_reason_names_the_most_similar_window_item_and_its_event():
    window = [("1", 1), ("2", 3)]
    picks = [("3", 1.0, "model"), ("4", 0.5, "model")]
    reasons = [p.reason for p in explain(picks, window, INDEX, _embeddings())]
    assert reasons == ["because you viewed item 1", "because you added item 2 to your cart"]


def test_reason_uses_the_strongest_event_with_that_item():
    window = [("1", 1), ("1", 4)]
    (pick,) = explain([("3", 1.0, "model")], window, INDEX, _embeddings())
    assert pick.reason == "because you bought item 1"


def test_an_item_is_not_its_own_reason_when_another_exists():
    window = [("3", 1), ("1", 2)]
    (pick,) = explain([("3", 1.0, "model")], window, INDEX, _embeddings())
    assert pick.reason == "because you clicked item 1"


def test_popular_and_unexplained_items_get_generic_reasons():
    picks = [("2", 1.0, "popular"), ("1", 1.0, "model")]
    reasons = [p.reason for p in explain(picks, [("zz", 1)], INDEX, _embeddings())]
    assert reasons == [POPULAR_REASON, GENERIC_REASON]


def test_a_batch_explains_each_user_from_their_own_window_only():
    picks = [[("4", 1.0, "model")], [("4", 1.0, "model"), ("3", 0.9, "model")]]
    windows = [[("1", 2)], [("2", 1), ("1", 4), ("zz", 1)]]
    out = explain_batch(picks, windows, INDEX, _embeddings())
    # user 0 has only item 1 (not similar to 4, still the only candidate reason)
    assert [p.reason for p in out[0]] == ["because you clicked item 1"]
    assert [p.reason for p in out[1]] == ["because you viewed item 2", "because you bought item 1"]
    assert out[1][1] == Pick("3", 0.9, "model", "because you bought item 1")


def test_reasons_from_the_graphs_arrays_match_those_from_the_windows():
    windows = [[("1", 1), ("3", 2), ("1", 4)], [("2", 3)], [], [("zz", 1), ("4", 1), ("2", 2)]]
    picks = [[("3", 1.0, "model"), ("2", 0.8, "model"), ("4", 0.5, "popular")]] * 4
    batch = encode_windows(INDEX, windows, 6)  # wider than any window: left padding
    from_arrays = explain_encoded(picks, batch.item_seq, batch.event_type, INDEX, _embeddings())
    assert from_arrays == explain_batch(picks, windows, INDEX, _embeddings())
    assert [p.reason for p in from_arrays[0]] == [
        "because you bought item 1", "because you clicked item 3", POPULAR_REASON]
    assert [p.reason for p in from_arrays[2]] == [GENERIC_REASON, GENERIC_REASON, POPULAR_REASON]
