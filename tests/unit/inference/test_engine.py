import asyncio

import numpy as np
import pytest

from inference.ads import Campaign
from inference.batcher import MicroBatcher
from inference.engine import Recommender, UserRequest
from inference.popularity import DecayedPopularity
from inference.postfilter import POPULAR_REASON, CatalogItem, FilterRules, explain_batch
from inference.windows import encode_windows


def catalog(item_id):
    i = int(item_id)
    return CatalogItem(in_stock=i % 7 != 0, category=f"c{i % 5}")


DEFAULT_RULES = FilterRules(top_k=5, diversity_cap=2)


@pytest.fixture
def recommender(registry_dir, registry_factory):
    def make(rules=DEFAULT_RULES, campaigns=(), **settings):
        registry_dir("v1")
        registry_dir("v2", seed=1, make_current=False)
        pop = DecayedPopularity(half_life_s=600, capacity=100)
        for rank, item in enumerate(["14", "3", "8", "21", "5", "9", "12", "33"]):
            for _ in range(10 - rank):
                pop.add(item, 0.0)
        return Recommender(registry_factory(**settings), pop, rules, catalog, campaigns)

    return make


HISTORY = UserRequest([("3", 1), ("5", 2), ("8", 3), ("5", 4)], bought=frozenset({"11"}))


def test_recommendations_respect_every_rule_and_carry_the_version(recommender):
    (result,) = recommender()([("u1", HISTORY)], now_s=0.0)
    ids = [p.item_id for p in result.items]
    assert len(ids) == 5 and len(set(ids)) == 5
    assert not {"5", "11"} & set(ids)  # bought in the window and earlier
    assert all(int(i) % 7 for i in ids)  # out of stock never shown
    per_cat = [catalog(i).category for i in ids]
    assert max(per_cat.count(c) for c in per_cat) <= 2
    assert (result.model_version, result.variant) == ("v1", "A")
    assert all(p.source == "model" and p.reason.startswith("because you") for p in result.items)


def test_reasons_found_in_the_scoring_step_match_explaining_the_picks_afterwards(recommender):
    # the scoring thread explains every top item before the filters; the result must be
    # what explaining the surviving picks against the window gives
    rec = recommender(rules=FilterRules(top_k=8, diversity_cap=3))
    window = [("3", 1), ("5", 2), ("8", 3), ("12", 1), ("3", 2)]
    (result,) = rec([("u1", UserRequest(window))], now_s=0.0)
    model = rec.registry.current
    picks = [(p.item_id, p.score, p.source) for p in result.items]
    (expected,) = explain_batch([picks], [window], model.index, model.unit_embeddings)
    assert [p.reason for p in result.items] == [p.reason for p in expected]
    assert len({p.reason for p in result.items}) > 1


def test_reasons_are_those_of_the_picks_in_rows_of_either_path(recommender):
    # the scoring step finds sources for each row's first allowed items, and for all of
    # the graph's items only in rows that finish filters again (here u3: its exclusions
    # do not all reach the graph); each must be what explaining the picks gives
    rec = recommender(rules=FilterRules(top_k=8, diversity_cap=3))
    rows = [("u1", UserRequest([("3", 1), ("5", 2), ("8", 3)])),
            ("u2", UserRequest([("12", 1), ("3", 2), ("40", 1), ("12", 4)])),
            ("u3", UserRequest([("50", 2), ("55", 1)],
                               bought=frozenset(map(str, range(1, 43))))),
            ("u4", UserRequest([("9", 1), ("22", 3), ("33", 1), ("9", 2), ("2", 1)]))]
    prepared = rec.infer(rec.prepare(rows, now_s=0.0))
    (group,) = prepared.groups
    assert group.truncated == [False, False, True, False]
    assert group.quick == [True, True, False, True]  # the others take the columns' picks
    model = rec.registry.current
    for (user, req), result in zip(rows, rec.finish(prepared), strict=True):
        picks = [(p.item_id, p.score, p.source) for p in result.items]
        (expected,) = explain_batch([picks], [req.window], model.index, model.unit_embeddings)
        assert [p.reason for p in result.items] == [p.reason for p in expected], user
        assert any(p.source == "model" for p in result.items), user


def test_the_loop_side_leaves_the_array_layout_to_the_scoring_thread(recommender):
    # numpy lets go of the GIL when it indexes with arrays, and on the event loop each such
    # step can wait for it to come back: prepare only gathers, infer lays the arrays out
    rec = recommender()
    rows = [("u1", HISTORY), ("u2", UserRequest([("8", 1), ("zz", 2)]))]
    prepared = rec.prepare(rows, now_s=0.0)
    (group,) = prepared.groups
    assert group.batch is None and not group.chosen
    rec.infer(prepared)
    model = rec.registry.current
    expected = encode_windows(model.index, [r.window for _, r in rows], model.metadata.max_len)
    assert group.batch is not None
    for name in ("item_seq", "event_type", "lengths"):
        np.testing.assert_array_equal(getattr(group.batch, name), getattr(expected, name))
    assert len(group.chosen) == 4 and group.chosen[0].shape == (2, 5)
    results = rec.finish(prepared)
    assert [p.item_id for p in results[0].items] == group.model.index.external(
        group.chosen[0][0])


