"""The Python API as a notebook uses it: evaluate, read back, turn into DataFrames."""

from __future__ import annotations

import json
from pathlib import Path

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
