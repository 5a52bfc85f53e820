"""The committed JSON Schema files: fresh, and they accept and refuse what decode does."""

from __future__ import annotations

import jsonschema
import orjson
import pytest

from schemas import TOPIC_MODELS
from schemas.cli import register
from schemas.generate import JSON_DIR, schema_file_name, stale, write_all

from .samples import TOPICS, payload


def load_schema(topic: str) -> dict:
    return orjson.loads((JSON_DIR / schema_file_name(topic)).read_bytes())


def test_committed_files_match_the_models():
    assert stale() == [], "run 'shopstream schemas generate' and commit schemas/json"


def test_every_topic_has_a_file():
    assert {p.name for p in JSON_DIR.glob("*.schema.json")} == {
        schema_file_name(topic) for topic in TOPIC_MODELS
    }


def test_stale_names_changed_missing_and_foreign_files(tmp_path):
    write_all(tmp_path)
    assert stale(tmp_path) == []
    (tmp_path / schema_file_name("events.views")).write_text("{}\n")
    (tmp_path / schema_file_name("recs.users")).unlink()
    (tmp_path / "old.topic.schema.json").write_text("{}\n")
    assert {p.name for p in stale(tmp_path)} == {
        "events.views.schema.json", "recs.users.schema.json", "old.topic.schema.json",
    }


@pytest.mark.parametrize("topic", TOPICS)
def test_sample_events_validate_against_their_schema(topic):
    schema = load_schema(topic)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(payload(topic))


@pytest.mark.parametrize(("topic", "changes"), [
    ("events.views", {"user_id": ""}),
    ("events.views", {"ts": "1764000000000"}),
    ("events.views", {"extra": 1}),
    ("events.clicks", {"action": "wishlist"}),
    ("events.clicks", {"ts": 946_684_799_999}),
    ("catalog.items", {"in_stock": ...}),
    ("recs.users", {"items": [{"item_id": "1", "score": 1.0}]}),
    ("events.views", {"schema_version": 2}),
])
def test_schema_refuses_what_decode_refuses(topic, changes):
    validator = jsonschema.Draft202012Validator(load_schema(topic))
    assert not validator.is_valid(payload(topic, **changes))


def _run(argv, capsys):
    import argparse

    parser = argparse.ArgumentParser(prog="shopstream")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = args.func(args, None)
    return code, capsys.readouterr()


def test_check_command_exits_1_naming_stale_files(tmp_path, capsys):
    code, out = _run(["schemas", "generate", "--check", "--dir", str(tmp_path)], capsys)
    assert code == 1
    assert "events.views.schema.json" in out.err


def test_generate_command_writes_then_check_passes(tmp_path, capsys):
    code, _ = _run(["schemas", "generate", "--dir", str(tmp_path)], capsys)
    assert code == 0
    code, out = _run(["schemas", "generate", "--check", "--dir", str(tmp_path)], capsys)
    assert code == 0 and "up to date" in out.out