def test_a_user_without_history_gets_popular_items(recommender):
    (result,) = recommender()([("new", UserRequest([("unknown-item", 1)]))], now_s=0.0)
    # 14 and 21 are out of stock (multiples of 7)
    assert [p.item_id for p in result.items] == ["3", "8", "5", "9", "12"]
    assert {p.reason for p in result.items} == {POPULAR_REASON}
    assert result.ads == []


def test_too_few_survivors_are_backfilled_from_popularity(recommender):
    rec = recommender(rules=FilterRules(top_k=5, excluded_categories=frozenset(
        {"c0", "c1", "c2", "c4"})))
    (result,) = rec([("u1", HISTORY)], now_s=0.0)
    assert all(catalog(p.item_id).category == "c3" for p in result.items)
    assert result.backfilled == sum(p.source == "popular" for p in result.items)
    assert len(result.items) <= 5


def test_ab_users_are_scored_by_their_variant_in_one_batch(recommender):
    rec = recommender(ab_version="v2", ab_share=0.5)
    rows = [(f"user-{i}", HISTORY) for i in range(40)]
    results = rec(rows, now_s=0.0)
    assert [r.user_id for r in results] == [u for u, _ in rows]
    by_variant = {(r.variant, r.model_version) for r in results}
    assert by_variant == {("A", "v1"), ("B", "v2")}


def test_campaigns_over_threshold_become_ad_candidates_with_a_segment(recommender):
    cap = {"max_events": 1, "period_s": 60}
    every = Campaign(campaign_id="everything", categories=frozenset({f"c{i}" for i in range(5)}),
                     threshold=0.9, frequency_cap=cap)  # type: ignore[arg-type]
    niche = Campaign(campaign_id="niche", items=frozenset({"60"}), threshold=0.99,
                     frequency_cap=cap)  # type: ignore[arg-type]
    rec = recommender(campaigns=[every, niche])
    history, empty = rec([("u1", HISTORY), ("u2", UserRequest([]))], now_s=0.0)
    assert [(a.campaign_id, a.segment) for a in history.ads] == [("everything", "cart_abandoner")]
    assert history.ads[0].score == pytest.approx(1.0, abs=1e-4)
    assert empty.ads == []


def test_catalog_changes_reach_the_filters_and_the_campaigns(registry_dir, registry_factory):
    # the catalog arrives after the first batch (a worker catching up with catalog.items)
    registry_dir("v1")
    items: dict[str, CatalogItem] = {}
    changed: set[str] = set()

    def take_changes():
        out = set(changed)
        changed.clear()
        return out

    shoes = Campaign(campaign_id="shoes", categories=frozenset({"shoes"}), threshold=1e-9,
                     frequency_cap={"max_events": 9, "period_s": 60})  # type: ignore[arg-type]
    rec = Recommender(registry_factory(), DecayedPopularity(600, 100), FilterRules(top_k=5),
                      items.get, [shoes], catalog_changes=take_changes)
    (first,) = rec([("u1", HISTORY)], now_s=0.0)
    assert [a.campaign_id for a in first.ads] == []  # no item is in a category yet
    shown = first.items[0].item_id
    items.update({shown: CatalogItem(False, None), "3": CatalogItem(True, "shoes")})
    changed.update({shown, "3"})
    (second,) = rec([("u1", HISTORY)], now_s=0.0)
    assert shown not in [p.item_id for p in second.items]  # out of stock now
    assert [a.campaign_id for a in second.ads] == ["shoes"]


def test_batcher_and_recommender_together(recommender):
    rec = recommender()

    async def main():
        batcher = MicroBatcher(rec, max_batch=8, max_wait_s=0.005)
        results = await asyncio.gather(*(batcher.submit(f"u{i % 3}", HISTORY)
                                         for i in range(9)))
        await batcher.aclose()
        return batcher, results

    batcher, results = asyncio.run(main())
    assert batcher.rows == 3  # nine requests, three users
    assert {r.user_id for r in results} == {"u0", "u1", "u2"}
    assert all(len(r.items) == 5 for r in results)


def test_one_popularity_ranking_serves_every_batch_of_its_second(recommender):
    # how many popular items a batch needs grows with its users' exclusions; batches of
    # one with more and more exclusions within a second must not rank the table again
    rec = recommender()
    ranked = []
    top = rec.popularity.top
    rec.popularity.top = lambda n, now_s: ranked.append(n) or top(n, now_s)
    for bought in range(0, 60, 6):
        req = UserRequest([("3", 1)], bought=frozenset(map(str, range(100, 100 + bought))))
        rec([("u1", req)], now_s=5.25)
    assert len(ranked) == 1
    rec([("u1", HISTORY)], now_s=6.5)  # a second later the ranking is fresh again
    assert len(ranked) == 2
    (result,) = rec([("new", UserRequest([("unknown-item", 1)]))], now_s=6.75)
    assert [p.item_id for p in result.items] == ["3", "8", "5", "9", "12"]
