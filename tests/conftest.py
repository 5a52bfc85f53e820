"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import pytest

from shopstream.config import Settings, load_settings


@pytest.fixture
def settings_factory(tmp_path):
    """Settings isolated in a temporary directory, with keyword overrides."""

    def make(**overrides: object) -> Settings:
        base: dict[str, object] = {
            "local_dir": tmp_path / "local",
            "worker_data_dir": tmp_path / "worker",
        }
        base.update(overrides)
        return load_settings(**base)

    return make
