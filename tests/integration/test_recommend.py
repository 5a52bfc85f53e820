"""Recommendations and ad events from `shopstream worker` on real Kafka with a real ONNX
model (a small random one honouring the contract, built by inference.testing)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import jsonschema
import pytest

from inference.registry import write_current
from inference.testing import build_version
from schemas.generate import JSON_DIR, schema_file_name
from shopstream import topics as t
from tests.integration.factories import BASE_TS, click, view
from tests.integration.helpers import (
    CATALOG_ROWS,
    collect,
    collect_for,
    http_get,
    metric_value,
    send_json,
    unique_users,
    wait_for,
)

N_ITEMS = 60


@pytest.fixture
def shop(tmp_path: Path, kafka):
    """A model registry with one version over this test's own item ids, a catalog on
    catalog.items where every even item is out of stock, and one ad campaign."""
    tag = uuid.uuid4().hex[:6]
    items = [f"{tag}-{i}" for i in range(1, N_ITEMS + 1)]
    model_dir = tmp_path / "models"
    first = build_version(model_dir, "v1", n_items=N_ITEMS, item_ids=items, max_len=8, top_k=30)
    send_json(kafka, t.CATALOG, [
        {"item_id": item, "title": f"thing {i}", "category": f"cat{(i // 2) % 6}",
         "in_stock": i % 2 == 1, "updated_ts": BASE_TS}
        for i, item in enumerate(items, start=1)
    ], key_field="item_id")
    campaigns = tmp_path / "campaigns.json"
    campaigns.write_text(json.dumps({"campaigns": [{
        "campaign_id": f"camp-{tag}", "items": items[:30], "threshold": 0.0,
        "frequency_cap": {"max_events": 2, "period_s": 3600}}]}))
    return {"items": items, "model_dir": model_dir, "first": first, "campaigns": campaigns,
            "campaign": f"camp-{tag}"}


def _worker(worker_factory, shop):
    return worker_factory(model_dir=str(shop["model_dir"]),
                          campaigns_path=str(shop["campaigns"]), max_wait_ms="5")


def _schema(topic: str) -> dict:
    return json.loads((JSON_DIR / schema_file_name(topic)).read_text())


def test_recommendations_exclude_bought_and_out_of_stock_items(kafka, worker_factory, shop):
    worker = _worker(worker_factory, shop).start()
    wait_for(lambda: metric_value(worker.web_port, CATALOG_ROWS) >= N_ITEMS,
             what="catalog in the worker")
    items = shop["items"]
    users = unique_users(3)
    for n, user in enumerate(users):
        send_json(kafka, t.VIEWS, [view(user, items[n * 5 + k], k) for k in range(3)])
        send_json(kafka, t.CLICKS, [click(user, items[n * 5 + 2], 10, action="purchase")])
    recs = collect(kafka, t.RECS, keep=lambda r: r["user_id"] in users,
                   until=lambda rs: {r["user_id"] for r in rs if r["trigger_event_id"]
                                     .endswith("-c10")} == set(users))
    schema = _schema(t.RECS)
    for rec in recs:
        jsonschema.validate(rec, schema)
        assert rec["model_version"] == "v1"
    for n, user in enumerate(users):
        final = [r for r in recs if r["user_id"] == user and r["trigger_event_id"] == f"{user}-c10"]
        assert final, f"no recommendation after the purchase for user {n}"
        picked = [i["item_id"] for i in final[-1]["items"]]
        assert len(picked) == 10
        assert items[n * 5 + 2] not in picked  # bought
        assert all(int(i.rsplit("-", 1)[1]) % 2 == 1 for i in picked)  # in stock only
        assert all(i["reason"] for i in final[-1]["items"])
    status, body = http_get(worker.web_port, f"/users/{users[0]}")
    assert body["latest_recommendation"]["user_id"] == users[0]


def test_new_model_version_is_used_without_restart(kafka, worker_factory, shop):
    worker = _worker(worker_factory, shop).start()
    (user,) = unique_users(1)
    items = shop["items"]
    send_json(kafka, t.VIEWS, [view(user, items[0], 1)])
    collect(kafka, t.RECS, keep=lambda r: r["user_id"] == user,
            until=lambda rs: any(r["model_version"] == "v1" for r in rs))
    build_version(shop["model_dir"], "v2", n_items=N_ITEMS, item_ids=items, max_len=8,
                  top_k=30, seed=1, make_current=False)
    write_current(shop["model_dir"], "v2")

    def newest_version() -> str | None:
        n = newest_version.calls = getattr(newest_version, "calls", 0) + 1
        send_json(kafka, t.VIEWS, [view(user, items[1], 100 + n)])
        recs = collect(kafka, t.RECS, keep=lambda r: r["user_id"] == user
                       and r["trigger_event_id"] == f"{user}-v{100 + n}",
                       until=lambda rs: len(rs) >= 1)
        return recs[-1]["model_version"] if recs[-1]["model_version"] == "v2" else None

    assert wait_for(newest_version, timeout=60, what="model v2 in use") == "v2"
    assert worker.proc is not None and worker.proc.poll() is None and worker.starts == 1


def test_frequency_cap_holds_across_a_restart(kafka, worker_factory, shop):
    worker = _worker(worker_factory, shop).start()
    (user,) = unique_users(1)
    items = shop["items"]

    def one_event(n: int) -> None:
        send_json(kafka, t.VIEWS, [view(user, items[n % 30], n)])
        collect(kafka, t.RECS, keep=lambda r: r["trigger_event_id"] == f"{user}-v{n}",
                until=lambda rs: len(rs) >= 1)

    for n in range(4):
        one_event(n)
    first = _all_ads(kafka, user)
    assert len(first) == 2  # threshold 0 passes every time; the cap stops the rest
    for ad in first:
        jsonschema.validate(ad, _schema(t.ADS))
        assert ad["campaign_id"] == shop["campaign"] and 0.0 <= ad["score"] <= 1.0

    worker.stop()
    worker.wipe_tables()  # the cap comes back from the changelog
    worker.start()
    # so does the latest recommendation, kept in the user's state row
    status, body = http_get(worker.web_port, f"/users/{user}")
    assert body["latest_recommendation"]["trigger_event_id"] == f"{user}-v3"
    for n in range(4, 7):
        one_event(n)
    assert len(_all_ads(kafka, user)) == 2



def _all_ads(kafka, user: str) -> list[dict]:
    return collect_for(kafka, t.ADS, keep=lambda r: r["user_id"] == user, seconds=6)
