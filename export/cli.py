"""``shopstream export``: train, evaluate and export the model (issue #4)."""

from __future__ import annotations

import argparse
import sys

from shopstream.config import Settings


def _not_built(args: argparse.Namespace, settings: Settings) -> int:
    print("shopstream export is not built yet (open issue #4)", file=sys.stderr)
    return 1


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("export", help="train, evaluate and export the model (not built yet)")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_not_built)
