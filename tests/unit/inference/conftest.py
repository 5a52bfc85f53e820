"""Factories for inference tests: tiny random models in a temporary registry."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from inference.registry import ModelRegistry, load_version
from inference.session import CPU
from inference.testing import build_version
from shopstream.config import Settings, load_settings

SMALL = {"n_items": 60, "dim": 16, "layers": 1, "max_len": 8, "top_k": 20}


def _build(model_dir: Path, version: str, **kw: object) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes
        return build_version(model_dir, version, **{**SMALL, **kw})  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def shared_registry(tmp_path_factory) -> Path:
    """One registry with versions v1 (seed 0, dynamic window), v2 (seed 1, fixed window)
    and long (max_len 40),
    built once; CURRENT names v1. Tests that change CURRENT use ``registry_dir`` instead."""
    model_dir = tmp_path_factory.mktemp("models")
    _build(model_dir, "v1", seed=0)
    _build(model_dir, "v2", seed=1, dynamic_len=False, make_current=False)
    _build(model_dir, "long", seed=2, max_len=40, make_current=False)
    return model_dir


@pytest.fixture
def registry_dir(tmp_path) -> Callable[..., Path]:
    """Build versions in a fresh registry: ``make("v1", seed=0, make_current=True)``."""

    def make(version: str, **kw: object) -> Path:
        return _build(tmp_path / "models", version, **kw)

    return make


@pytest.fixture
def inference_settings(tmp_path) -> Callable[..., Settings]:
    def make(**overrides: object) -> Settings:
        return load_settings(**{"model_dir": tmp_path / "models", **overrides})

    return make


@pytest.fixture(scope="session")
def v1(shared_registry):
    return load_version(shared_registry, "v1", load_settings(), providers=[CPU])


@pytest.fixture
def registry_factory(inference_settings):
    def make(**overrides: object) -> ModelRegistry:
        return ModelRegistry(inference_settings(**overrides), providers=[CPU])

    return make
