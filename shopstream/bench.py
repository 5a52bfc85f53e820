"""``shopstream bench``: run the benchmarks in bench/ (each writes JSON and a PNG plot to
bench/results/ and prints its figures beside its baseline)."""

from __future__ import annotations

import argparse
import subprocess
import sys

from shopstream.config import PROJECT_ROOT, Settings

BENCH_DIR = PROJECT_ROOT / "bench"
# long or needing hardware this machine may lack: run only when named
ON_REQUEST = {"model_quality", "gpu_throughput"}


def available() -> list[str]:
    names = [p.stem.removeprefix("bench_") for p in BENCH_DIR.glob("bench_*.py")]
    return sorted([*names, "gpu_throughput"] if (BENCH_DIR / "gpu_throughput.py").exists()
                  else names)


def _script(name: str) -> str:
    path = BENCH_DIR / f"bench_{name}.py"
    return str(path if path.exists() else BENCH_DIR / f"{name}.py")


def _run(args: argparse.Namespace, settings: Settings) -> int:
    names = args.names or [n for n in available() if n not in ON_REQUEST]
    unknown = sorted(set(names) - set(available()))
    if args.list or unknown:
        if unknown:
            print(f"shopstream: error: unknown benchmark {unknown[0]!r} "
                  f"(available: {', '.join(available())})", file=sys.stderr)
            return 2
        print("\n".join(f"{n}{' (on request)' if n in ON_REQUEST else ''}"
                        for n in available()))
        return 0
    failed = []
    for name in names:
        print(f"== bench {name}", flush=True)
        if subprocess.run([sys.executable, _script(name)], cwd=PROJECT_ROOT).returncode:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("bench", help="run the benchmarks (figures to bench/results)")
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="benchmarks to run (default: all but model_quality and gpu_throughput)")
    p.add_argument("--list", action="store_true", help="list the benchmarks")
    p.set_defaults(func=_run)
