import asyncio
from unittest import mock

import faust
import pytest
from faust.types import TP
from faust.types.tuples import Message

from streams.app import create_app, raw_topic
from streams.handlers import NoInference


def test_the_commit_interval_setting_reaches_faust(settings_factory, monkeypatch):
    # no librdkafka producers: they would keep trying to reach a broker after the test
    monkeypatch.setattr("streams.app.make_sink", lambda settings: mock.MagicMock())
    app = create_app(settings_factory(commit_interval_s=9.5), stage=NoInference())
    assert app.conf.broker_commit_interval == 9.5
    default = create_app(settings_factory(app_id="other"), stage=NoInference())
    assert default.conf.broker_commit_interval == 2.8


def test_only_the_timer_commits_not_the_loop_that_hands_records_on(settings_factory,
                                                                   monkeypatch):
    monkeypatch.setattr("streams.app.make_sink", lambda settings: mock.MagicMock())
    app = create_app(settings_factory(), stage=NoInference())
    # Faust's drain loop commits, and hands on nothing meanwhile, every that many acks
    assert app.consumer._commit_every >= 2**62


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
