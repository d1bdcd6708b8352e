"""Every way a store cannot be used is one ``StoreError`` line, found before a model loads;
read commands never create a store; a run that fails after it started is marked ``failed``."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest
from cli_inprocess import run_cli as cli

from llmbench.store import ResultStore, StoreError

ROWS = [{"id": f"r{i}", "text": f"review {i}", "label": ["negative", "positive"][i % 2]} for i in range(6)]
TASK = ("name: st_demo\nkind: classification\ndataset: {path: rows.jsonl}\n"
        "fields: {id: id, input: text, target: label}\nlabels: [negative, positive]\nmetrics: [accuracy]\n")


def one_line_error(location: str | Path, match: str, *, create: bool = True) -> str:
    with pytest.raises(StoreError, match=match) as err:
        ResultStore(location, create=create)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_bad_locations_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one_line_error(tmp_path / "missing" / "r.db", r"folder '.*missing' does not exist — create it")
    assert not (tmp_path / "missing").exists()
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite " * 300)
    one_line_error(tmp_path / "junk.db", "is not a SQLite database")
    one_line_error(tmp_path, "is a folder")
    ResultStore(tmp_path / "ro.db")
    one_line_error(f"sqlite:///file:{tmp_path / 'ro.db'}?mode=ro&uri=true", "is read-only")
    assert "secret" not in one_line_error("postgresql://u:secret@127.0.0.1:1/x", "127.0.0.1.*Connection refused")
    monkeypatch.setitem(sys.modules, "psycopg", None)  # the postgres extra not installed
    one_line_error("postgresql://u@localhost/x", r"needs the database driver 'psycopg'.*llmbench\[postgres\]")


def test_readers_never_create_a_store(tmp_path: Path) -> None:
    one_line_error(tmp_path / "none.db", "no results store at", create=False)
    assert not (tmp_path / "none.db").exists()
    (tmp_path / "empty.db").write_bytes(b"")
    assert ResultStore(tmp_path / "empty.db", create=False).runs() == []
    assert (tmp_path / "empty.db").stat().st_size == 0  # not even turned into an empty store


def test_a_stub_store_is_one_line_not_an_empty_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A store copied without its -wal file (or an empty file) has no tables: every reader
    says so, and `llmbench runs` exits 2 instead of printing an empty table."""
    from llmbench.cli.main import main
    from llmbench.store import open_existing

    stub = tmp_path / "copy.db"
    stub.write_bytes(b"")
    with pytest.raises(StoreError, match=r"has no llmbench tables.*-wal"):
        open_existing(stub)
    with pytest.raises(SystemExit) as done:
        main(["runs", "--store", str(stub)])
    err = capsys.readouterr().err.strip()
    assert done.value.code == 2 and len(err.splitlines()) == 1 and "copy.db-wal" in err


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS))
    (tmp_path / "task.yaml").write_text(TASK)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "250")
    return tmp_path


