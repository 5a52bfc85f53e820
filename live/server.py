"""The live page's web service (aiohttp): the page, its event stream and its two APIs.

    GET /                    the page (one static HTML file)
    GET /events?user_id=U    server-sent events for U: ``recommendation`` and ``ad``
    GET /api/users/{id}      the worker's GET /users/{id}, passed through (404 included)
    GET /api/stats           throughput, latency and dead letters from the worker's metrics
    GET /api/recent-users    users seen on the output topics lately, newest first
    GET /health              whether the Kafka feed is positioned and the worker answers
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from dataclasses import dataclass, field
from importlib import resources

from aiohttp import web

from live import sse
from live.feed import Feed
from live.hub import Hub
from live.stats import Snapshot, parse_metrics, stats
from live.worker_client import WorkerClient, WorkerUnreachable
from shopstream.config import Settings

log = logging.getLogger(__name__)

HEARTBEAT_S = 10.0  # a write to a closed browser connection is how a leaver is noticed


@dataclass
class LiveState:
    settings: Settings
    hub: Hub
    client: WorkerClient
    feed: Feed | None = None
    before: Snapshot | None = None
    after: Snapshot | None = None
    worker_up: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


STATE = web.AppKey("live_state", LiveState)


def page_html() -> bytes:
    return resources.files("live").joinpath("static", "index.html").read_bytes()


def make_app(settings: Settings, with_feed: bool = True) -> web.Application:
    """The web application; ``with_feed=False`` leaves Kafka out (tests of the HTTP side)."""
    app = web.Application()
    state = LiveState(settings, Hub(settings.live_queue_size),
                      WorkerClient(settings.worker_base_url))
    app[STATE] = state
    html = page_html()

    async def index(request: web.Request) -> web.Response:
        return web.Response(body=html, content_type="text/html", charset="utf-8")

    app.router.add_get("/", index)
    app.router.add_get("/events", events)
    app.router.add_get("/api/users/{user_id}", user)
    app.router.add_get("/api/stats", stats_view)
    app.router.add_get("/api/recent-users", recent_users)
    app.router.add_get("/health", health)

    async def start(app: web.Application) -> None:
        await state.client.start()
        if with_feed:
            state.feed = Feed(settings, state.hub.publish, asyncio.get_running_loop())
            state.feed.start()
        state.tasks.append(asyncio.create_task(_scrape(state)))

    async def shutdown(app: web.Application) -> None:
        state.hub.close()  # open event streams end, so their handlers return

    async def cleanup(app: web.Application) -> None:
        for task in state.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if state.feed is not None:
            await asyncio.get_running_loop().run_in_executor(None, state.feed.stop)
        await state.client.close()

    app.on_startup.append(start)
    app.on_shutdown.append(shutdown)
    app.on_cleanup.append(cleanup)
    return app


async def events(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    user_id = request.query.get("user_id", "").strip()
    if not user_id:
        return web.json_response({"error": "user_id is required"}, status=400)
    resp = web.StreamResponse(headers=sse.HEADERS)
    await resp.prepare(request)
    sub = state.hub.subscribe(user_id)
    log.debug("event stream opened (%d open)", state.hub.subscribers())
    try:
        await resp.write(sse.OPENING)
        while True:
            try:
                event = await sub.get(timeout=HEARTBEAT_S)
            except TimeoutError:
                await resp.write(sse.HEARTBEAT)
                continue
            if event is None:
                break
            await resp.write(sse.frame(event))
    except ConnectionResetError:
        pass  # the browser left
    finally:
        state.hub.unsubscribe(sub)
        log.debug("event stream closed (%d open)", state.hub.subscribers())
    return resp


async def user(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        status, body = await state.client.user(request.match_info["user_id"])
    except WorkerUnreachable:
        return web.json_response({"error": "the worker does not answer"}, status=502)
    return web.Response(status=status, body=body, content_type="application/json")


async def stats_view(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = stats(state.before, state.after)
    body["worker_up"] = state.worker_up
    body["page"] = {"watched_users": state.hub.watched_users(),
                    "streams": state.hub.subscribers(), "published": state.hub.published}
    return web.json_response(body)


async def recent_users(request: web.Request) -> web.Response:
    return web.json_response({"users": request.app[STATE].hub.recent_users()})


async def health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    feed_ready = state.feed is not None and state.feed.ready.is_set()
    return web.json_response({"status": "ok", "feed_ready": feed_ready,
                              "worker_up": state.worker_up})


async def _scrape(state: LiveState) -> None:
    """Read the worker's metrics every ``live_scrape_s``, keeping the last two scrapes."""
    while True:
        try:
            snapshot = parse_metrics(await state.client.metrics(), time.monotonic())
        except (WorkerUnreachable, ValueError) as exc:
            if state.worker_up:
                log.warning("worker metrics unavailable: %s", exc)
            state.worker_up = False
        else:
            if not state.worker_up:
                log.info("worker metrics available")
            state.worker_up = True
            state.before, state.after = state.after, snapshot
        await asyncio.sleep(state.settings.live_scrape_s)


def run(settings: Settings) -> None:
    """Serve until interrupted (SIGINT or SIGTERM); OSError when the address is taken."""
    # Bound before the app starts, so a taken port fails at once, before Kafka is touched.
    family = socket.AF_INET6 if ":" in settings.live_host else socket.AF_INET
    sock = socket.create_server((settings.live_host, settings.live_port), family=family)
    app = make_app(settings)
    log.info("live page on http://%s:%d/ (worker %s)", settings.live_host, settings.live_port,
             settings.worker_base_url)
    web.run_app(app, sock=sock, print=None, shutdown_timeout=5.0, access_log=None)
