"""``shopstream live``: the live page for the front-end (issue #6)."""

from __future__ import annotations

import argparse
import sys
from urllib.parse import urlsplit

from shopstream.config import Settings


def _live(args: argparse.Namespace, settings: Settings) -> int:
    updates: dict[str, object] = {}
    if args.port is not None:
        if not 1 <= args.port <= 65535:
            return _usage(f"--port must be within 1..65535, got {args.port}")
        updates["live_port"] = args.port
    if args.host is not None:
        updates["live_host"] = args.host
    if args.worker_url is not None:
        parts = urlsplit(args.worker_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return _usage(f"--worker-url must look like http://host:port, got {args.worker_url!r}")
        updates["worker_url"] = args.worker_url
    settings = settings.model_copy(update=updates)

    from live.server import run

    try:
        run(settings)
    except OSError as exc:
        print(f"shopstream: error: cannot serve on {settings.live_host}:{settings.live_port}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def _usage(message: str) -> int:
    print(f"shopstream: error: {message}", file=sys.stderr)
    return 2


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("live", help="serve the live page: pick a user, watch recommendations")
    p.add_argument("--host", default=None, help="bind address (default: SHOPSTREAM_LIVE_HOST)")
    p.add_argument("--port", type=int, default=None,
                   help="port (default: SHOPSTREAM_LIVE_PORT, 6080)")
    p.add_argument("--worker-url", default=None,
                   help="the worker's HTTP base URL (default: SHOPSTREAM_WORKER_URL, else "
                        "http://web_host:web_port)")
    p.set_defaults(func=_live)
