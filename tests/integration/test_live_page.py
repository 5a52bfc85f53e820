"""The live page in a real headless browser: a worker with a real ONNX model on real Kafka,
`shopstream live` in a subprocess, Chromium (Debian's package) driven by Playwright.

Needs `apt-get install -y chromium` and the `playwright` package (never `playwright
install`: the browser is the system one). The screenshot is kept under the test's tmp dir
and copied to .local/artifacts/live-page.png.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from inference.testing import build_version
from schemas import now_ms
from shopstream import topics as t
from shopstream.config import PROJECT_ROOT, Settings
from shopstream.localkafka import free_port
from tests.integration.factories import BASE_TS, click, view
from tests.integration.helpers import (
    CATALOG_ROWS,
    collect,
    http_get,
    metric_value,
    send_json,
    unique_users,
    wait_for,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
ARTIFACT = PROJECT_ROOT / ".local" / "artifacts" / "live-page.png"
N_ITEMS = 40


@pytest.fixture
def shop(tmp_path: Path, kafka: Settings) -> dict:
    """A model over this test's own items, their catalog rows, and one ad campaign."""
    tag = uuid.uuid4().hex[:6]
    items = [f"{tag}-{i}" for i in range(1, N_ITEMS + 1)]
    model_dir = tmp_path / "models"
    build_version(model_dir, "v1", n_items=N_ITEMS, item_ids=items, max_len=8, top_k=30)
    send_json(kafka, t.CATALOG, [
        {"item_id": item, "title": f"thing {i}", "category": f"cat{i % 5}", "in_stock": True,
         "updated_ts": BASE_TS}
        for i, item in enumerate(items, start=1)
    ], key_field="item_id")
    campaigns = tmp_path / "campaigns.json"
    campaigns.write_text(json.dumps({"campaigns": [{
        "campaign_id": f"spring-{tag}", "items": items, "threshold": 0.0,
        "frequency_cap": {"max_events": 5, "period_s": 3600}}]}))
    return {"items": items, "model_dir": model_dir, "campaigns": campaigns,
            "campaign": f"spring-{tag}"}


@pytest.fixture
def live_service(kafka: Settings, tmp_path: Path) -> Iterator:
    """Start `shopstream live` pointed at a worker; returns its port once it is ready."""
    procs: list[subprocess.Popen[bytes]] = []
    log_path = tmp_path / "live.log"

    def start(worker_port: int) -> int:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPSTREAM_")}
        env.update({"SHOPSTREAM_KAFKA_BOOTSTRAP": kafka.kafka_bootstrap,
                    "SHOPSTREAM_LIVE_SCRAPE_S": "0.5", "PYTHONUNBUFFERED": "1"})
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "shopstream.cli", "live", "--port", str(port),
                 "--worker-url", f"http://127.0.0.1:{worker_port}"],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)
        procs.append(proc)

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"shopstream live exited:\n{log_path.read_text()}")
            try:
                _, body = http_get(port, "/health")
            except OSError:
                return False
            return bool(body["feed_ready"] and body["worker_up"])

        wait_for(ready, timeout=60, what="the live service's feed and worker link")
        return port

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    assert all(proc.returncode == 0 for proc in procs), log_path.read_text()


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1360, "height": 900})
        finally:
            browser.close()


def test_a_recommendation_for_the_picked_user_appears_on_the_page(
        kafka, worker_factory, shop, live_service, page, tmp_path):
    worker = worker_factory(model_dir=str(shop["model_dir"]),
                            campaigns_path=str(shop["campaigns"]), max_wait_ms="5").start()
    wait_for(lambda: metric_value(worker.web_port, CATALOG_ROWS) >= N_ITEMS,
             what="catalog in the worker")
    port = live_service(worker.web_port)
    items = shop["items"]
    user, other = unique_users(2)

    page.goto(f"http://127.0.0.1:{port}/")
    expect(page.locator("h1")).to_have_text("shopstream live")
    page.fill("#user-input", user)
    page.press("#user-input", "Enter")
    expect(page.locator("#conn")).to_have_text(f"live: {user}", timeout=15_000)

    now = now_ms()  # fresh timestamps, so the latency panel shows the pipeline's own delay
    send_json(kafka, t.VIEWS, [view(other, items[9], 1, ts=now)])  # not the watched user
    send_json(kafka, t.VIEWS, [view(user, items[n], n, ts=now + n, dwell_ms=1500 * n)
                               for n in range(1, 4)])
    send_json(kafka, t.CLICKS, [click(user, items[3], 4, ts=now + 4, action="add_to_cart")])
    last = collect(kafka, t.RECS, keep=lambda r: r["trigger_event_id"] == f"{user}-c4",
                   until=lambda rs: len(rs) >= 1)[-1]

    # the page shows the recommendation of the last event, in the model's order, with reasons
    shown_ids = page.locator("#recs tr td:nth-child(2)")
    expected = [i["item_id"] for i in last["items"]]
    expect(shown_ids).to_have_text(expected, timeout=15_000)
    assert all(page.locator("#recs tr td:nth-child(4)").all_inner_texts())
    expect(page.locator("#rec-meta")).to_contain_text("model v1")
    # its window was refreshed: four events, newest first, add-to-cart on top
    expect(page.locator("#window tr")).to_have_count(4, timeout=10_000)
    expect(page.locator("#window tr").first).to_contain_text("add_to_cart")
    # ad events arrived for this user's campaign
    expect(page.locator("#ads tr").first).to_contain_text(shop["campaign"], timeout=10_000)
    # the other user's outputs stayed off this page but show up in the recent list
    expect(page.locator("#recent li", has_text=user)).to_have_count(1, timeout=10_000)
    expect(page.locator("#recent li", has_text=other)).to_have_count(1)
    assert other not in page.locator("#recs").inner_text()
    # the metrics panel: traffic per topic and a latency figure
    expect(page.locator("#rates")).to_contain_text(t.VIEWS, timeout=10_000)
    expect(page.locator("#rates")).to_contain_text(t.RECS)
    expect(page.locator("#p50")).to_have_text(re.compile(r"\d+(\.\d+)? m?s$"))

    shot = tmp_path / "live-page.png"
    page.screenshot(path=str(shot), full_page=True)
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, ARTIFACT)
    assert shot.stat().st_size > 10_000
