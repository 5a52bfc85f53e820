"""The local broker manager refuses what it must not do, without starting anything."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from shopstream import localkafka
from shopstream.localkafka import LocalKafka, LocalKafkaError, free_port


def test_port_held_by_a_foreign_process_is_refused(settings_factory):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        broker = LocalKafka(settings_factory(kafka_bootstrap=f"127.0.0.1:{port}"))
        with pytest.raises(LocalKafkaError, match="not this project's broker"):
            broker.up()
        assert not broker.pid_file.exists()  # nothing was started


def test_missing_java_names_what_to_install(settings_factory, monkeypatch):
    monkeypatch.setattr(localkafka.shutil, "which", lambda name: None)
    broker = LocalKafka(settings_factory(kafka_bootstrap=f"127.0.0.1:{free_port()}"))
    with pytest.raises(LocalKafkaError, match="install Java 17"):
        broker.up()


def test_missing_maven_names_what_to_install(settings_factory, monkeypatch):
    monkeypatch.setattr(localkafka.shutil, "which", lambda name: None)
    broker = LocalKafka(settings_factory())
    with pytest.raises(LocalKafkaError, match="install Maven"):
        broker.fetch_jars()


def test_down_with_nothing_running_reports_it(settings_factory):
    broker = LocalKafka(settings_factory(kafka_bootstrap=f"127.0.0.1:{free_port()}"))
    assert broker.down() is False
    assert broker.status().running is False


def test_a_stale_pid_of_another_program_is_not_our_broker(settings_factory):
    broker = LocalKafka(settings_factory(kafka_bootstrap=f"127.0.0.1:{free_port()}"))
    broker.run_dir.mkdir(parents=True)
    broker.pid_file.write_text("1")  # pid 1 is never our broker
    assert broker.running_pid() is None
    assert broker.down() is False  # and down() does not signal it


def test_each_port_gets_its_own_run_directory(settings_factory):
    a = LocalKafka(settings_factory(kafka_bootstrap="127.0.0.1:9092"))
    b = LocalKafka(settings_factory(kafka_bootstrap="127.0.0.1:19092"))
    assert a.run_dir != b.run_dir and a.libs_dir == b.libs_dir


def test_storage_formats_when_the_cluster_id_starts_with_a_dash(settings_factory, tmp_path,
                                                                 monkeypatch):
    # about 1 in 64 random ids start with "-"; Kafka's StorageTool once read one as an option
    settings = settings_factory(kafka_bootstrap=f"127.0.0.1:{free_port()}",
                                kafka_data_dir=tmp_path / "kafka",
                                local_dir=localkafka.PROJECT_ROOT / ".local")
    broker = LocalKafka(settings)
    broker.fetch_jars()
    dash_first = bytes([0xF8]) + bytes(15)  # url-safe base64 of 0b111110... is "-"
    monkeypatch.setattr(localkafka.uuid, "uuid4", lambda: uuid.UUID(bytes=dash_first))
    broker._write_config()
    broker._format_storage(broker.java())
    meta = (broker.data_dir / "meta.properties").read_text()
    assert "cluster.id=-" in meta


def test_jvm_options_from_settings_reach_the_java_command(settings_factory, monkeypatch):
    broker = LocalKafka(settings_factory(kafka_jvm_opts="-XX:TieredStopAtLevel=1 -Dx='a b'"))
    monkeypatch.setattr(broker, "_classpath", lambda: "jars/*")
    command = broker._java_command("java", "kafka.Kafka", "server.properties")
    assert command[0] == "java" and command[-2:] == ["kafka.Kafka", "server.properties"]
    assert "-XX:TieredStopAtLevel=1" in command and "-Dx=a b" in command


def test_the_broker_gets_kafkas_gc_settings_which_the_users_options_can_override(
        settings_factory, monkeypatch):
    broker = LocalKafka(settings_factory(kafka_jvm_opts="-XX:MaxGCPauseMillis=50"))
    monkeypatch.setattr(broker, "_classpath", lambda: "jars/*")
    command = broker._java_command("java", "kafka.Kafka", "server.properties")
    for option in ("-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                   "-XX:InitiatingHeapOccupancyPercent=35"):
        assert option in command
    # the JVM takes the last of a repeated option: the user's comes later
    assert command.index("-XX:MaxGCPauseMillis=50") > command.index("-XX:MaxGCPauseMillis=20")


@pytest.mark.parametrize(("cores", "io", "network"),
                         [(1, 1, 1), (2, 1, 1), (4, 2, 1), (8, 4, 2), (16, 8, 3), (64, 8, 3)])
def test_request_threads_fit_the_machine_and_stop_at_kafkas_defaults(cores, io, network):
    assert localkafka.request_threads(cores) == (f"num.io.threads={io}",
                                                 f"num.network.threads={network}")


def written_config(settings_factory, tmp_path) -> list[str]:
    """The lines of the broker config ``kafka up`` would write."""
    broker = LocalKafka(settings_factory(kafka_bootstrap=f"127.0.0.1:{free_port()}",
                                         kafka_data_dir=tmp_path / "kafka"))
    broker._write_config()
    return broker.config_file.read_text().splitlines()


def test_the_broker_config_sizes_its_request_threads_to_this_machine(settings_factory,
                                                                     tmp_path):
    lines = written_config(settings_factory, tmp_path)
    for line in localkafka.request_threads(len(os.sched_getaffinity(0))):
        assert line in lines


def test_the_broker_config_quiets_the_one_node_quorums_housekeeping(settings_factory,
                                                                    tmp_path):
    config = dict(line.split("=", 1) for line in written_config(settings_factory, tmp_path)
                  if "=" in line)
    assert config["metadata.max.idle.interval.ms"] == "0"  # no no-op records
    heartbeat = int(config["broker.heartbeat.interval.ms"])
    session = int(config["broker.session.timeout.ms"])
    assert heartbeat == 6000 and session >= 3 * heartbeat  # a missed beat does not fence it


@pytest.mark.parametrize(("heap", "floor"), [("512m", "256m"), ("1g", "256m"), ("256M", "256M"),
                                             ("128m", "128m"), ("100000000", "100000000")])
def test_the_brokers_heap_starts_at_256_mb_or_all_of_a_smaller_one(heap, floor):
    assert localkafka.heap_floor(heap) == floor


def test_a_heap_size_the_jvm_would_refuse_is_named():
    with pytest.raises(LocalKafkaError, match="not a JVM heap size"):
        localkafka.heap_floor("lots")


def test_the_broker_starts_with_its_heap_floor_touched_and_the_storage_tool_does_not(
        settings_factory, monkeypatch):
    broker = LocalKafka(settings_factory(kafka_heap="1g"))
    monkeypatch.setattr(broker, "_classpath", lambda: "jars/*")
    command = broker._java_command("java", "kafka.Kafka", "server.properties")
    assert "-Xmx1g" in command and "-Xms256m" in command and "-XX:+AlwaysPreTouch" in command
    tool = broker._java_command("java", "kafka.tools.StorageTool", "format")
    assert "-Xmx1g" in tool and not any(o.startswith("-Xms") for o in tool)


def test_the_broker_config_keeps_the_log_cleaners_map_small(settings_factory, tmp_path):
    assert (f"log.cleaner.dedupe.buffer.size={16 << 20}"
            in written_config(settings_factory, tmp_path))
