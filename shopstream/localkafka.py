"""A single-node Apache Kafka broker (KRaft, combined broker and controller) on this machine.

The broker's jars come from Maven Central through ``kafka-local/pom.xml`` and are cached in
``<local_dir>/kafka/libs``. Each instance lives in its own run directory (per port by
default) holding its config, data, log and pid file, so several can run side by side.
We only ever stop the process whose pid we wrote, after checking it is our broker.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shopstream.config import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

# The garbage collector settings Kafka's own start scripts give a broker (G1 aiming at 20 ms
# pauses, marking from 35% of the heap). In five bench_worker runs alternating with G1's
# defaults alone, the broker's longest pause was 21, 23, 24, 33 and 53 ms against 20, 45,
# 45, 56 and 268 ms (a remark); the worker's p99 did not clearly differ (78-94 ms against
# 70-331). Options from SHOPSTREAM_KAFKA_JVM_OPTS come after these, so they win.
BROKER_GC = ("-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
             "-XX:+ExplicitGCInvokesConcurrent")


# The broker's heap keeps at least this much (or all of it, when it is smaller), touched at
# start. The log cleaner's map of keys (CLEANER_DEDUPE_BYTES; Kafka's is 128 MB) is
# allocated once and stays live. With Kafka's map and a heap G1 sized at ~300 MB, the old
# generation sat at ~175 MB, above G1's 35% mark, so G1 began a concurrent marking cycle
# every 2-4 s (13-18 a latency run): each a pause to start it, one to remark, and ~50-100
# ms of a core marking ~175 MB. With a 16 MB map the old generation is ~60 MB, but G1 then
# shrank the heap to ~110 MB, and the cycles went on; with the heap kept at 256 MB they
# stopped (2-3 a run). Touching it at start spares the first collections that copy into
# its regions a page fault for every 4 KB. Four bench_worker pairs at 4,000 events/s: p99
# 60, 65, 62, 83 ms against 100, 76, 76, 85; the broker 79-82 µs of CPU an event against
# 82-87; 33-36 collector pauses a run against 62-71.
CLEANER_DEDUPE_BYTES = 16 << 20
HEAP_FLOOR_BYTES = 256 << 20
_HEAP_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}

# The one-node quorum's housekeeping, made rarer. Kafka's controller writes a no-op record to
# the metadata log every 500 ms (so that brokers elsewhere can tell a live controller from a
# stale one; here the controller is in the same process), and each one is appended, committed
# and published to the broker's metadata image; the broker heartbeats to the controller every
# 2 s. On the 2-core machine (an Intel Xeon host) an idle broker used ~137 ms of CPU a second
# 60-90 s after start, ~44 of them in the no-op records' threads, and ~64 with neither (no
# no-ops, a heartbeat every 6 s with the session timeout raised to match); 150-180 s after
# start, 85 against 48. That is CPU the worker and the shop's producers then have. Start-up
# took 3.0 s either way. Under the worker's load no difference shows in the broker's CPU per
# event or the latency (README, "Local Kafka").
QUIET_QUORUM = ("metadata.max.idle.interval.ms=0", "broker.heartbeat.interval.ms=6000",
                "broker.session.timeout.ms=18000")


def heap_floor(heap: str) -> str:
    """The broker's starting heap (``-Xms``) for a maximum of ``heap`` (``-Xmx``, as the JVM
    spells sizes: 512m, 1g, a number of bytes): HEAP_FLOOR_BYTES, or ``heap`` if smaller."""
    match = re.fullmatch(r"(\d+)([kKmMgGtT]?)", heap.strip())
    if match is None:
        raise LocalKafkaError(f"kafka_heap {heap!r} is not a JVM heap size (e.g. 512m, 1g)")
    size = int(match.group(1)) * _HEAP_UNITS[match.group(2).lower()]
    return heap.strip() if size <= HEAP_FLOOR_BYTES else f"{HEAP_FLOOR_BYTES >> 20}m"


def request_threads(cores: int) -> tuple[str, ...]:
    """The broker's request-handling threads for a machine of ``cores``: Kafka's defaults
    (8 that handle requests, 3 that read and write sockets) from 16 cores up, fewer below,
    one of each on up to 3 cores. The local broker shares its machine with the worker and
    the shop's producers, so every thread of it that wants a core takes one from them.
    Measured on 2 cores (bench_worker at 4,000 events/s, runs alternating with Kafka's
    defaults): see README, "Local Kafka"."""
    return (f"num.io.threads={min(8, max(1, cores // 2))}",
            f"num.network.threads={min(3, max(1, cores // 4))}")


POM = PROJECT_ROOT / "kafka-local" / "pom.xml"
MAIN_CLASS = "kafka.Kafka"


class LocalKafkaError(RuntimeError):
    """Something a person must fix before the local broker can run; the message says what."""


@dataclass(frozen=True)
class BrokerStatus:
    bootstrap: str
    run_dir: Path
    pid: int | None
    answering: bool

    @property
    def running(self) -> bool:
        return self.pid is not None

    def describe(self) -> str:
        if self.pid is None:
            state = "not running"
        elif self.answering:
            state = f"running (pid {self.pid}), answering metadata requests"
        else:
            state = f"running (pid {self.pid}), not answering yet"
        return f"kafka {self.bootstrap}: {state}; data and log in {self.run_dir}"


def _split_hostport(server: str) -> tuple[str, int]:
    host, _, port = server.rpartition(":")
    return host, int(port)


def port_is_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def broker_answers(bootstrap: str, timeout: float = 3.0) -> bool:
    """True when the broker at ``bootstrap`` answers a metadata request."""
    host, port = _split_hostport(bootstrap.split(",")[0])
    if not port_is_open(host, port):
        return False
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        metadata = admin.list_topics(timeout=timeout)
    except Exception:  # KafkaException while the broker is still starting
        return False
    return bool(metadata.brokers)


def java_major_version(java: str) -> int:
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return 0
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


class LocalKafka:
    """Start, stop and inspect one local broker described by the settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bootstrap = settings.bootstrap_servers[0]
        self.host, self.port = _split_hostport(self.bootstrap)
        self.libs_dir = settings.local_dir / "kafka" / "libs"
        self.run_dir = settings.kafka_data_dir or settings.local_dir / f"kafka-{self.port}"
        self.data_dir = self.run_dir / "data"
        self.pid_file = self.run_dir / "broker.pid"
        self.config_file = self.run_dir / "server.properties"
        self.log_file = self.run_dir / "server.log"

    # --- set-up ----------------------------------------------------------------
    def java(self) -> str:
        java = shutil.which("java")
        if java is None:
            raise LocalKafkaError("java not found: install Java 17 or newer (e.g. openjdk-17-jre)")
        if java_major_version(java) < 17:
            raise LocalKafkaError(f"{java} is older than Java 17: install Java 17 or newer")
        return java

    def jars_present(self) -> bool:
        return self.libs_dir.is_dir() and any(self.libs_dir.glob("kafka_2.13-*.jar"))

    def fetch_jars(self) -> None:
        """Resolve the broker's jars through Maven (a no-op when they are cached)."""
        if self.jars_present():
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise LocalKafkaError("mvn not found: install Maven 3 to fetch Kafka's jars")
        log.info("fetching Kafka's jars with Maven into %s", self.libs_dir)
        result = subprocess.run(
            [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
             f"-Dlibs.dir={self.libs_dir}"],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0 or not self.jars_present():
            tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
            raise LocalKafkaError("Maven could not fetch Kafka's jars: " + " | ".join(tail))

    def _classpath(self) -> str:
        return str(self.libs_dir / "*")

    # --- process identity ------------------------------------------------------
    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _is_our_broker(self, pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        args = [a.decode(errors="replace") for a in cmdline]
        return MAIN_CLASS in args and str(self.config_file) in args

    def running_pid(self) -> int | None:
        pid = self._read_pid()
        return pid if pid is not None and self._is_our_broker(pid) else None

    # --- commands ----------------------------------------------------------------
    def status(self) -> BrokerStatus:
        pid = self.running_pid()
        answering = pid is not None and broker_answers(self.bootstrap)
        return BrokerStatus(self.bootstrap, self.run_dir, pid, answering)

    def up(self) -> BrokerStatus:
        """Start the broker, or reuse ours if it already runs; return once it answers."""
        pid = self.running_pid()
        if pid is None:
            if port_is_open(self.host, self.port):
                raise LocalKafkaError(
                    f"{self.bootstrap} is already in use by a process that is not this "
                    f"project's broker (no broker pid in {self.pid_file}); stop it or set "
                    "SHOPSTREAM_KAFKA_BOOTSTRAP to another port"
                )
            proc = self._start()
            pid = proc.pid
            self._wait_until_answering(pid, alive=lambda: proc.poll() is None)
        else:
            log.info("reusing the broker already running at %s (pid %d)", self.bootstrap, pid)
            self._wait_until_answering(pid, alive=lambda: self._is_our_broker(pid))
        return BrokerStatus(self.bootstrap, self.run_dir, pid, True)

    def down(self, timeout: float = 30.0) -> bool:
        """Stop the broker we started (by its pid); False when none was running."""
        pid = self.running_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._is_our_broker(pid):
            time.sleep(0.2)
        if self._is_our_broker(pid):
            log.warning("broker pid %d ignored SIGTERM for %.0fs; killing it", pid, timeout)
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True

    # --- internals -------------------------------------------------------------
    def _write_config(self) -> None:
        controller_port = free_port(self.host)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(
            "\n".join([
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@{self.host}:{controller_port}",
                f"listeners=PLAINTEXT://{self.host}:{self.port},"
                f"CONTROLLER://{self.host}:{controller_port}",
                f"advertised.listeners=PLAINTEXT://{self.host}:{self.port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={self.data_dir}",
                "num.partitions=1",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=4",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "transaction.state.log.num.partitions=4",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
                # ~600,000 keys a cleaning pass (see HEAP_FLOOR_BYTES)
                f"log.cleaner.dedupe.buffer.size={CLEANER_DEDUPE_BYTES}",
                *request_threads(len(os.sched_getaffinity(0))),
                *QUIET_QUORUM,
                "",
            ])
        )
        (self.run_dir / "log4j2.properties").write_text(
            "\n".join([
                "status = warn",
                "appender.file.type = File",
                "appender.file.name = FILE",
                f"appender.file.fileName = {self.log_file}",
                "appender.file.layout.type = PatternLayout",
                "appender.file.layout.pattern = [%d] %p %m (%c)%n",
                "rootLogger.level = INFO",
                "rootLogger.appenderRef.file.ref = FILE",
                "logger.kafka.name = kafka.request.logger",
                "logger.kafka.level = WARN",
                "",
            ])
        )

    def _java_command(self, java: str, main: str, *args: str) -> list[str]:
        heap = self.settings.kafka_heap
        # the broker's heap floor; a tool (the storage format) runs with the JVM's own
        floor = ((f"-Xms{heap_floor(heap)}", "-XX:+AlwaysPreTouch") if main == MAIN_CLASS
                 else ())
        return [
            java, f"-Xmx{heap}", *floor, *BROKER_GC, "-Djava.awt.headless=true",
            *shlex.split(self.settings.kafka_jvm_opts),
            f"-Dlog4j2.configurationFile={self.run_dir / 'log4j2.properties'}",
            "-cp", self._classpath(), main, *args,
        ]

    def _format_storage(self, java: str) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        # a Kafka cluster id is a url-safe base64 uuid without padding; it can start with
        # "-", so it is passed as --cluster-id=ID (as "-t ID" it reads as another option)
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(
            self._java_command(java, "kafka.tools.StorageTool", "format", f"--cluster-id={cid}",
                               "-c", str(self.config_file)),
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip().splitlines()[-3:]
            raise LocalKafkaError("formatting Kafka storage failed: " + " | ".join(output))

    def _start(self) -> subprocess.Popen[bytes]:
        java = self.java()
        self.fetch_jars()
        self._write_config()
        self._format_storage(java)
        stdout = (self.run_dir / "stdout.log").open("ab")
        proc = subprocess.Popen(
            self._java_command(java, MAIN_CLASS, str(self.config_file)),
            stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the command that started it
        )
        stdout.close()
        self.pid_file.write_text(str(proc.pid))
        log.info("started Kafka at %s (pid %d), log in %s", self.bootstrap, proc.pid, self.log_file)
        return proc

    def _wait_until_answering(self, pid: int, alive: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.settings.kafka_start_timeout_s
        while time.monotonic() < deadline:
            if broker_answers(self.bootstrap, timeout=2.0):
                return
            if not alive():
                self.pid_file.unlink(missing_ok=True)
                raise LocalKafkaError(
                    f"the broker exited during start-up; see {self.log_file} and "
                    f"{self.run_dir / 'stdout.log'}"
                )
            time.sleep(0.5)
        raise LocalKafkaError(
            f"the broker (pid {pid}) did not answer within "
            f"{self.settings.kafka_start_timeout_s:.0f}s; see {self.log_file}"
        )
