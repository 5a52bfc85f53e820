"""Shared by the benchmarks: real user windows, timing, and where results go."""

from __future__ import annotations

import itertools
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # this checkout's packages, not an installed copy

RESULTS = REPO / "bench" / "results"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "amazon-beauty.txt"


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The processor's model name (Linux: /proc/cpuinfo), else what ``platform`` knows: the
    host behind these machines changes between sessions (AMD EPYC, Intel Xeon), and the same
    code measures differently on each."""
    import platform

    try:
        with cpuinfo.open(encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def event_code(user_id: str, position: int) -> int:
    """The data has no event types: derive one per (user, position), deterministically.

    About 60% views, 20% clicks, 10% add-to-cart, 10% purchases.
    """
    slot = (sum(map(ord, user_id)) * 31 + position * 7) % 10
    return 1 if slot < 6 else 2 if slot < 8 else 3 if slot < 9 else 4


def read_windows(path: Path, n_users: int, max_len: int) -> list[tuple[str, list[tuple[str, int]]]]:
    """The first ``n_users`` users' last ``max_len`` items as (item_id, event_code) windows."""
    users = []
    with open(path) as fh:
        for line in fh:
            user, *items = line.split()
            window = [(item, event_code(user, i)) for i, item in enumerate(items)]
            users.append((user, window[-max_len:]))
            if len(users) == n_users:
                break
    return users


def rate(fn: Callable[[], int], repeats: int) -> float:
    """Units per second: the median of ``repeats`` timed runs of ``fn`` (returns units)."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        units = fn()
        rates.append(units / (time.perf_counter() - start))
    return sorted(rates)[len(rates) // 2]


def save_rates(name: str, rates: dict[str, float], meta: dict[str, object], xlabel: str,
               title: str) -> None:
    """Write ``<name>.json`` (rates, their ratio to the first one, ``meta``) and a bar chart
    ``<name>.png`` to bench/results/. The first entry of ``rates`` is the baseline."""
    import json
    import platform

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = next(iter(rates.values()))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {**meta, "machine": cpu_model(),
           "python": platform.python_version(), "events_per_s": rates,
           "ratio_to_baseline": {k: v / base for k, v in rates.items()}}
    (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=2) + "\n")
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    names = list(rates)
    ax.barh(names, [rates[n] for n in names], color=["#999999", "#6a9fd4", "#2c6fbb"])
    for y, n in enumerate(names):
        ax.text(rates[n], y, f" {rates[n]:,.0f}/s ({rates[n] / base:.2f}x)", va="center")
    ax.set_xlabel(xlabel)
    ax.set_xlim(0, max(rates.values()) * 1.5)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}.png", dpi=120)
    print(f"wrote {RESULTS / name}.json and .png")


# Users browsing at once in the benchmarks' event streams (see ``sessions``): more than a
# drain's micro-batch takes of one partition, so a user's two events never share a batch.
ACTIVE_USERS = 512
# Events sent before a measured run, so its users' windows are as long as they get: from
# ACTIVE_USERS fresh users, the stream's mix of window lengths settles after ~15,000
# events (see ``sessions``).
LEAD_EVENTS = 16_000


def sessions(path: Path, n_events: int, active: int = ACTIVE_USERS) -> list[tuple[str, str]]:
    """(user, item) pairs as a shop sees them: ``active`` users browse at once, taking turns,
    each viewing their items in the data's order; a user who has viewed all of theirs hands
    the turn to the next user in the file. Raises ValueError when the file holds fewer
    events than asked for.

    So the mix of short and long windows stays the same along the stream, once the first
    users' windows have filled (LEAD_EVENTS). Taking every user's first item, then every
    user's second, and so on, as this did before, gave a stream whose first two thirds were
    users' first few views and whose end only long histories: over 90,000 Beauty events the
    model's cost per event rose ~3.5x from the first tenth to the last, so a latency run's
    p99 came from its last seconds; and in a drain of the first 20,000, a quarter of the
    events came within 256 of their user's previous one, so micro-batches coalesced them
    (one inference and one recommendation for several events)."""
    out: list[tuple[str, str]] = []
    with open(path) as fh:
        # each user's items, in the file's order; a line without items names nobody
        users = (fields for fields in map(str.split, fh) if len(fields) > 1)
        turns = deque((fields, 1) for fields in itertools.islice(users, active))
        while len(out) < n_events:
            if not turns:
                raise ValueError(f"{path} holds {len(out)} events, fewer than {n_events}")
            fields, at = turns.popleft()
            out.append((fields[0], fields[at]))
            if at + 1 < len(fields):
                turns.append((fields, at + 1))
            else:  # done: the next user in the file joins at the end of the round
                fresh = next(users, None)
                if fresh is not None:
                    turns.append((fresh, 1))
    return out


def view_record(user: str, item: str, event_id: str, ts: int) -> tuple[bytes, bytes]:
    return user.encode(), orjson.dumps({"event_id": event_id, "user_id": user,
                                        "item_id": item, "ts": ts})
