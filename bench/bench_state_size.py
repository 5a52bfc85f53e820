"""Bytes per user of the stored state: the binary codec against JSON of the same state.

    python bench/bench_state_size.py [--data ../shared/data/amazon-beauty.txt]

Real item ids and orders come from the data file; what it lacks is derived from a hash of
(user, position) so every run is the same: each item is viewed (dwell 2-60 s), then
clicked with chance 30 %, added to the cart 8 %, bought 3 %; events 20-140 s apart, a
new day every 15 items. Only users whose window is full (50 events) count. Item ids are
shown twice: as in the file (integers as decimal text) and as 10-character ASIN-like
text. Times are per user: the codec's encode + decode (back to a UserState) against
orjson's dumps + loads (to a dict only, so the baseline does less).
Writes bench/results/bench_state_size.json and .png.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import orjson  # noqa: E402

from streams.state import StateLimits, UserState  # noqa: E402
from streams.state_codec import decode_state, encode_state  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "amazon-beauty.txt"
T0 = 1_764_000_000_000


def unit(*parts: object) -> float:
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def asin(item: str) -> str:
    return "B0" + hashlib.blake2b(item.encode(), digest_size=8).hexdigest()[:8].upper()


def events(user: str, items: list[str]) -> Iterator[tuple[str, str, int, int, int]]:
    """(event_id, item_id, code, ts, dwell_ms) for one user, in time order."""
    ts = T0
    for pos, item in enumerate(items):
        if pos and pos % 15 == 0:
            ts += 86_400_000
        steps = [(1, int(2000 + 58000 * unit(user, pos, "dwell")))]
        for code, chance in ((2, 0.30), (3, 0.08), (4, 0.03)):
            if unit(user, pos, code) < chance:
                steps.append((code, 0))
        for code, dwell in steps:
            ts += int(20_000 + 120_000 * unit(user, pos, code, "gap"))
            yield f"{user}-{pos}-{code}", item, code, ts, dwell


def as_json(state: UserState) -> bytes:
    """The baseline: the same state as a plain JSON document."""
    return orjson.dumps({
        "events_total": state.events_total, "last_ts": state.last_ts,
        "session_count": state.session_count, "session_start_ms": state.session_start_ms,
        "session_events": state.session_events,
        "window": [[i.item_id, i.code, i.ts, i.dwell_ms] for i in state.window],
        "seen": [f"{k:016x}" for k in state.seen], "bought": state.bought,
    })


def build(user: str, items: list[str], limits: StateLimits,
          rename: Callable[[str], str]) -> UserState:
    state = UserState(limits)
    for event_id, item, code, ts, dwell in events(user, items):
        state.apply(event_id, rename(item), code, ts, dwell)
    return state


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--max-users", type=int, default=2000)
    args = ap.parse_args()

    users = []
    with args.data.open() as fh:
        for line in fh:
            user, *items = line.split()
            if len(items) >= 40:  # with the derived clicks, enough for a full window
                users.append((user, items))
    configs = {f"dedupe {m}": StateLimits(dedupe_memory=m) for m in (64, 128)}
    id_forms: dict[str, Callable[[str], str]] = {"integer ids": str, "ASIN-like ids": asin}

    rows: dict[str, dict[str, list[int]]] = {}
    timing: dict[str, float] = {}
    json_timing: dict[str, float] = {}
    for form, rename in id_forms.items():
        for cname, limits in configs.items():
            sizes: dict[str, list[int]] = {"binary": [], "json": []}
            enc_s = dec_s = json_s = 0.0
            for user, items in users[: args.max_users]:
                state = build(user, items, limits, rename)
                if len(state.window) < limits.window_size:
                    continue
                start = time.perf_counter()
                data = encode_state(state)
                mid = time.perf_counter()
                decode_state(data, limits)
                enc_s += mid - start
                dec_s += time.perf_counter() - mid
                sizes["binary"].append(len(data))
                start = time.perf_counter()
                text = as_json(state)
                orjson.loads(text)
                json_s += time.perf_counter() - start
                sizes["json"].append(len(text))
            rows[f"{form}, {cname}"] = sizes
            n = len(sizes["binary"])
            timing[f"{form}, {cname}"] = 1e6 * (enc_s + dec_s) / max(n, 1)
            json_timing[f"{form}, {cname}"] = 1e6 * json_s / max(n, 1)

    print(f"{args.data.name}: users with a full 50-event window: "
          f"{len(next(iter(rows.values()))['binary'])}")
    print(f"{'case':34} {'binary med':>10} {'max':>6} {'JSON med':>9} {'ratio':>6} "
          f"{'enc+dec us':>10} {'JSON us':>8}")
    summary = {}
    for case, sizes in rows.items():
        b, j = statistics.median(sizes["binary"]), statistics.median(sizes["json"])
        summary[case] = {"users": len(sizes["binary"]), "binary_median": b,
                         "binary_max": max(sizes["binary"]), "json_median": j,
                         "json_max": max(sizes["json"]), "json_over_binary": j / b,
                         "under_1kb_share": sum(s < 1024 for s in sizes["binary"])
                         / len(sizes["binary"]),
                         "encode_plus_decode_us": timing[case],
                         "json_dumps_plus_loads_us": json_timing[case]}
        print(f"{case:34} {b:10.0f} {max(sizes['binary']):6d} {j:9.0f} {j / b:5.1f}x "
              f"{timing[case]:10.1f} {json_timing[case]:8.1f}")

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench_state_size.json").write_text(json.dumps(
        {"bench": "bytes per user state", "data": args.data.name, "window_size": 50,
         "cases": summary}, indent=2) + "\n")
    fig, ax = plt.subplots(figsize=(8, 3.8))
    cases = list(summary)
    y = range(len(cases))
    ax.barh([i + 0.2 for i in y], [summary[c]["binary_median"] for c in cases], height=0.4,
            label="binary codec (median)", color="#2c6fbb")
    ax.barh([i - 0.2 for i in y], [summary[c]["json_median"] for c in cases], height=0.4,
            label="JSON of the same state (baseline)", color="#999999")
    ax.axvline(1024, color="#c0392b", linestyle="--", label="1 KB target")
    ax.set_yticks(list(y), cases)
    ax.set_xlabel("bytes per user, full 50-event window (lower is better)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "bench_state_size.png", dpi=120)
    print(f"wrote {RESULTS / 'bench_state_size.json'} and .png")


if __name__ == "__main__":
    main()
