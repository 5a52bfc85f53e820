import json

import numpy as np
import pytest
from pydantic import ValidationError

from inference.ads import (
    Campaign,
    campaign_scores,
    decide,
    load_campaigns,
    next_item_probabilities,
    resolve,
    segment,
    uniform_share,
)
from inference.postfilter import CatalogItem, CatalogView, FilterRules
from inference.windows import ItemIndex
from streams.state import Interaction

CAP = {"max_events": 2, "period_s": 3600}
INDEX = ItemIndex(["", "1", "2", "3", "4", "5"])
CATALOG = {"1": CatalogItem(True, "Lip Stick"), "2": CatalogItem(True, "Lip Stick"),
           "3": CatalogItem(True, "shoes"), "4": CatalogItem(True, "shoes")}
VIEW = CatalogView(INDEX, CATALOG.get, FilterRules(), {})


def _campaign(**kw):
    return Campaign.model_validate({"campaign_id": "c1", "threshold": 0.1,
                                    "frequency_cap": CAP, **kw})


def test_campaigns_load_from_a_json_file(tmp_path):
    path = tmp_path / "campaigns.json"
    path.write_text(json.dumps({"campaigns": [
        {"campaign_id": "c1", "items": ["1"], "threshold": 0.2, "frequency_cap": CAP},
        {"campaign_id": "c2", "categories": ["shoes"], "threshold": 0.1,
         "frequency_cap": CAP}]}))
    campaigns = load_campaigns(path)
    assert [c.campaign_id for c in campaigns] == ["c1", "c2"]
    assert campaigns[1].frequency_cap.period_s == 3600


def test_bad_campaign_files_are_refused(tmp_path):
    path = tmp_path / "campaigns.json"
    path.write_text(json.dumps({"campaigns": [
        {"campaign_id": "c1", "items": ["1"], "threshold": 0.2, "frequency_cap": CAP}] * 2}))
    with pytest.raises(ValueError, match="twice"):
        load_campaigns(path)
    with pytest.raises(ValidationError):
        _campaign()  # promotes nothing
    with pytest.raises(ValidationError):
        _campaign(items=["1"], threshold=1.5)


def test_resolve_joins_listed_items_and_catalog_categories():
    (rc,) = resolve([_campaign(items=["5", "unknown"], categories=["shoes"])], VIEW)
    assert rc.indices.tolist() == [3, 4, 5]
    assert uniform_share(rc, 5) == pytest.approx(0.6)


def test_score_is_the_softmax_mass_on_the_campaign_items():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(6, 4)).astype(np.float32)
    user_vec = rng.normal(size=(3, 4)).astype(np.float32)
    rcs = resolve([_campaign(items=["1", "3"]), _campaign(campaign_id="all",
                   items=["1", "2", "3", "4", "5"])], VIEW)
    scores = campaign_scores(user_vec, emb, rcs)
    logits = user_vec @ emb[1:].T
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(scores[:, 0], expected[:, [0, 2]].sum(axis=1), rtol=1e-5)
    np.testing.assert_allclose(scores[:, 1], 1.0, rtol=1e-5)  # every item: certain
    assert ((scores >= 0) & (scores <= 1)).all()


def test_probabilities_ignore_the_padding_row_and_sum_to_one():
    emb = np.vstack([np.full((1, 3), 50.0), np.eye(3)]).astype(np.float32)
    probs = next_item_probabilities(np.ones((2, 3), np.float32), emb)
    assert (probs[:, 0] == 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)


def test_cart_abandoner_needs_an_add_to_cart_without_a_later_purchase():
    assert segment([("1", 3), ("3", 1)], CATALOG.get) == "cart_abandoner"
    assert segment([("1", 3), ("1", 4)], CATALOG.get) == "recent_buyer"


def test_high_intent_names_the_category_viewed_most():
    window = [("1", 1), ("2", 2), ("1", 1), ("3", 1)]
    assert segment(window, CATALOG.get) == "high_intent_lip_stick"
    assert segment(window[:2], CATALOG.get) == "browser"


def test_segments_read_the_workers_own_window_entries():
    window = [Interaction(item, code, n, 0) for n, (item, code) in
              enumerate([("1", 3), ("1", 1), ("2", 2), ("1", 1)])]
    assert segment(window, CATALOG.get) == "cart_abandoner"
    assert segment(window[1:], CATALOG.get) == "high_intent_lip_stick"


def test_the_segment_relevant_to_the_campaign_comes_first():
    window = [("3", 3), ("1", 1), ("2", 1), ("1", 2)]
    lips = _campaign(categories=["Lip Stick"])
    shoes = _campaign(categories=["shoes"])
    assert segment(window, CATALOG.get, lips) == "high_intent_lip_stick"
    assert segment(window, CATALOG.get, shoes) == "cart_abandoner"


def test_decide_needs_the_threshold_and_room_under_the_cap():
    campaign = _campaign(items=["1"], threshold=0.3)
    assert decide(campaign, 0.29, [], 1000) == (False, [])
    ok, history = decide(campaign, 0.5, [], 1000)
    ok2, history = decide(campaign, 0.5, history, 2000)
    ok3, history = decide(campaign, 0.9, history, 3000)
    assert (ok, ok2, ok3) == (True, True, False)
    assert history == [1000, 2000]
