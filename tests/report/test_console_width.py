"""Terminal output that fits where it is read: ``llmbench runs`` at 80 columns keeps model, task,
primary score and status for every run (``--wide`` shows all), and ``compare``/``gate`` print
the flipped samples with their text; the gate's words follow the metric's direction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from report_fixtures import build_demo_store

from llmbench.report.gate import change_words, regression_line
from llmbench.report.paired import PairedValue


class _Boundary:
    name = "llmbench"

    def main(self, args: list[str], prog_name: str | None = None, **_: object) -> None:
        from llmbench.cli.main import main

        main(list(args))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("width")
    build_demo_store(root)
    return root / "demo.sqlite"


def _cli(columns: int, *args: str) -> Any:
    from llmbench.cli import options

    options.console.width = columns  # the CLI's console reads COLUMNS once, at import
    runner = CliRunner(env={"COLUMNS": str(columns), "NO_COLOR": "1", "TERM": "dumb"})
    return runner.invoke(_Boundary(), list(args))  # type: ignore[arg-type]


def test_runs_at_80_columns_keeps_model_task_score_status(demo: Path) -> None:
    from llmbench.store import ResultStore

    runs = ResultStore(demo).runs()
    out = _cli(80, "runs", "--store", str(demo))
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    body = "\n".join(lines)
    for r in runs:  # every run: its model, task, primary value and status are there, whole
        assert r.task in body and r.status in body
        value = next(m.value.value for m in ResultStore(demo).metrics(r.id) if m.value.name == r.primary_metric)
        assert f"{r.primary_metric}={value:.4f}" in body
    assert "smollm2-135m-instruct" in body and "minilm-l6-finetuned" in body
    assert "hidden at 80 cols: run, batch, created, mode (--wide shows all)" in body
    wide = _cli(80, "runs", "--store", str(demo), "--wide")
    assert all(r.id in wide.output for r in runs) and "batch" in wide.output and "tags" in wide.output


def test_runs_wide_terminal_shows_everything_without_note(demo: Path) -> None:
    out = _cli(240, "runs", "--store", str(demo))
    assert out.exit_code == 0 and "--wide" not in out.output and "tags" in out.output


def _value(name: str, hib: bool, a: float, b: float, metric: str = "m") -> PairedValue:
    return PairedValue(metric=metric, name=name, higher_is_better=hib, n=10, a=a, b=b, delta=b - a, p=0.001,
                       ci_low=b - a - 0.01, ci_high=b - a + 0.01)


def test_gate_words_follow_the_direction() -> None:
    assert change_words(_value("brier", False, 0.2941, 0.3327, "brier")).startswith(
        "brier worsened by 0.0386 (0.2941 → 0.3327, lower is better)")
    assert change_words(_value("accuracy", True, 0.8, 0.75)).startswith("accuracy dropped by")
    assert "dropped" not in change_words(_value("ece", False, 0.1, 0.2))


def test_one_metric_family_is_one_regression_line() -> None:
    values = [_value(n, True, 0.8, 0.7, "f1") for n in ("f1_macro", "precision_macro", "recall_macro", "f1_micro")]
    line = regression_line(values)
    assert line.count("dropped by") == 1
    assert "one regression of metric 'f1' (4 values: also precision_macro, recall_macro, f1_micro)" in line


def test_compare_prints_flipped_samples_with_their_text(demo: Path) -> None:
    from llmbench.store import ResultStore

    runs = [r for r in ResultStore(demo).runs() if r.task == "sentiment_mini" and r.model == "gpt-4o-mini"]
    a, b = runs[0], runs[1]  # nights 0 and 1: wrong on s00-s05, then on s01-s06
    out = _cli(100, "compare", a.id, b.id, "--store", str(demo), "--resamples", "50")
    assert out.exit_code == 0, out.output
    assert "right → wrong (1): s06" in out.output
    assert "input     review number 6:" in out.output and "reference" in out.output
    assert "right → wrong" in out.output and "wrong → right (1): s00" in out.output
    assert "leaderboard/samples-sentiment_mini.html#<id>" in out.output
    as_json = json.loads(_cli(100, "compare", a.id, b.id, "--store", str(demo), "--resamples", "50",
                              "--json").stdout)
    text = as_json["pairs"][0]["samples"]["s06"]
    assert text["input"].startswith("review number 6") and text["prediction_a"] != text["prediction_b"]


def test_gate_json_out_is_written_for_an_internal_error(demo: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import llmbench.report.gate as gate

    def boom(*_: Any, **__: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(gate, "run_gate", boom)
    out = tmp_path / "gate.json"
    from llmbench.store import ResultStore

    ids = [r.id for r in ResultStore(demo).runs() if r.model == "gpt-4o-mini" and r.task == "qa_mini"]
    res = _cli(100, "gate", "--baseline", ids[0], "--candidate", ids[1], "--store", str(demo), "--json-out", str(out))
    assert res.exit_code == 3
    data = json.loads(out.read_text())
    assert data["decision"] == "error" and data["exit_code"] == 3 and "a bug" in data["reasons"][0]


def test_compare_table_fits_80_columns(demo: Path) -> None:
    from llmbench.store import ResultStore

    runs = [r for r in ResultStore(demo).runs() if r.task == "qa_mini" and r.model == "gpt-4o-mini"]
    out = _cli(80, "compare", runs[0].id, runs[1].id, "--store", str(demo), "--resamples", "50")
    assert out.exit_code == 0, out.output
    rows = [line for line in out.output.splitlines() if line.startswith(("value", "exact_match ", "f1 "))]
    assert len(rows) == 3 and all(len(line) <= 80 for line in rows), rows
    assert all("[" in line and "]" in line for line in rows[1:])  # a CI is never split over two lines
    assert out.output.count("input     Which city is number 5?") == 1  # one sample, printed once


def test_gate_prints_one_line_per_metric_family(tmp_path: Path) -> None:
    """A candidate that got worse: accuracy is one regression, the f1 metric's many values
    (precision/recall/F1 macro, micro, weighted, per class) are one more, listed in it."""
    from report_fixtures import classifier, run, write_cls_task, wrong_ids

    from llmbench.store import ResultStore

    store = ResultStore(tmp_path / "g.sqlite")
    task = write_cls_task(tmp_path / "t", n=60, metrics=["accuracy", "f1"])
    base = run(store, task, classifier("m", wrong_ids("s", range(0, 3))), "hf:/m", label="m", resamples=200)
    cand = run(store, task, classifier("m", wrong_ids("s", range(0, 30))), "hf:/m", label="m", resamples=200)
    out = _cli(100, "gate", "--baseline", base, "--candidate", cand, "--store", str(tmp_path / "g.sqlite"),
               "--resamples", "200", "--json-out", str(tmp_path / "gate.json"))
    assert out.exit_code == 1, out.output
    lines = [line for line in out.output.splitlines() if "dropped by" in line or "worsened by" in line]
    assert len(lines) == 2, lines
    assert any(line.strip().startswith("accuracy dropped by") for line in lines)
    family = next(line for line in lines if "one regression of metric 'f1'" in line)
    assert "precision_macro" in family and "recall_macro" in family
    data = json.loads((tmp_path / "gate.json").read_text())
    assert data["decision"] == "regression" and len(data["regression_lines"]) == 2
    assert len(data["regressions"]) > 2  # every value is still in the JSON, one by one


def test_sample_fields_show_whatever_the_record_holds() -> None:
    from llmbench.report.leaderboard import sample_fields
    from llmbench.store import AnswerInfo, SampleRecord

    rec = SampleRecord(idx=0, sample_id="s1", input="x", prompt="Review: x\nSentiment:", prediction="positive",
                       references=["positive"], stats={"accuracy": {"correct": 1, "_parsed": "positive"}},
                       latency_s=0.25, prompt_tokens=7, slice="books",
                       answer=AnswerInfo(output=" Positive.", choice_logprobs=[-0.5, -1.5], finish_reason="stop"))
    fields = sample_fields(rec)
    assert fields == {"prompt": "Review: x\nSentiment:", "prediction": "positive", "latency_s": 0.25,
                      "prompt_tokens": 7, "slice": "books", "output": " Positive.", "choice_logprobs": [-0.5, -1.5],
                      "finish_reason": "stop", "accuracy.parsed": "positive"}