def test_a_read_only_store_fails_before_the_model_loads(work: Path, tiny_gpt2: Path,
                                                        capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from llmbench.models.hf.adapter import HFAdapter

    def no_loading(self: object) -> None:
        raise AssertionError("the model was loaded before the store was checked")

    monkeypatch.setattr(HFAdapter, "prepare", no_loading)
    ResultStore(work / "ro.db")
    store = f"sqlite:///file:{work / 'ro.db'}?mode=ro&uri=true"
    code, _, err = cli(["run", "-m", f"hf:{tiny_gpt2}", "-t", "task.yaml", "--store", store], capsys)
    assert code == 2 and err.count("\n") == 1 and "is read-only" in err, err


def test_a_run_that_fails_after_it_started_is_failed_with_its_reason(work: Path, capsys: pytest.CaptureFixture[str],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from llmbench.models.baselines import BaselineAdapter

    def boom(self: object, requests: object) -> object:
        raise ValueError("classifier labels [LABEL_0, LABEL_1] do not match the task's [negative, positive]")

    store = str(work / "runs.db")
    assert cli(["run", "-m", "baseline:majority", "-t", "task.yaml", "--store", store, "--tag", "n"], capsys)[0] == 0
    monkeypatch.setattr(BaselineAdapter, "run", boom)
    code, _, err = cli(["run", "-m", "baseline:random", "-t", "task.yaml", "--store", store], capsys)
    assert code == 3 and "ValueError" in err
    ok, failed = sorted(ResultStore(store).runs(), key=lambda r: r.model)  # majority < random
    assert (ok.status, failed.status) == ("complete", "failed")
    assert failed.reason == ("ValueError: classifier labels [LABEL_0, LABEL_1] do not match the task's "
                             "[negative, positive]")
    # a run killed with -9 (its process gone) is listed as interrupted, a live one would be running
    with sqlite3.connect(store) as conn:
        conn.execute("UPDATE runs SET status = 'running', pid = 4194000 WHERE id = ?", (ok.id,))
    code, out, _ = cli(["runs", "--store", store, "--wide"], capsys)
    assert code == 0 and "interrupted" in out and "failed" in out and ok.batch_id in out
    assert "[LABEL_0, LABEL_1] do not match" in out  # the reason under the table, as text not markup
    code, out, _ = cli(["runs", "--store", store, "--prune"], capsys)
    assert code == 0 and "removed 2 failed or interrupted run(s)" in out
    assert ResultStore(store).runs() == []


def test_show_uses_the_one_reference_grammar(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = str(work / "runs.db")
    for model in ("baseline:majority", "baseline:random"):
        assert cli(["run", "-m", model, "-t", "task.yaml", "--store", store, "--tag", "nightly"], capsys)[0] == 0
    first, second = sorted(ResultStore(store).runs(), key=lambda r: r.model)
    code, out, _ = cli(["show", "last:nightly", "--store", store], capsys)
    assert code == 0 and second.id in out and "baseline:random" in out
    code, _, err = cli(["show", "2", "--store", store], capsys)  # a prefix of both: never a silent pick
    assert code == 2 and "ambiguous" in err and first.id in err and second.id in err
    code, out, _ = cli(["show", "prev:nightly", "--json", "--store", store], capsys)
    assert code == 0 and json.loads(out)["run"]["id"] == first.id
    code, _, err = cli(["show", "x", "--store", str(work / "nothing.db")], capsys)
    assert code == 2 and "no results store" in err and not (work / "nothing.db").exists()
    code, _, err = cli(["runs", "--store", str(work / "nothing.db")], capsys)
    assert code == 2 and not (work / "nothing.db").exists()


def _only_line(code: int, err: str) -> str:
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_required_column_llmbench_does_not_know_is_one_line(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Another program added a NOT NULL column: the run is refused in one line, the store kept."""
    store = str(work / "runs.db")
    assert cli(["run", "-m", "baseline:majority", "-t", "task.yaml", "--store", store], capsys)[0] == 0
    with sqlite3.connect(store) as conn:  # SQLite adds NOT NULL columns only with a default: rebuild
        schema = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'runs'").fetchone()[0]
        conn.execute(schema.replace("CREATE TABLE runs (", "CREATE TABLE runs_new (owner TEXT NOT NULL, ", 1))
        conn.execute("INSERT INTO runs_new SELECT 'someone', * FROM runs")
        conn.execute("DROP TABLE runs")
        conn.execute("ALTER TABLE runs_new RENAME TO runs")
    code, _, err = cli(["run", "-m", "baseline:random", "-t", "task.yaml", "--store", store], capsys)
    line = _only_line(code, err)
    assert "runs.owner" in line and "another program" in line
    assert len(ResultStore(store).runs()) == 1  # the stored run is intact


def test_a_row_of_the_wrong_shape_is_one_line(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A tags value that is not a list (written by hand): every reader says so in one line."""
    store = str(work / "runs.db")
    assert cli(["run", "-m", "baseline:majority", "-t", "task.yaml", "--store", store], capsys)[0] == 0
    with sqlite3.connect(store) as conn:
        conn.execute("UPDATE runs SET tags = '42'")
    line = _only_line(*cli(["runs", "--store", store], capsys)[::2])
    assert "cannot read" in line and "tags" in line


def test_a_suite_models_forced_scoring_names_its_suite_entry(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (work / "task.yaml").write_text(TASK + "scoring: [loglikelihood]\n")
    suite = work / "s.yaml"
    suite.write_text("name: s\nmodels:\n  - {spec: baseline:majority, scoring: generate}\ntasks: [task.yaml]\n")
    code, _, err = cli(["run", "--suite", str(suite), "--store", str(work / "runs.db")], capsys)
    line = _only_line(code, err)
    assert str(suite) in line and "models[0]" in line and "suite model's 'scoring:'" in line
    assert "drop --scoring" not in line
