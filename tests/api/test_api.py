"""The Python API as a notebook uses it: evaluate, read back, turn into DataFrames."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import llmbench
from llmbench.errors import UserError

ROWS = [{"id": f"r{i}", "text": f"review {i}", "label": ["negative", "positive"][int(i < 7)]} for i in range(10)]
TASK = ("name: api_demo\nkind: classification\ndataset: {path: rows.jsonl}\n"
        "fields: {id: id, input: text, target: label}\nlabels: [negative, positive]\n")


@pytest.fixture
def task_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS))
    (tmp_path / "task.yaml").write_text(TASK)
    monkeypatch.setenv("LLMBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "task.yaml"


def test_evaluate_returns_a_typed_stored_run(task_file: Path, tmp_path: Path) -> None:
    store = tmp_path / "runs.db"
    # "majority" with no train split answers the first label: 3 of 10 rows are "negative".
    run = llmbench.evaluate("baseline:majority", task_file, store=store, resamples=0, tags=["nb"])
    assert run.status == "complete" and run.task == "api_demo" and run.model == "baseline:majority"
    assert run.scores["accuracy"] == pytest.approx(0.3)
    assert run.primary == pytest.approx(0.3)
    samples = run.samples()
    assert [s.sample_id for s in samples] == [r["id"] for r in ROWS]
    assert sum(s.prediction == r["label"] for s, r in zip(samples, ROWS, strict=True)) == 3
    frame = run.samples_frame()
    assert len(frame) == 10 and set(frame["prediction"]) == {"negative"}


def test_load_runs_filters_and_to_pandas(task_file: Path, tmp_path: Path) -> None:
    store = tmp_path / "runs.db"
    llmbench.evaluate("baseline:majority", task_file, store=store, resamples=0, tags=["nb"])
    llmbench.evaluate("baseline:random", task_file, store=store, resamples=0)
    runs = llmbench.load_runs(store)
    assert sorted(r.model for r in runs) == ["baseline:majority", "baseline:random"]
    assert [r.model for r in llmbench.load_runs(store, model="rand")] == ["baseline:random"]
    assert [r.model for r in llmbench.load_runs(store, tag="nb")] == ["baseline:majority"]
    frame = runs.to_pandas()
    acc = frame[frame.metric == "accuracy"].set_index("model")["value"]
    assert acc["baseline:majority"] == pytest.approx(0.3)
    assert set(frame.columns) >= {"run_id", "model", "task", "metric", "value", "ci_low", "ci_high", "primary"}
    assert frame[frame.primary].metric.unique().tolist() == ["accuracy"]
    assert len(runs.to_pandas().pivot_table(index="model", columns="metric", values="value")) == 2


def test_load_runs_never_creates_a_store(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no results store"):
        llmbench.load_runs(tmp_path / "typo.db")
    assert not (tmp_path / "typo.db").exists()


def test_import_llmbench_is_cheap() -> None:
    import subprocess
    import sys

    code = "import sys, llmbench; print('llmbench.runner' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# -- one plan executor for the CLI and the API --------------------------------------------

def _stored(store: Path) -> list[tuple[Any, ...]]:
    """Every run of ``store`` as what it computed: model, task, config, metrics and per-sample
    records (ids, times, latencies and cache flags left out: they differ between any two runs)."""
    from llmbench.store import ResultStore

    db = ResultStore(store, create=False)
    out = []
    for run in db.runs():
        metrics = sorted(((m.value.name, m.metric, m.value.model_dump()) for m in db.metrics(run.id)),
                         key=lambda t: t[0])
        samples = [s.model_dump(exclude={"latency_s": True, "answer": {"latency_total_s", "cached"}})
                   for s in db.samples(run.id)]
        out.append((run.model, run.task, run.status, run.scoring_mode, run.primary_metric,
                    run.run_config.model_dump(), metrics, samples))
    return out


def test_cli_and_evaluate_store_identical_runs(task_file: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from llmbench.cli.main import main

    models, tasks = ["baseline:majority", "baseline:random"], [str(task_file)]
    with pytest.raises(SystemExit) as done:
        main(["run", *[a for m in models for a in ("-m", m)], *[a for t in tasks for a in ("-t", t)],
              "--store", str(tmp_path / "cli.db"), "--resamples", "50", "--seed", "3", "--limit", "8",
              "--tag", "same", "--no-cache"])
    assert done.value.code == 0
    runs = llmbench.evaluate(models, tasks, store=tmp_path / "api.db", resamples=50, seed=3, limit=8,
                             tags=["same"], cache=False)
    assert isinstance(runs, llmbench.Runs) and [r.model for r in runs] == models
    cli, api = _stored(tmp_path / "cli.db"), _stored(tmp_path / "api.db")
    assert len(cli) == 2 and cli == api
    assert all(len(run[-1]) == 8 and run[-2] for run in cli)  # samples and metrics were compared


def test_evaluate_honours_the_store_variable_and_shows_progress(task_file: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from llmbench.cli.main import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMBENCH_STORE", str(tmp_path / "x.db"))
    run = llmbench.evaluate("baseline:majority", task_file, resamples=0)
    err = capsys.readouterr().err
    assert "baseline:majority · api_demo: 10 samples" in err and "10/10 (100%)" in err
    assert (tmp_path / "x.db").exists() and not (tmp_path / "results").exists()
    assert [r.id for r in llmbench.load_runs()] == [run.id]
    with pytest.raises(SystemExit) as done:
        main(["runs"])
    assert done.value.code == 0 and run.id in capsys.readouterr().out


def test_evaluate_checkpoints_the_wal_so_a_copied_file_holds_every_run(task_file: Path, tmp_path: Path) -> None:
    import shutil
    import sqlite3

    from llmbench.store import ResultStore

    ResultStore(tmp_path / "runs.db").close()
    # Another process looking at the store: SQLite then does not fold the log in on close by itself.
    watcher = sqlite3.connect(tmp_path / "runs.db")
    watcher.execute("SELECT COUNT(*) FROM runs").fetchall()
    llmbench.evaluate(["baseline:majority", "baseline:random"], task_file, store=tmp_path / "runs.db",
                      resamples=0, progress=False)
    shutil.copy(tmp_path / "runs.db", tmp_path / "copy.db")  # without its -wal file
    watcher.close()
    assert sorted(r.model for r in llmbench.load_runs(tmp_path / "copy.db")) == [
        "baseline:majority", "baseline:random"]


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"limit": 0}, "'limit': Input should be greater than or equal to 1"),
    ({"label": ["a"]}, "'label': Input should be a valid string"),
    ({"scoring": "vibes"}, "'scoring'"),
    ({"executor": "cloud"}, "'executor'"),
    ({"replicas": 0}, "'replicas'"),
    ({"tags": "nightly"}, "'tags'"),
    ({"options": {"temprature": 0.5}}, "unknown option(s) temprature"),
    ({"models": [], "tasks": ["x"]}, "'models'"),
    ({"models": ["baseline:majority", "baseline:random"], "label": "one"}, "label= names one model"),
])
def test_every_bad_argument_is_one_user_error_line(task_file: Path, tmp_path: Path, kwargs: dict[str, Any],
                                                   fragment: str) -> None:
    call = {"models": "baseline:majority", "tasks": task_file, "store": tmp_path / "r.db", **kwargs}
    with pytest.raises(UserError) as info:
        llmbench.evaluate(**call)
    message = str(info.value)
    assert fragment in message and "\n" not in message
    assert not (tmp_path / "r.db").exists()  # refused before the store is touched


def test_evaluate_applies_the_cli_refusals_and_placement(task_file: Path, tmp_path: Path) -> None:
    from llmbench import registry
    from llmbench.tasks import Task, register_task
    from llmbench.tasks.spec import MetricRef

    class Empty(Task):
        name = "api_empty_py"
        kind = "summarization"
        metrics = (MetricRef(name="rouge"),)
        primary_metric = "rougeL"

        def load_split(self, split: str) -> list[Any]:
            return []

        def build_requests(self, samples: Any, mode: Any, *, chat: bool = False) -> list[Any]:
            return []

        def predict(self, sample: Any, response: Any, mode: Any) -> str:
            return ""

    if "api_empty_py" not in registry.tasks:
        register_task("api_empty_py")(Empty)
    with pytest.raises(UserError, match="has no samples"):
        llmbench.evaluate("baseline:lead", "api_empty_py", store=tmp_path / "r.db")
    assert not (tmp_path / "r.db").exists()
    # replicas is a placement option (checked, not stored), not an unknown adapter option
    run = llmbench.evaluate("baseline:majority", task_file, store=tmp_path / "r.db", replicas=2, resamples=0)
    assert run.status == "complete" and run.info.run_config.model["options"] == {}
