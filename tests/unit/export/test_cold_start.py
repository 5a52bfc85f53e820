"""A new item with only a title is recommended to users of similar items."""

from __future__ import annotations

import json

import numpy as np

from export import registry
from export.onnx_export import session
from export.pipeline import TrainRequest, run
from export.train import TrainConfig

THEMES = {
    "lipstick": ["matte red lipstick", "glossy pink lipstick", "nude satin lipstick",
                 "long-lasting berry lipstick", "velvet plum lipstick", "sheer peach lipstick",
                 "classic crimson lipstick", "moisturising rose lipstick"],
    "tent": ["two-person dome tent", "waterproof camping tent", "ultralight backpacking tent",
             "family cabin tent", "pop-up beach tent", "four-season mountain tent",
             "three-person hiking tent", "instant cabin tent for camping"],
    "coffee": ["dark roast coffee beans", "espresso ground coffee", "decaf arabica coffee",
               "colombian medium roast coffee", "organic whole bean coffee",
               "french roast coffee beans", "cold brew coffee blend", "breakfast blend coffee"],
    "drill": ["cordless power drill", "hammer drill 18V", "compact drill driver kit",
              "brushless cordless drill", "right-angle drill", "impact drill with battery",
              "corded electric drill", "drill and bit set"],
}
COLD = ("new-lipstick", "creamy coral lipstick")


def _write_log(tmp_path) -> tuple:
    rng = np.random.default_rng(0)
    lines, catalog = [], {}
    for theme, titles in THEMES.items():
        for i, title in enumerate(titles):
            catalog[f"{theme}-{i}"] = title
    catalog[COLD[0]] = COLD[1]
    for item, title in catalog.items():
        lines.append({"item_id": item, "title": title})
    for u in range(160):
        theme = list(THEMES)[u % len(THEMES)]
        for step, i in enumerate(rng.permutation(len(THEMES[theme]))[:6]):
            lines.append({"user_id": f"u{u}", "item_id": f"{theme}-{i}", "type": "view",
                          "ts": 1_700_000_000_000 + 1000 * (u * 10 + step)})
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_title_only_item_reaches_users_of_similar_items(tmp_path):
    data = _write_log(tmp_path)
    version = run(TrainRequest(data=data, fmt="jsonl", out=tmp_path / "models", top_k=10,
                               train=TrainConfig(epochs=10, batch_size=32, lr=3e-3),
                               model={"dim": 32, "max_len": 10}, progress=False))
    meta = registry.read_metadata(version)
    index = {item: i for i, item in enumerate(meta["item_ids"])}

    def recommend(history: list[str]) -> list[str]:
        items = np.array([[index[h] for h in history]])
        feeds = {"item_seq": items, "event_type": np.ones_like(items), "exclude": items}
        top = session(version / "model.onnx").run(["top_items"], feeds)[0][0]
        return [meta["item_ids"][i] for i in top]

    # A lipstick fan gets the new lipstick before anything from the other shelves.
    top = recommend(["lipstick-0", "lipstick-3", "lipstick-5"])
    assert COLD[0] in top
    assert all(item.startswith("lipstick-") for item in top[: top.index(COLD[0])])
    # Fans of other shelves get all their own shelf's items before it, if it shows at all.
    for theme in ("tent", "coffee", "drill"):
        top = recommend([f"{theme}-0", f"{theme}-3", f"{theme}-5"])
        assert all(item.startswith(f"{theme}-") for item in top[:5]), (theme, top)
