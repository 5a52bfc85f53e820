"""The command line answers bad input with one line and exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from shopstream.cli import main


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shopstream.cli", *args], capture_output=True,
                          text=True, env=env, timeout=60)


@pytest.mark.parametrize("argv", [["bogus"], ["kafka", "sideways"], ["topics"],
                                  ["demo", "--duration", "soon"], ["worker", "--nope"]])
def test_bad_arguments_give_one_line_and_exit_2(argv):
    result = _run(*argv)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shopstream")
    assert "Traceback" not in result.stderr


def test_bad_setting_gives_one_line_naming_the_variable(monkeypatch):
    env = {"SHOPSTREAM_KAFKA_BOOTSTRAP": "no-port-here", "PATH": "/usr/bin:/bin"}
    result = _run("kafka", "status", env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        result.stderr.strip()
    ] and "SHOPSTREAM_KAFKA_BOOTSTRAP" in result.stderr


def test_negative_demo_duration_is_a_usage_error(capsys):
    assert main(["demo", "--duration", "-3"]) == 2
    assert "--duration" in capsys.readouterr().err


def test_help_lists_the_subcommands():
    result = _run("--help")
    assert result.returncode == 0
    for name in ("kafka", "topics", "worker", "demo", "replay", "export", "bench"):
        assert name in result.stdout
