"""The local broker manager refuses what it must not do, without starting anything."""

from __future__ import annotations

import socket

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
