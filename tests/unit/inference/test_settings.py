import os

import pytest
from pydantic import ValidationError

from shopstream.config import load_settings


def test_inference_settings_have_the_documented_defaults(monkeypatch):
    for name in [n for n in os.environ if n.startswith("SHOPSTREAM_")]:
        monkeypatch.delenv(name)
    s = load_settings(_env_file=None)
    assert (s.max_batch_size, s.max_wait_ms, s.top_k, s.diversity_cap) == (256, 0.1, 10, 3)
    assert s.model_dir.name == "models" and s.excluded_categories == frozenset()
    assert s.ab_version is None and s.ab_share == 0.0


def test_excluded_categories_come_comma_separated_from_the_environment(monkeypatch):
    monkeypatch.setenv("SHOPSTREAM_EXCLUDED_CATEGORIES", "adult, tobacco,,")
    assert load_settings().excluded_categories == frozenset({"adult", "tobacco"})


def test_an_ab_share_outside_zero_to_one_is_refused():
    with pytest.raises(ValidationError):
        load_settings(ab_share=1.5)
