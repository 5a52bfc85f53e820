"""``shopstream replay``: load historical logs into the event topics (issue #6)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shopstream.config import Settings

FORMATS = ("seq", "jsonl", "retailrocket")  # streams.replay_formats.FORMATS, kept light here


def _speed(text: str) -> float | None:
    from streams.replay_pacing import parse_speed

    try:
        return parse_speed(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    if not (text.isascii() and text.isdigit() and int(text) > 0):
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return int(text)


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from streams.replay import BrokerUnavailable, ReplayOptions, run_replay
    from streams.replay_formats import FormatMismatch, guess_format

    options = ReplayOptions(
        path=args.path, fmt=args.format or guess_format(args.path), speed=args.speed,
        rate=args.rate, limit=args.limit, catalog=args.catalog,
    )
    try:
        summary = run_replay(settings, options)
    except FormatMismatch as exc:
        print(f"shopstream: error: {exc}", file=sys.stderr)
        return 2
    except BrokerUnavailable as exc:
        print(f"shopstream: {exc}", file=sys.stderr)
        return 1
    print(summary.describe())
    return 0 if summary.ok else 1


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "replay", help="load historical logs into the event topics",
        description="Send a log's views and clicks to events.views and events.clicks, keyed "
                    "by user id, with deterministic event ids (a second replay is dropped "
                    "by the worker as repeats).")
    p.add_argument("path", type=Path, help="the log file")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="seq (user item item ...), jsonl (schemas events) or retailrocket "
                        "(CSV); default: from the file name (.jsonl, .csv, else seq)")
    p.add_argument("--speed", type=_speed, default=None, metavar="max|realtime|Nx",
                   help="max (default), the log's own pace, or N times it (10x)")
    p.add_argument("--rate", type=_positive_float, default=None, metavar="EVENTS_PER_S",
                   help="send at most this many events a second")
    p.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                   help="replay only the first N events of the file")
    p.add_argument("--catalog", action="store_true",
                   help="also publish a generated catalog record for each item seen")
    p.set_defaults(func=_replay)
