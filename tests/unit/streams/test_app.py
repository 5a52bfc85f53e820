from unittest import mock

from streams.app import create_app
from streams.handlers import NoInference


def test_the_commit_interval_setting_reaches_faust(settings_factory, monkeypatch):
    # no librdkafka producers: they would keep trying to reach a broker after the test
    monkeypatch.setattr("streams.app.make_sink", lambda settings: mock.MagicMock())
    app = create_app(settings_factory(commit_interval_s=9.5), stage=NoInference())
    assert app.conf.broker_commit_interval == 9.5
    default = create_app(settings_factory(app_id="other"), stage=NoInference())
    assert default.conf.broker_commit_interval == 2.8
