"""The worker on a real broker: sustainable rate against a consume-only Faust agent, and
end-to-end latency at half that rate.

One run, one broker, the same backlog of real Beauty sessions for both (512 users
browsing at once, see _common.sessions; each stream starts with a lead-in of
``--lead-events`` that fills its users' windows and is not measured):
1. baseline: bench/consume_only.py drains the backlog (a Faust agent doing nothing);
2. `shopstream worker` (windows, dedupe, micro-batched ONNX inference, outputs) drains the
   same backlog; its rate is read from its /metrics counter, timed from the end of the
   lead-in;
   then the baseline drains it once more, and the ratio is to the mean of its two rates
   (this host's speed drifts within a run);
3. events are then sent in real time at half the worker's rate, by bench/paced_sender.py
   at a lower CPU priority (it stands for the shop's producers, which run elsewhere; see
   there), and the latency from each event's ts to its recommendation's emitted_ts is
   measured from the output topic;
4. optionally (``--sweep``), the same at each of a list of rates, for the rate up to which
   p99 stays within 50 ms;
5. with the worker stopped, the consume-only agent gets the same paced load (joined at the
   topic's end), for the CPU per event of a Faust agent doing nothing at that rate.
Both phases also report the CPU time per event of the worker, the broker, this process
and the sender (from /proc and the sender's own count), since on a shared 2-core machine
CPU, not a stall, sets the limits.
The model is models/CURRENT when there is one, else a random model of realistic size
(12,101 items, width 64, 2 layers, L=50) from inference.testing, with the int8 variant a
worker on CPUs serves (see model_dir).

    python bench/bench_worker.py [--events 20000] [--latency-seconds 20] [--sweep 2000,3000]
Writes bench/results/worker.json and worker.png.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import NamedTuple

import numpy as np
import orjson
from _common import (
    ACTIVE_USERS,
    DEFAULT_DATA,
    LEAD_EVENTS,
    REPO,
    RESULTS,
    cpu_model,
    sessions,
    view_record,
)
from busy_cores import share_arg as busy_share

from export import GRAPH_TOP_K
from export.onnx_export import export_int8
from inference.testing import build_version
from shopstream import topics as t
from shopstream.config import Settings, load_settings
from shopstream.kafkaio import make_consumer, make_producer, produce_all
from shopstream.localkafka import LocalKafka, free_port, port_is_open
from shopstream.topics import create_topics
from streams.metrics import stat_cpu_seconds


def model_dir(tmp: Path) -> tuple[Path, str]:
    """models/ when it holds a trained version, else a random one of realistic size. The
    random one gets the int8 variant that `shopstream export` writes beside every graph,
    since a worker on CPUs serves that one by default (``model_variant=auto``); until
    2026-11-29 it had the fp32 graph alone, so this benchmark measured a worker serving
    fp32, which costs ~1.4x the int8 graph a user (``--set model_variant=fp32`` for it).
    Its graph returns its top GRAPH_TOP_K, as `shopstream export` writes it; until
    2026-11-30 it returned its top 30, whose top-K step cost ~17 µs a user against ~12
    (ONNX Runtime's TopK over the 12,102 scores of a row, on the Intel host of that day)."""
    trained = REPO / "models"
    if (trained / "CURRENT").exists():
        return trained, "trained " + (trained / "CURRENT").read_text().strip()
    folder = build_version(tmp / "models", "bench", n_items=12101, dim=64, layers=2,
                           max_len=50, top_k=GRAPH_TOP_K)
    export_int8(folder / "model.onnx", folder / "model.int8.onnx")
    meta = json.loads((folder / "metadata.json").read_text())
    meta["variants"]["int8"] = "model.int8.onnx"
    (folder / "metadata.json").write_text(json.dumps(meta))
    return tmp / "models", (f"random (12,101 items, width 64, 2 layers, L=50, top {GRAPH_TOP_K}; "
                            "fp32 and int8)")


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return resp.read().decode()


def metric(port: int, pattern: str) -> float:
    """The sum of the worker's metric samples whose line matches ``pattern`` (one group)."""
    return sum(float(v) for v in re.findall(pattern, scrape(port), re.M))


def thread_cpu(ports: list[int]) -> dict[str, float]:
    """CPU seconds the workers' threads have used so far, by thread name (over the workers)."""
    used: dict[str, float] = {}
    for port in ports:
        for name, value in re.findall(
                r'^shopstream_thread_cpu_seconds_total\{thread="([^"]*)"\} (\S+)$',
                scrape(port), re.M):
            used[name] = used.get(name, 0.0) + float(value)
    return used


def thread_cpu_per_event(ports: list[int], start: dict[str, float],
                         events: int) -> dict[str, float]:
    """µs of CPU per event each thread name used since ``start`` (from thread_cpu), the
    busiest first; threads under 1 µs an event are left out."""
    used = {name: (seconds - start.get(name, 0.0)) / events * 1e6
            for name, seconds in thread_cpu(ports).items()}
    return dict(sorted(((n, u) for n, u in used.items() if u >= 1), key=lambda nu: -nu[1]))


def threads_line(threads: dict[str, float]) -> str:
    return ", ".join(f"{name} {us:.0f}" for name, us in threads.items())


def events_in(ports: list[int]) -> float:
    return sum(metric(port, r"^shopstream_events_in_total\{[^}]*\} (\S+)$") for port in ports)


def recommendations_out(ports: list[int]) -> float:
    pattern = rf'^shopstream_events_out_total\{{topic="{re.escape(t.RECS)}"\}} (\S+)$'
    return sum(metric(port, pattern) for port in ports)


def model_calls(ports: list[int]) -> tuple[float, float]:
    """Model calls and users scored so far, over the workers."""
    return (sum(metric(port, r"^shopstream_batch_size_count (\S+)$") for port in ports),
            sum(metric(port, r"^shopstream_batch_size_sum (\S+)$") for port in ports))


def users_scored(ports: list[int], since: tuple[float, float]) -> tuple[float, float]:
    """Model calls and users scored since ``since`` (what model_calls gave then)."""
    calls, users = (now - then for now, then in zip(model_calls(ports), since, strict=True))
    return calls, users


def start_worker(settings: Settings, models: Path, log: Path, app_id: str,
                 profile: Path | None = None, extra_env: dict[str, str] | None = None
                 ) -> tuple[subprocess.Popen, int]:
    """One `shopstream worker` process; workers given the same ``app_id`` share the work."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPSTREAM_")}
    env.update({"SHOPSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
                "SHOPSTREAM_APP_ID": app_id,
                "SHOPSTREAM_WORKER_DATA_DIR": str(log.with_suffix(".data")),
                "SHOPSTREAM_WEB_PORT": str(port), "SHOPSTREAM_MODEL_DIR": str(models),
                "SHOPSTREAM_LOG_LEVEL": "warning", **(extra_env or {})})
    prefix = ["-m", "cProfile", "-o", str(profile)] if profile else []
    proc = subprocess.Popen([sys.executable, *prefix, "-m", "shopstream.cli", "worker"], env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=REPO)
    while not port_is_open("127.0.0.1", port):
        if proc.poll() is not None:
            raise SystemExit(f"worker exited; see {log}")
        time.sleep(0.2)
    return proc, port


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        worker.wait(60)


def cpu_seconds(*pids: int) -> float:
    """User + system CPU time the processes have used so far (from /proc)."""
    return sum(stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text()) for pid in pids)


Pids = dict[str, tuple[int, ...]]  # a name -> its processes (the workers count together)


def cpu_per_event(pids: Pids, start: dict[str, float], events: int) -> dict[str, float]:
    """µs of CPU per event each name's processes used since ``start`` (from cpu_seconds)."""
    return {name: (cpu_seconds(*ps) - start[name]) / events * 1e6 for name, ps in pids.items()}


class Usage(NamedTuple):
    """What a measured span cost: CPU µs per event of each name's processes (Pids) and of
    each of the workers' threads, the users per model call the workers made, the users
    scored per event (below 1 when a micro-batch held several events of one user: they
    are scored once, and only the newest gets a recommendation) and the recommendations
    published per event (below the users scored when the stage drops results: until
    2026-11-29 it published only the newest of a user's events in flight, which under a
    backlog left most out). These come from the workers' counters, so a batch in flight
    when a span starts or ends moves them by a few per cent either way (a drain once read
    1.018 users scored per event)."""

    cpu: dict[str, float]
    threads: dict[str, float]
    users_per_call: float
    users_per_event: float
    recs_per_event: float


class Span:
    """Counters read when a measured span starts; ``usage`` reads them again at its end."""

    def __init__(self, pids: Pids, ports: list[int]) -> None:
        self.pids, self.ports = pids, ports
        self.cpu = {name: cpu_seconds(*ps) for name, ps in pids.items()}
        self.threads = thread_cpu(ports)
        self.calls = model_calls(ports)
        self.recs = recommendations_out(ports)

    def usage(self, events: int) -> Usage:
        calls, users = users_scored(self.ports, self.calls)
        return Usage(cpu_per_event(self.pids, self.cpu, events),
                     thread_cpu_per_event(self.ports, self.threads, events),
                     users / calls if calls else 0.0, users / events if events else 0.0,
                     (recommendations_out(self.ports) - self.recs) / events if events else 0.0)


def drain_rate(ports: list[int], n: int, pids: Pids, lead: int = 0,
               timeout: float = 600) -> tuple[float, Usage]:
    """Events/s over the ``n`` records after the first ``lead`` (from when the workers had
    consumed those until all were), and what the span cost."""
    deadline = time.monotonic() + timeout

    def consumed(target: int, every: float) -> int:
        while (seen := int(events_in(ports))) < target:
            if time.monotonic() > deadline:
                raise SystemExit(f"worker consumed only {seen} of {target} events in "
                                 f"{timeout}s")
            time.sleep(every)
        return seen

    first = consumed(max(lead, 1), 0.05)
    start = time.monotonic()
    span = Span(pids, ports)
    seen = consumed(lead + n, 0.25) - first  # each scrape costs the worker a little
    return seen / (time.monotonic() - start), span.usage(seen)


CONSUME_ONLY = [sys.executable, str(REPO / "bench" / "consume_only.py")]


def baseline_report(stdout: str, stderr: str) -> dict[str, float]:
    """What bench/consume_only.py printed: events, seconds and cpu_seconds."""
    # Faust's worker turns stdout into log lines: find the JSON wherever it went
    found = re.findall(r'\{"events":\d+,"seconds":.*?\}', stdout + stderr)
    if not found:
        raise SystemExit(f"consume-only baseline failed: {stderr[-2000:]}")
    report: dict[str, float] = json.loads(found[-1])
    return report


def consume_only(settings: Settings, n: int, broker_pid: int,
                 lead: int = 0) -> tuple[float, dict[str, float]]:
    """The baseline: bench/consume_only.py drains the backlog (a group of its own), timed
    over the ``n`` records after the first ``lead``; its rate and the CPU per event of the
    agent and the broker."""
    broker_cpu = cpu_seconds(broker_pid)
    out = subprocess.run([*CONSUME_ONLY, "--bootstrap", settings.kafka_bootstrap,
                          "--events", str(n), "--skip", str(lead)],
                         capture_output=True, text=True, timeout=900)
    baseline = baseline_report(out.stdout, out.stderr)
    return n / baseline["seconds"], {
        "consume_only": baseline["cpu_seconds"] / n * 1e6,
        # from the agent's start to its stop, over every record it read: an upper bound
        "broker": (cpu_seconds(broker_pid) - broker_cpu) / (lead + n) * 1e6}


SENDER = [sys.executable, str(REPO / "bench" / "paced_sender.py")]
BUSY = [sys.executable, str(REPO / "bench" / "busy_cores.py")]


def send_paced(settings: Settings, rate: float, seconds: float, tag: str, linger_ms: float,
               nice: int, first: int = 0) -> tuple[int, float]:
    """Send views of real sessions at ``rate``/s for ``seconds``, from the ``first``-th event
    of the stream on, stamped with the time they are sent (users and event ids prefixed with
    ``tag``), from bench/paced_sender.py run at ``nice`` (see there why); how many were
    sent, and the sender's CPU µs per event."""
    done = subprocess.run(
        ["nice", "-n", str(nice), *SENDER, "--bootstrap", settings.kafka_bootstrap,
         "--rate", str(rate), "--seconds", str(seconds), "--tag", tag,
         "--linger-ms", str(linger_ms), "--first", str(first)],
        capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"the paced sender failed: {done.stderr[-2000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return report["sent"], report["cpu_seconds"] / report["sent"] * 1e6


def wait_for_group(settings: Settings, group: str, timeout: float = 60.0) -> None:
    """Until ``group`` is stable with partitions assigned to its members."""
    from confluent_kafka import ConsumerGroupState
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = admin.describe_consumer_groups([group])[group].result(timeout=10)
        if found.state == ConsumerGroupState.STABLE and any(
                m.assignment.topic_partitions for m in found.members):
            return
        time.sleep(0.5)
    raise SystemExit(f"consumer group {group} did not get its partitions in {timeout:.0f}s")


def consume_only_live(settings: Settings, rate: float, seconds: float, broker_pid: int,
                      linger_ms: float, nice: int, lead: int) -> dict[str, float]:
    """The baseline under the latency run's load: the consume-only agent, joined at the end
    of the topic, while views are sent at ``rate``/s; CPU per event of it, the broker and
    the sender."""
    group = f"bench-live-{uuid.uuid4().hex[:6]}"
    expected = int(rate * seconds)
    # it reports after most of them, in case its first fetch came after the first sends
    counted = max(1, int(expected * 0.95))
    # its output goes to a file: nothing reads a pipe while the views are sent
    with tempfile.TemporaryFile("w+") as log:
        agent = subprocess.Popen([*CONSUME_ONLY, "--bootstrap", settings.kafka_bootstrap,
                                  "--events", str(counted), "--latest", "--app-id", group],
                                 stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            wait_for_group(settings, group)
            time.sleep(2)  # its first fetch sets its position at the end
            broker_cpu = cpu_seconds(broker_pid)
            # the latency run's measured events (an agent that reads nothing of them
            # needs no lead-in)
            sent, sender = send_paced(settings, rate, seconds, f"live-{group}", linger_ms,
                                      nice, first=lead)
            broker = (cpu_seconds(broker_pid) - broker_cpu) / sent * 1e6
            agent.wait(timeout=60)
        finally:
            if agent.poll() is None:
                agent.kill()
                agent.wait()
        log.seek(0)
        report = baseline_report("", log.read())  # on failure, its log's tail is shown
    return {"consume_only": report["cpu_seconds"] / report["events"] * 1e6, "broker": broker,
            "sender": sender}


# issue #5: at half the drain rate, p99 from an event's ts to its recommendation's emit time
P99_TARGET_MS = 50


class Latencies(NamedTuple):
    ms: list[float]  # each recommendation's emitted_ts - event_ts
    event_ts: list[int]  # its event's ts (ms since the epoch)


def paced_latency(settings: Settings, rate: float, seconds: float, pids: Pids, ports: list[int],
                  linger_ms: float, nice: int, lead: int) -> tuple[Latencies, Usage]:
    """Send views at ``rate``/s: a lead-in of ``lead`` events (not measured), then for
    ``seconds``; latencies of the recommendations of the latter, and what sending them
    cost (the sender's CPU counted with ``pids``')."""
    run = uuid.uuid4().hex[:6]
    # A latency is read from the record (emitted_ts - event_ts), not from when this consumer
    # gets it: the consumer may fetch rarely. The broker shares this machine's two cores
    # with the worker, and fetching each recommendation as it lands made ~130 requests/s
    # at 1,300 events/s, a fifth of the broker's requests (its load, not the worker's).
    consumer = make_consumer(settings, f"bench-lat-{run}", **{
        "auto.offset.reset": "latest", "fetch.min.bytes": 1 << 20, "fetch.wait.max.ms": 500})
    consumer.subscribe([t.RECS])
    consumer.poll(2.0)  # join before sending
    if lead:  # the users' windows fill as they would in a shop that has been open a while
        send_paced(settings, rate, lead / rate, f"lat-{run}", linger_ms, nice)
    span = Span(pids, ports)
    sent, sender = send_paced(settings, rate, seconds, f"lat-{run}", linger_ms, nice,
                              first=lead)
    usage = span.usage(sent)
    usage.cpu["sender"] = sender
    latencies = Latencies([], [])
    quiet_until = time.monotonic() + 5
    while time.monotonic() < quiet_until:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        rec = orjson.loads(msg.value())
        trigger = rec["trigger_event_id"]
        # an event id ends in its place in the stream: the lead-in's come first
        if trigger.startswith(f"lat-{run}-") and int(trigger.rsplit("-", 1)[1]) >= lead:
            latencies.ms.append(rec["emitted_ts"] - rec["event_ts"])
            latencies.event_ts.append(rec["event_ts"])
            quiet_until = time.monotonic() + 3
    consumer.close()
    return latencies, usage


def percentiles(latencies: list[float]) -> dict[str, float]:
    lat = np.array(latencies) if latencies else np.array([np.nan])
    return {"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
            "max": float(lat.max())}


def p99_by_second(latencies: Latencies) -> list[float]:
    """The p99 latency (ms) of the events of each second of the run, by their ts: the
    slowest 1% of a run often comes within a few bursts (README, "Where the p99 target
    stands"), which show here as the seconds that hold them. A second with under half the
    events of the fullest (the run's last few milliseconds) is left out."""
    if not latencies.ms:
        return []
    ts = np.asarray(latencies.event_ts)
    second = (ts - ts.min()) // 1000
    counts = np.bincount(second)
    lat = np.asarray(latencies.ms)
    return [float(np.percentile(lat[second == s], 99)) for s in range(len(counts))
            if counts[s] * 2 >= counts.max()]


def rates_list(text: str) -> list[float]:
    """``--sweep``'s value: events/s, comma separated."""
    try:
        rates = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of rates: {text!r}") from None
    if not rates or any(r <= 0 for r in rates):
        raise argparse.ArgumentTypeError(f"rates must be positive numbers: {text!r}")
    return rates


def plot(result: dict, latencies: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = result["latency_sweep"]
    by_second = result["latency_ms"].get("p99_by_second", [])
    panels = 2 + bool(sweep) + bool(by_second)
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4))
    left, right = axes[0], axes[1]
    names = ["consume-only Faust agent", "shopstream worker"]
    rates = [result["consume_only_events_per_s"], result["worker_events_per_s"]]
    left.bar(names, rates, color=["#999", "#3a7"])
    left.set_ylabel("events/s (backlog drain)")
    left.set_title(f"worker / baseline = {result['ratio']:.2f}")
    if latencies:
        xs = np.sort(latencies)
        right.plot(xs, np.arange(1, len(xs) + 1) / len(xs))
        right.axvline(result["latency_ms"]["p99"], color="r", linestyle="--", label="p99")
        right.set_xlabel("event ts -> recommendation emitted (ms)")
        right.set_ylabel("fraction of recommendations")
        right.set_title(f"at {result['latency_rate_events_per_s']:.0f} events/s")
        right.legend()
    if sweep:
        rates = [point["events_per_s"] for point in sweep]
        for key, style in (("p50", "o-"), ("p99", "s-")):
            axes[2].plot(rates, [point[key] for point in sweep], style, label=key)
        axes[2].axhline(P99_TARGET_MS, color="r", linestyle="--", label=f"{P99_TARGET_MS} ms")
        axes[2].set_xlabel("events/s sent")
        axes[2].set_ylabel("event ts -> recommendation emitted (ms)")
        axes[2].set_yscale("log")
        axes[2].set_title("latency by rate")
        axes[2].legend()
    if by_second:
        seconds = axes[-1]
        seconds.bar(range(len(by_second)), by_second, color="#3a7")
        seconds.axhline(P99_TARGET_MS, color="r", linestyle="--", label=f"{P99_TARGET_MS} ms")
        seconds.set_xlabel("second of the latency run")
        seconds.set_ylabel("p99 of its events (ms)")
        seconds.set_title(f"p99 by second at {result['latency_rate_events_per_s']:.0f} events/s")
        seconds.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--lead-events", type=int, default=LEAD_EVENTS,
                        help="events that open the backlog and each paced run, not measured: "
                        f"they fill the users' windows (default {LEAD_EVENTS:,})")
    parser.add_argument("--no-model", action="store_true",
                        help="serve no model: measures the windows path alone")
    parser.add_argument("--profile", type=Path, help="write the worker's cProfile stats here")
    parser.add_argument("--latency-rate", type=float,
                        help="events/s for the latency run (default: half the drain rate)")
    parser.add_argument("--producer-linger-ms", type=float, default=5.0,
                        help="linger of the latency run's event producer (default 5, as "
                        "librdkafka's; 0 sends each event in a request of its own)")
    parser.add_argument("--sweep", type=rates_list, default=[], metavar="RATE[,RATE...]",
                        help="after the half-rate run, the latency at each of these events/s "
                        "(--latency-seconds each), for the rate up to which p99 stays within "
                        "50 ms")
    parser.add_argument("--sender-nice", type=int, default=10,
                        help="CPU priority (nice) of the paced runs' event sender (default 10; "
                        "0: the worker's own, see bench/paced_sender.py)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temp folder (worker logs, stores, the broker's data)")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes sharing the topics' partitions (default 1)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a worker setting, e.g. --set ort_threads=1 (repeatable)")
    parser.add_argument("--busy", type=busy_share, metavar="SHARE",
                        help="keep each core busy for this share of every 10 ms all run "
                        "(bench/busy_cores.py): a slower or shared host")
    args = parser.parse_args()
    extra_env = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--set takes NAME=VALUE, got {item!r}")
        extra_env[f"SHOPSTREAM_{name.upper()}"] = value
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    finished = False
    settings = load_settings(kafka_bootstrap=f"127.0.0.1:{free_port()}",
                             kafka_data_dir=tmp / "kafka", local_dir=REPO / ".local")
    broker = LocalKafka(settings)
    broker.up()
    workers: list[subprocess.Popen] = []
    busy = (subprocess.Popen([*BUSY, "--share", str(args.busy)], start_new_session=True)
            if args.busy else None)
    try:
        create_topics(settings)
        models, model_name = ((tmp / "none", "none") if args.no_model else model_dir(tmp))
        base = int(time.time() * 1000) - 3_600_000
        lead = args.lead_events
        backlog = [view_record(u, item, f"b-{i}", base + i) for i, (u, item)
                   in enumerate(sessions(DEFAULT_DATA, lead + args.events))]
        produce_all(make_producer(settings), t.VIEWS, backlog)
        machine = f"{os.cpu_count()} cores, {cpu_model()}"
        print(f"backlog of {args.events} views on {t.VIEWS} after a lead-in of {lead}; "
              f"model: {model_name}; {machine}"
              + (f"; each core kept busy {args.busy:.0%} of the time" if args.busy else ""))

        broker_pid = broker.running_pid()
        assert broker_pid is not None
        first = consume_only(settings, args.events, broker_pid, lead)
        print(f"consume-only Faust agent: {first[0]:,.0f} events/s; CPU per event: agent "
              f"{first[1]['consume_only']:.0f} µs, broker at most {first[1]['broker']:.0f} µs")

        app_id = f"bench{uuid.uuid4().hex[:6]}"
        ports = []
        for i in range(args.workers):
            worker, port = start_worker(settings, models, tmp / f"worker{i}.log", app_id,
                                        args.profile if i == 0 else None, extra_env)
            workers.append(worker)
            ports.append(port)
        # this process scrapes the workers' metrics (paced loads come from paced_sender.py)
        pids = {"worker": tuple(w.pid for w in workers), "broker": (broker_pid,),
                "bench": (os.getpid(),)}
        worker_rate, drain = drain_rate(ports, args.events, pids, lead)
        cpu, drain_batch = drain.cpu, drain.users_per_call
        # the baseline again, after the worker: this host's speed drifts within a run, and
        # the ratio is taken against the mean of the two
        again = consume_only(settings, args.events, broker_pid, lead)
        base_rate = (first[0] + again[0]) / 2
        base_cpu = {k: (first[1][k] + again[1][k]) / 2 for k in first[1]}
        print(f"consume-only Faust agent again: {again[0]:,.0f} events/s (mean of both: "
              f"{base_rate:,.0f})")
        name = "shopstream worker" if args.workers == 1 else f"{args.workers} workers"
        print(f"{name + ':':26s}{worker_rate:,.0f} events/s "
              f"({worker_rate / base_rate:.2f} of the baseline); CPU per event: "
              f"worker {cpu['worker']:.0f} µs, broker {cpu['broker']:.0f} µs; "
              f"{drain_batch:.0f} users per model call, {drain.users_per_event:.3f} users "
              f"scored and {drain.recs_per_event:.3f} recommendations published per event")
        print(f"  worker threads, µs per event: {threads_line(drain.threads)}")

        half = args.latency_rate or worker_rate / 2
        if args.no_model:
            latencies, paced = Latencies([], []), Usage({}, {}, 0.0, 0.0, 0.0)
        else:
            latencies, paced = paced_latency(
                settings, half, args.latency_seconds, pids, ports, args.producer_linger_ms,
                args.sender_nice, lead)
        paced_cpu, live_batch = paced.cpu, paced.users_per_call
        sweep = []
        for rate in [] if args.no_model else args.sweep:  # no model, no recommendations
            found, used = paced_latency(
                settings, rate, args.latency_seconds, pids, ports, args.producer_linger_ms,
                args.sender_nice, lead)
            sweep.append({"events_per_s": rate, "recommendations": len(found.ms),
                          **percentiles(found.ms), "cpu_us_per_event": used.cpu,
                          "worker_threads_cpu_us_per_event": used.threads,
                          "users_per_model_call": used.users_per_call,
                          "users_scored_per_event": used.users_per_event,
                          "recommendations_per_event": used.recs_per_event})
            print(f"  at {rate:,.0f} events/s: p50 {sweep[-1]['p50']:.1f} ms, "
                  f"p99 {sweep[-1]['p99']:.1f} ms; worker {used.cpu['worker']:.0f} µs an event")
        live_base: dict[str, float] = {}
        if latencies.ms:
            # the same load on the consume-only agent, with the workers stopped
            stop_workers(workers)
            live_base = consume_only_live(settings, half, args.latency_seconds, broker_pid,
                                          args.producer_linger_ms, args.sender_nice, lead)
        result = {
            "model": model_name, "events": args.events, "lead_events": lead,
            "active_users": ACTIVE_USERS, "settings": extra_env,
            "workers": args.workers, "busy_share": args.busy,
            "event_producer_linger_ms": args.producer_linger_ms,
            "event_sender_nice": args.sender_nice,
            "consume_only_events_per_s": base_rate,
            "consume_only_runs_events_per_s": [first[0], again[0]],
            "worker_events_per_s": worker_rate,
            "ratio": worker_rate / base_rate, "latency_rate_events_per_s": half,
            "drain_users_per_model_call": drain_batch,
            "drain_users_scored_per_event": drain.users_per_event,
            "drain_recommendations_per_event": drain.recs_per_event,
            "latency_run_users_per_model_call": live_batch,
            "latency_run_users_scored_per_event": paced.users_per_event,
            "latency_run_recommendations_per_event": paced.recs_per_event,
            "cpu_us_per_event": {"baseline": base_cpu, "worker_drain": cpu,
                                 "latency_run": paced_cpu,
                                 "latency_run_baseline": live_base},
            "worker_threads_cpu_us_per_event": {"drain": drain.threads,
                                                "latency_run": paced.threads},
            "latency_ms": {**percentiles(latencies.ms), "recommendations": len(latencies.ms),
                           "p99_by_second": p99_by_second(latencies)},
            "latency_sweep": sweep,
            "machine": machine,
        }
        lat_ms = result["latency_ms"]
        print(f"latency at {half:,.0f} events/s over {len(latencies.ms)} recommendations: "
              f"p50 {lat_ms['p50']:.1f} ms, p99 {lat_ms['p99']:.1f} ms; CPU per event: "
              + ", ".join(f"{k} {v:.0f} µs" for k, v in paced_cpu.items())
              + f"; {live_batch:.0f} users per model call, {paced.users_per_event:.3f} users "
              f"scored and {paced.recs_per_event:.3f} recommendations published per event")
        if paced.threads:
            print(f"  worker threads, µs per event: {threads_line(paced.threads)}")
        if lat_ms["p99_by_second"]:
            by_second = lat_ms["p99_by_second"]
            print(f"  p99 of each second: median {np.median(by_second):.0f} ms, worst "
                  f"{max(by_second):.0f} ms; {sum(p > P99_TARGET_MS for p in by_second)} of "
                  f"{len(by_second)} seconds over {P99_TARGET_MS} ms")
        if live_base:
            print(f"consume-only Faust agent at the same rate: CPU per event: agent "
                  f"{live_base['consume_only']:.0f} µs, broker {live_base['broker']:.0f} µs, "
                  f"sender {live_base['sender']:.0f} µs")
        (RESULTS / "worker.json").write_text(json.dumps(result, indent=2))
        plot(result, latencies.ms, RESULTS / "worker.png")
        print(f"wrote {RESULTS / 'worker.json'} and worker.png")
        finished = True
    finally:
        stop_workers(workers)
        if busy is not None:
            os.killpg(busy.pid, signal.SIGTERM)
            busy.wait()
        broker.down()
        # the broker's data and the workers' stores: tens of MB a run
        if finished and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp} (worker logs, the broker's data) for a look", file=sys.stderr)


if __name__ == "__main__":
    main()
