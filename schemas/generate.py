"""JSON Schema files, one per topic, generated from the event models.

The files under ``schemas/json/`` are committed so consumers in other languages can use
them; ``shopstream schemas generate --check`` (and a unit test) fail when they are stale.
What JSON Schema cannot say is checked by ``schemas.codec.decode`` alone: the limits on
size and nesting, and timestamps more than a day in the future.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from schemas.base import SCHEMA_VERSION
from schemas.registry import TOPIC_MODELS

JSON_DIR = Path(__file__).resolve().parent / "json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_file_name(topic: str) -> str:
    return f"{topic}.schema.json"


def topic_schema(topic: str) -> dict[str, Any]:
    """The JSON Schema of the events on ``topic``."""
    model = TOPIC_MODELS[topic]
    schema = model.model_json_schema(mode="validation")
    return {
        "$schema": DIALECT,
        "$id": schema_file_name(topic),
        "x-topic": topic,
        "x-schema-version": SCHEMA_VERSION,
        "x-timestamps": "epoch milliseconds, UTC",
        **schema,
    }


def render(topic: str) -> bytes:
    """The file content for ``topic``: stable key order, two-space indent, final newline."""
    options = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
    return orjson.dumps(topic_schema(topic), option=options) + b"\n"


def write_all(directory: Path = JSON_DIR) -> list[Path]:
    """Write every topic's file; returns the paths whose content changed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = []
    for path, content in _expected(directory).items():
        if not path.exists() or path.read_bytes() != content:
            path.write_bytes(content)
            changed.append(path)
    return changed


def stale(directory: Path = JSON_DIR) -> list[Path]:
    """Files that are missing, differ from the models, or belong to no topic."""
    expected = _expected(directory)
    out = [p for p, content in expected.items() if not p.exists() or p.read_bytes() != content]
    if directory.is_dir():
        out += sorted(p for p in directory.glob("*.schema.json") if p not in expected)
    return out


def _expected(directory: Path) -> dict[Path, bytes]:
    return {directory / schema_file_name(topic): render(topic) for topic in sorted(TOPIC_MODELS)}
