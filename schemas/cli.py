"""``shopstream schemas``: the JSON Schema files generated from the event models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shopstream.config import Settings


def _generate(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.generate import JSON_DIR, stale, write_all

    directory = Path(args.dir) if args.dir else JSON_DIR
    if directory.exists() and not directory.is_dir():
        print(f"shopstream: error: {directory} is not a directory", file=sys.stderr)
        return 2
    if args.check:
        bad = stale(directory)
        for path in bad:
            print(f"stale: {path}", file=sys.stderr)
        if bad:
            print("run 'shopstream schemas generate' and commit the files", file=sys.stderr)
            return 1
        print(f"JSON Schema files in {directory} are up to date")
        return 0
    changed = write_all(directory)
    for path in changed:
        print(f"wrote {path}")
    if not changed:
        print(f"JSON Schema files in {directory} are up to date")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("schemas", help="the JSON Schema files of the topics")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION",
                               parser_class=type(p))
    gen = actions.add_parser("generate", help="write schemas/json/<topic>.schema.json")
    gen.add_argument("--check", action="store_true",
                     help="write nothing; exit 1 naming the files that are stale")
    gen.add_argument("--dir", default=None, help="directory of the files (default: schemas/json)")
    gen.set_defaults(func=_generate)
