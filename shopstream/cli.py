"""The ``shopstream`` command: one entry point, a subcommand per job.

Each subcommand's heavy imports (Faust, torch) happen inside its handler, so
``shopstream --help`` and bad arguments answer at once.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from pydantic import ValidationError

from shopstream.config import Settings, load_settings

log = logging.getLogger("shopstream")

Handler = Callable[[argparse.Namespace, Settings], int]

# Packages that add their own subcommands: each has ``register(subparsers)`` that adds a
# parser whose ``func`` default is a Handler. Their module level must import nothing heavy.
SUBCOMMAND_MODULES = ("export.cli", "schemas.cli", "streams.cli", "live.cli", "shopstream.bench")


class UsageError(Exception):
    """A bad command-line argument found after parsing; reported as one line, exit 2."""


class OneLineParser(argparse.ArgumentParser):
    """Reports a bad argument in one line and exits 2, without a usage block or traceback."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _kafka(args: argparse.Namespace, settings: Settings) -> int:
    from shopstream.localkafka import LocalKafka

    broker = LocalKafka(settings)
    if args.action == "fetch":
        broker.fetch_jars()
        print(f"Kafka's jars are in {broker.libs_dir}")
    elif args.action == "up":
        print(broker.up().describe())
    elif args.action == "down":
        stopped = broker.down()
        print(f"kafka {broker.bootstrap}: {'stopped' if stopped else 'was not running'}")
    else:
        status = broker.status()
        print(status.describe())
        if not status.running and _answers(settings):
            print(f"note: a broker not started by this project answers at {broker.bootstrap}")
    return 0


def _answers(settings: Settings) -> bool:
    from shopstream.localkafka import broker_answers

    return broker_answers(settings.kafka_bootstrap, timeout=2.0)


def _topics(args: argparse.Namespace, settings: Settings) -> int:
    from shopstream.topics import TOPICS, create_topics

    if args.action == "list":
        for spec in TOPICS:
            kind = "compacted" if spec.compacted else "retention"
            print(f"{spec.name:20} {spec.partitions(settings)} partitions, {kind}, "
                  f"keyed by {spec.keyed_by}: {spec.purpose}")
        return 0
    from shopstream.worker import wait_for_broker

    wait_for_broker(settings)
    for name, outcome in create_topics(settings).items():
        print(f"{name}: {outcome}")
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from shopstream.worker import run_worker

    return run_worker(settings)


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    if args.duration is not None and args.duration <= 0:
        raise UsageError("--duration must be a positive number of seconds")
    from shopstream.demo import run_demo

    if args.rate <= 0 or args.train_minutes <= 0:
        raise UsageError("--rate and --train-minutes must be positive")
    return run_demo(settings, duration=args.duration, rate=args.rate,
                    train_minutes=args.train_minutes)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="shopstream", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=OneLineParser)

    kafka = sub.add_parser("kafka", help="the local Apache Kafka broker")
    kafka.add_argument("action", choices=["up", "down", "status", "fetch"])
    kafka.set_defaults(func=_kafka)

    topics = sub.add_parser("topics", help="create or list shopstream's topics")
    topics.add_argument("action", choices=["create", "list"])
    topics.set_defaults(func=_topics)

    worker = sub.add_parser("worker", help="run a stream worker in the foreground")
    worker.set_defaults(func=_worker)

    demo = sub.add_parser("demo", help="run the main job end to end on the local broker")
    demo.add_argument("--duration", type=float, default=None,
                      help="stop after this many seconds (default: run until Ctrl-C)")
    demo.add_argument("--rate", type=float, default=50.0,
                      help="events per second replayed (default 50)")
    demo.add_argument("--train-minutes", type=float, default=3.0,
                      help="time limit of the quick model trained when there is none")
    demo.set_defaults(func=_demo)

    for module in SUBCOMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        field = "SHOPSTREAM_" + str(err["loc"][0]).upper() if err["loc"] else "settings"
        print(f"shopstream: error: {field}: {err['msg']}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from shopstream.localkafka import LocalKafkaError

    try:
        return int(args.func(args, settings))
    except UsageError as exc:
        print(f"shopstream: error: {exc}", file=sys.stderr)
        return 2
    except LocalKafkaError as exc:
        print(f"shopstream: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
