import asyncio
from unittest import mock

import faust
import pytest
from faust.types import TP
from faust.types.tuples import Message

from streams.app import create_app, raw_topic
from streams.handlers import NoInference


@pytest.fixture
def make_app(settings_factory, monkeypatch):
    """The worker's app from settings overrides, with no model and a stand-in sink."""
    # no librdkafka producers: they would keep trying to reach a broker after the test
    monkeypatch.setattr("streams.app.make_sink", lambda settings: mock.MagicMock())
    return lambda **overrides: create_app(settings_factory(**overrides), stage=NoInference())


def test_the_commit_interval_setting_reaches_faust(make_app):
    assert make_app(commit_interval_s=9.5).conf.broker_commit_interval == 9.5
    assert make_app(app_id="other").conf.broker_commit_interval == 2.8


def test_only_the_timer_commits_not_the_loop_that_hands_records_on(make_app):
    app = make_app()
    # Faust's drain loop commits, and hands on nothing meanwhile, every that many acks
    assert app.consumer._commit_every >= 2**62


def test_the_kafka_client_runs_on_the_loop_unless_the_setting_gives_it_a_thread(make_app):
    on_loop = make_app().consumer._thread
    assert on_loop.thread_loop is on_loop.parent_loop
    threaded = make_app(app_id="threaded", kafka_client_thread=True).consumer._thread
    assert threaded.thread_loop is not threaded.parent_loop
    assert threaded.Worker(threaded).name == "kafka-consumer"


def _fetch_wait_ms(app):
    async def build():  # aiokafka wants a running loop for its client
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        await consumer._client.close()
        return consumer._fetch_max_wait_ms

    return asyncio.run(build())


def test_faust_reads_views_and_clicks_only_when_the_intake_setting_says_so(make_app):
    # with librdkafka reading them, Faust keeps its input partitions paused once assigned
    views = TP("events.views", 0)
    with_intake = make_app(app_id="with-intake").consumer
    with_intake.resume_partitions({views})
    assert views not in with_intake._get_active_partitions()
    faust_only = make_app(app_id="faust-only", intake="faust").consumer
    faust_only.resume_partitions({views})
    assert views in faust_only._get_active_partitions()


def test_fausts_client_fetches_at_a_slower_pace_when_it_reads_no_views(make_app):
    assert _fetch_wait_ms(make_app(app_id="slow", faust_fetch_max_wait_ms=300)) == 300
    assert _fetch_wait_ms(make_app(app_id="fast", intake="faust", fetch_max_wait_ms=12)) == 12


@pytest.mark.parametrize(("key", "value", "headers"),
                         [(b"u1", b'{"x": 1}', [(b"h", b"v")]), (None, None, []),
                          (b"", b"not json", None)])
def test_raw_topics_hand_on_the_bytes_that_came_as_fausts_raw_decoding_does(
        key, value, headers):
    app = faust.App("raw-test", broker="kafka://127.0.0.1:1")
    fausts = app.topic("t", key_type=bytes, value_type=bytes, key_serializer="raw",
                       value_serializer="raw")
    message = Message("t", 0, 7, 0.0, 0, headers, key, value, None, tp=TP("t", 0))
    ours = asyncio.run(raw_topic(app, "t").decode(message, propagate=True))
    theirs = asyncio.run(fausts.decode(message, propagate=True))
    assert (ours.key, ours.value, ours.headers) == (theirs.key, theirs.value, theirs.headers)
    assert ours.message is message and type(ours) is type(theirs)
    assert (ours.key, ours.value) == (key, value)
