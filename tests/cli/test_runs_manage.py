"""`llmbench runs --rm REF` and `--csv`: managing and exporting stored runs from the command line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from cli_inprocess import run_cli as cli

ROWS = [{"id": f"r{i}", "text": f"t {i}", "label": ["negative", "positive"][int(i < 3)]} for i in range(4)]
TASK = ("name: manage\nkind: classification\ndataset: {path: rows.jsonl}\n"
        "fields: {id: id, input: text, target: label}\nlabels: [negative, positive]\n")


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS))
    (tmp_path / "task.yaml").write_text(TASK)
    monkeypatch.setenv("LLMBENCH_CACHE", str(tmp_path / "cache"))
    db = str(tmp_path / "runs.db")
    for tag in ("old", "new"):
        code, _, err = cli(["run", "-m", "baseline:majority", "-t", str(tmp_path / "task.yaml"), "--store", db,
                            "--resamples", "0", "--tag", tag], capsys)
        assert code == 0, err
    return db


def test_csv_lists_runs_with_their_metrics(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(["runs", "--store", store, "--csv"], capsys)
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["tags"] for r in rows] == ["old", "new"]
    # majority with no train split answers the first label ("negative"): 1 of 4 rows is negative
    assert {r["model"] for r in rows} == {"baseline:majority"} and [float(r["accuracy"]) for r in rows] == [0.25, 0.25]


def test_rm_deletes_what_a_reference_names_and_nothing_else(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(["runs", "--store", store, "--rm", "last:old", "--csv", "--yes"], capsys)
    assert code == 0 and "removed 1 run(s)" in err  # the message stays off the CSV on stdout
    assert [r["tags"] for r in csv.DictReader(io.StringIO(out))] == ["new"]


def test_rm_with_an_unknown_reference_deletes_nothing(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(["runs", "--store", store, "--rm", "last:new", "--rm", "nope", "--yes"], capsys)
    assert code == 2 and "nope" in err
    _, out, _ = cli(["runs", "--store", store, "--csv"], capsys)
    assert len(list(csv.DictReader(io.StringIO(out)))) == 2


def test_rm_without_a_terminal_asks_for_yes_and_deletes_nothing(store: str, capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """``runs --rm 2026`` (a prefix of every run id) used to delete without a word (issue 22)."""
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, _, err = cli(["runs", "--store", store, "--rm", "last:old"], capsys)
    assert code == 2 and "--yes" in err and len(err.strip().splitlines()) == 1
    _, out, _ = cli(["runs", "--store", store, "--csv"], capsys)
    assert len(list(csv.DictReader(io.StringIO(out)))) == 2


@pytest.mark.parametrize(("answer", "left"), [("n\n", 2), ("y\n", 1)])
def test_rm_on_a_terminal_asks_first(answer: str, left: int, store: str, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO(answer))
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    code, _, err = cli(["runs", "--store", store, "--rm", "last:old"], capsys)
    assert code == 0 and "delete 1 run(s)" in err
    _, out, _ = cli(["runs", "--store", store, "--csv"], capsys)
    assert len(list(csv.DictReader(io.StringIO(out)))) == left


def test_flags_show_no_value_in_help(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """``--no-cache <bool>`` read as if the flag took a value."""
    monkeypatch.setenv("COLUMNS", "160")
    code, out, _ = cli(["run", "--help"], capsys)
    rows = [line for line in out.splitlines() if "--no-cache" in line or "--no-chat" in line or "--full" in line]
    assert code == 0 and len(rows) == 3 and not any("<bool>" in row for row in rows), rows
