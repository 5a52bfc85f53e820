"""The live service's HTTP side against a stand-in worker (no Kafka: the feed is left out)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from live import server
from live.hub import LiveEvent
from shopstream.config import load_settings
from streams.metrics import WorkerMetrics

Scenario = Callable[[TestClient, WorkerMetrics, web.Application], Awaitable[Any]]


def _fake_worker(metrics: WorkerMetrics) -> web.Application:
    app = web.Application()

    async def users(request: web.Request) -> web.Response:
        if request.match_info["user_id"] == "ghost":
            return web.json_response({"error": "unknown user"}, status=404)
        return web.json_response({"user_id": request.match_info["user_id"], "window": {}})

    async def render(request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), content_type="text/plain")

    app.router.add_get("/users/{user_id}", users)
    app.router.add_get("/metrics", render)
    return app


def _run(scenario: Scenario, worker_up: bool = True) -> Any:
    async def go() -> Any:
        metrics = WorkerMetrics()
        worker = TestServer(_fake_worker(metrics))
        await worker.start_server()
        port = worker.port
        if not worker_up:
            await worker.close()
        settings = load_settings(worker_url=f"http://127.0.0.1:{port}", live_scrape_s=0.05)
        app = server.make_app(settings, with_feed=False)
        try:
            async with TestClient(TestServer(app)) as client:
                return await scenario(client, metrics, app)
        finally:
            await worker.close()
    return asyncio.run(go())


def test_the_page_is_served_as_html():
    async def scenario(client, metrics, app):
        resp = await client.get("/")
        return resp.status, resp.content_type, await resp.text()
    status, content_type, text = _run(scenario)
    assert (status, content_type) == (200, "text/html")
    assert "<title>shopstream live</title>" in text and "EventSource" in text


def test_user_view_passes_the_workers_answer_through_404_included():
    async def scenario(client, metrics, app):
        found = await client.get("/api/users/alice")
        missing = await client.get("/api/users/ghost")
        return found.status, await found.json(), missing.status, await missing.json()
    status, body, missing_status, missing_body = _run(scenario)
    assert status == 200 and body["user_id"] == "alice"
    assert missing_status == 404 and missing_body == {"error": "unknown user"}


def test_user_view_answers_502_when_the_worker_is_down():
    async def scenario(client, metrics, app):
        resp = await client.get("/api/users/alice")
        return resp.status, await resp.json()
    status, body = _run(scenario, worker_up=False)
    assert status == 502 and "worker" in body["error"]


def test_stats_show_rates_from_the_workers_metrics():
    async def scenario(client, metrics, app):
        metrics.events_in.labels(topic="events.views").inc(5)
        await asyncio.sleep(0.2)
        metrics.events_in.labels(topic="events.views").inc(100)
        metrics.dead_letters.labels(reason="not_json").inc()
        await asyncio.sleep(0.2)
        return await (await client.get("/api/stats")).json()
    body = _run(scenario)
    assert body["ready"] and body["worker_up"]
    assert body["events_in_total"] == {"events.views": 105.0}
    assert body["dead_letters_total"] == {"not_json": 1.0}


def test_stats_say_when_the_worker_does_not_answer():
    async def scenario(client, metrics, app):
        await asyncio.sleep(0.1)
        return await (await client.get("/api/stats")).json()
    assert _run(scenario, worker_up=False) == {
        "ready": False, "worker_up": False,
        "page": {"watched_users": 0, "streams": 0, "published": 0}}


def test_events_need_a_user_id():
    async def scenario(client, metrics, app):
        resp = await client.get("/events")
        return resp.status
    assert _run(scenario) == 400


def test_event_stream_carries_the_watched_users_events_only():
    async def scenario(client, metrics, app):
        hub = app[server.STATE].hub
        resp = await client.get("/events", params={"user_id": "alice"})
        assert resp.headers["Content-Type"] == "text/event-stream"
        await resp.content.readuntil(b"\n\n")  # the opening
        hub.publish(LiveEvent("recommendation", "bob", "b1", b'{"for": "bob"}'))
        hub.publish(LiveEvent("ad", "alice", "a1", b'{"for": "alice"}'))
        got = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5)
        resp.close()
        return got
    assert _run(scenario) == b'event: ad\nid: a1\ndata: {"for": "alice"}\n\n'


def test_a_browser_that_leaves_is_cleaned_up(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(server, "HEARTBEAT_S", 0.05)

    async def scenario(client, metrics, app):
        hub = app[server.STATE].hub
        resp = await client.get("/events", params={"user_id": "alice"})
        await resp.content.readuntil(b"\n\n")
        during = hub.subscribers()
        resp.close()
        for _ in range(100):
            if hub.subscribers() == 0:
                break
            await asyncio.sleep(0.02)
        return during, hub.subscribers(), hub.watched_users()
    assert _run(scenario) == (1, 0, 0)


def test_recent_users_list_what_the_stream_saw():
    async def scenario(client, metrics, app):
        app[server.STATE].hub.publish(LiveEvent("recommendation", "carol", "c1", b"{}"))
        return await (await client.get("/api/recent-users")).json()
    assert _run(scenario) == {"users": [{"user_id": "carol", "recommendations": 1, "ads": 0}]}


@pytest.mark.parametrize("argv", [["live", "--port", "0"], ["live", "--port", "x"],
                                  ["live", "--worker-url", "localhost:6066"]])
def test_bad_live_arguments_give_one_line_and_exit_2(argv, capsys):
    from shopstream.cli import main

    with pytest.raises(SystemExit) as exit_info:
        code = main(argv)
        raise SystemExit(code)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2
    assert len(err) == 1 and err[0].startswith("shopstream")


def test_a_taken_port_gives_one_line_and_exit_1_before_anything_starts(capsys):
    import socket

    from shopstream.cli import main

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code = main(["live", "--port", str(port)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith("shopstream: error: cannot serve on")
