"""The worker's HTTP views: health, one user's window and latest recommendation, metrics.

Faust's generic table browsing stays off; only these views are served.
"""

from __future__ import annotations

import faust
import orjson
from faust.web import Request, Response, View

from schemas import now_ms
from streams.handlers import EventHandlers
from streams.metrics import WorkerMetrics


def add_views(app: faust.App, handlers: EventHandlers, metrics: WorkerMetrics,
              events: faust.TopicT) -> None:
    """``events``: one input topic keyed by user_id (raw), whose partitions route requests."""

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok"})

    @app.page("/users/{user_id}")
    class UserView(View):
        # Forwarded to the worker that owns the user's partition: the partition of the
        # user's events, where the user's rows are written (streams.sink). Faust's
        # table_route would hash the table's key as it encodes it (JSON, in quotes) and so
        # pick another partition, and another worker, for most users once there are two.
        @app.topic_route(topic=events, match_info="user_id")  # type: ignore[arg-type]
        async def get(self, request: Request, user_id: str) -> Response:
            state = handlers.load_state(user_id)
            if state is None:
                return self.json({"error": "unknown user"}, status=404)
            return self.json({
                "user_id": user_id,
                "window": state.summary(now_ms()),
                "latest_recommendation": orjson.loads(state.latest) if state.latest else None,
            })

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(metrics.render(), content_type=metrics.content_type)
