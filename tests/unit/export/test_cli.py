"""Bad input answers with one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import pytest

from shopstream.cli import main


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("shopstream: error: ") and "Traceback" not in err
    return lines[0]


def _train(*args: str) -> int:
    return main(["export", "train", "--epochs", "1", "--quiet", *args])


def test_missing_data_file(tmp_path, capsys):
    assert _train("--data", str(tmp_path / "nope.txt"), "--out", str(tmp_path)) == 2
    assert "not found" in _one_error_line(capsys)


def test_malformed_data_file(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"user_id": "u", "item_id": "a", "type": "view"}\n{oops\n')
    assert _train("--data", str(bad), "--format", "jsonl", "--out", str(tmp_path)) == 2
    assert "bad.jsonl:2" in _one_error_line(capsys)


def test_empty_dataset(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert _train("--data", str(empty), "--out", str(tmp_path)) == 2
    assert "empty dataset" in _one_error_line(capsys)


def test_item_id_out_of_range(seq_file, tmp_path, capsys):
    assert _train("--data", str(seq_file({1: [1, 2, -3]})), "--out", str(tmp_path)) == 2
    _one_error_line(capsys)
    assert _train("--data", str(seq_file({1: [1, 0, 3]}, "zero.txt")), "--out",
                  str(tmp_path)) == 2
    assert "out of range" in _one_error_line(capsys)


def test_bad_numbers_on_the_command_line(seq_file, tmp_path, capsys):
    assert main(["export", "train", "--epochs", "0", "--data", str(seq_file({1: [1, 2, 3]})),
                 "--out", str(tmp_path)]) == 2
    assert "--epochs" in _one_error_line(capsys)


def test_model_folder_without_metadata(seq_file, tmp_path, capsys):
    data = seq_file({1: [1, 2, 3]})
    (tmp_path / "v1").mkdir()
    assert main(["export", "evaluate", "--model", str(tmp_path / "v1"), "--data",
                 str(data)]) == 2
    assert "no metadata.json" in _one_error_line(capsys)
    assert _train("--data", str(data), "--out", str(tmp_path), "--from",
                  str(tmp_path / "v1")) == 2
    assert "no metadata.json" in _one_error_line(capsys)


def test_evaluate_rejects_items_the_model_does_not_know(tiny_version, seq_file, capsys):
    version, _ = tiny_version
    data = seq_file({1: [1, 2, 987654321]})
    assert main(["export", "evaluate", "--model", str(version), "--data", str(data)]) == 2
    assert "not in the model's catalog" in _one_error_line(capsys)


@pytest.mark.parametrize("argv", [
    ["export", "evaluate", "--data", "x"],
    ["export", "train", "--format", "parquet"],
    ["export", "train", "--epochs", "many"],
])
def test_argument_errors_exit_2_in_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
