"""Ad campaigns: loading them, scoring users against them, naming the segment.

Score calibration. The model is trained with a full softmax over the catalogue, so
``softmax(user_vec . item_embeddings)`` over all real items (padding row excluded) is its
probability distribution of the user's next interaction. A campaign's score is that
distribution summed over the campaign's items: the model's probability that the next
interaction falls in the campaign. It lies in 0..1 by construction (and the scores of
campaigns with disjoint items sum to at most 1), so a threshold reads as a probability:
0.05 means "at least a 5% chance the next item is one of ours". It grows with the
number of items a campaign covers; the uniform chance is ``len(items) / N``, which
``uniform_share`` gives for choosing thresholds.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from inference.freqcap import allow
from inference.postfilter import CatalogLookup, CatalogView
from inference.windows import ADD_TO_CART, CLICK, PURCHASE, VIEW, Window

HIGH_INTENT_MIN_EVENTS = 3  # views/clicks in one category that mark a high-intent viewer


class FrequencyCap(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    max_events: int = Field(ge=0)
    period_s: float = Field(gt=0)


class Campaign(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    campaign_id: str = Field(min_length=1)
    items: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    threshold: float = Field(ge=0.0, le=1.0)
    frequency_cap: FrequencyCap

    @model_validator(mode="after")
    def _promotes_something(self) -> Campaign:
        if not self.items and not self.categories:
            raise ValueError(f"campaign {self.campaign_id} promotes no items or categories")
        return self


class CampaignFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    campaigns: list[Campaign]


def load_campaigns(path: Path) -> list[Campaign]:
    """Campaigns from ``{"campaigns": [...]}``; raises ValueError/OSError on a bad file."""
    campaigns = CampaignFile.model_validate_json(Path(path).read_bytes()).campaigns
    ids = Counter(c.campaign_id for c in campaigns)
    dupes = sorted(i for i, n in ids.items() if n > 1)
    if dupes:
        raise ValueError(f"campaign ids used twice: {', '.join(dupes)}")
    return campaigns


@dataclass(frozen=True)
class ResolvedCampaign:
    campaign: Campaign
    indices: np.ndarray  # int64 internal indices of the promoted items the model knows


def resolve(campaigns: Sequence[Campaign], view: CatalogView) -> list[ResolvedCampaign]:
    """Promoted items as internal indices of the view's model: listed items plus catalog
    items of the categories.

    Depends on the model version and the catalog; resolve again when either changes.
    """
    resolved = []
    for c in campaigns:
        found = set(view.index.indices(c.items))
        for category in c.categories:
            code = view.categories.get(category)
            if code is not None:
                found.update(np.flatnonzero(view.category == code).tolist())
        resolved.append(ResolvedCampaign(c, np.array(sorted(found), dtype=np.int64)))
    return resolved


def next_item_probabilities(user_vec: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    """softmax(user_vec . E) over real items: [B, N+1] with column 0 (padding) at 0."""
    logits = user_vec.astype(np.float32) @ embeddings[1:].T  # [B, N]
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    return np.concatenate([np.zeros((len(probs), 1), np.float32), probs], axis=1)


def campaign_scores(user_vec: np.ndarray, embeddings: np.ndarray,
                    campaigns: Sequence[ResolvedCampaign]) -> np.ndarray:
    """[B, C]: each user's probability that the next interaction is a campaign item."""
    probs = next_item_probabilities(user_vec, embeddings)
    scores = np.zeros((len(user_vec), len(campaigns)), dtype=np.float32)
    for j, rc in enumerate(campaigns):
        if rc.indices.size:
            scores[:, j] = probs[:, rc.indices].sum(axis=1)
    return np.clip(scores, 0.0, 1.0)  # float rounding can overshoot 1 by an ulp


def uniform_share(rc: ResolvedCampaign, n_items: int) -> float:
    """The score a campaign would get from a model that knew nothing (a baseline)."""
    return rc.indices.size / n_items


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "unknown"


def segment(window: Window, catalog: CatalogLookup, campaign: Campaign | None = None) -> str:
    """Why a user is targeted, most relevant to the campaign first.

    ``cart_abandoner``: an item added to the cart and not bought later in the window;
    ``high_intent_<category>``: at least HIGH_INTENT_MIN_EVENTS views/clicks in a category;
    ``recent_buyer``: a purchase in the window; else ``browser``.
    """
    bought_after: set[str] = set()
    abandoned: list[str] = []
    for item, code, *_ in reversed(window):  # newest first, so "later" purchases are known
        if code == PURCHASE:
            bought_after.add(item)
        elif code == ADD_TO_CART and item not in bought_after:
            abandoned.append(item)
    interest: Counter[str] = Counter()
    for item, code, *_ in window:
        info = catalog(item)
        if code in (VIEW, CLICK) and info is not None and info.category is not None:
            interest[info.category] += 1
    hot = [c for c, n in interest.most_common() if n >= HIGH_INTENT_MIN_EVENTS]
    if campaign is not None:
        for item in abandoned:
            info = catalog(item)
            if item in campaign.items or (info and info.category in campaign.categories):
                return "cart_abandoner"
        for category in hot:
            if category in campaign.categories:
                return f"high_intent_{_slug(category)}"
    if abandoned:
        return "cart_abandoner"
    if hot:
        return f"high_intent_{_slug(hot[0])}"
    if bought_after:
        return "recent_buyer"
    return "browser"


def decide(campaign: Campaign, score: float, history: list[int],
           now_ms: int) -> tuple[bool, list[int]]:
    """Emit an ad event? Only when the score passes the threshold and the cap allows.

    Returns (emit, history to store); below the threshold the history is returned as is.
    """
    if score < campaign.threshold:
        return False, history
    cap = campaign.frequency_cap
    return allow(history, now_ms, cap.max_events, int(cap.period_s * 1000))
