"""``shopstream replay`` answers bad input with one line and exit 2, before any broker."""

from __future__ import annotations

import pytest

from shopstream.cli import main


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    return err[0]


def test_missing_file_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "missing.txt")]) == 2
    assert _one_error_line(capsys).startswith("shopstream: error:")


def test_file_of_another_format_is_one_line_and_exit_2(tmp_path, capsys):
    path = tmp_path / "seq.txt"
    path.write_text("".join(f"{u} 1 2 3\n" for u in range(1, 40)))
    assert main(["replay", str(path), "--format", "jsonl"]) == 2
    line = _one_error_line(capsys)
    assert "not a jsonl file" in line and "line 1" in line


@pytest.mark.parametrize("argv", [["--speed", "fast"], ["--rate", "0"], ["--rate", "lots"],
                                  ["--limit", "-3"], ["--format", "parquet"]])
def test_bad_options_are_one_line_and_exit_2(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(["replay", str(tmp_path / "x.txt"), *argv])
    assert exit_info.value.code == 2
    assert _one_error_line(capsys).startswith("shopstream replay: error:")


def test_no_broker_is_one_line_and_exit_1(tmp_path, capsys, monkeypatch):
    from shopstream.localkafka import free_port

    monkeypatch.setenv("SHOPSTREAM_KAFKA_BOOTSTRAP", f"127.0.0.1:{free_port()}")
    path = tmp_path / "seq.txt"
    path.write_text("1 2 3\n")
    assert main(["replay", str(path)]) == 1
    assert "no Kafka broker answers" in _one_error_line(capsys)
