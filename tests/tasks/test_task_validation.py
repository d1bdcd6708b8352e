"""What a task refuses when it loads (the corpus in tests/core/test_bad_input.py drives the same
checks through the CLI), and the table behind the ``primary_metric`` check kept honest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmbench.tasks import TaskError, load_task
from llmbench.tasks.kinds import METRIC_VALUES, metric_value_names

TASK = ("name: v\nkind: classification\ndataset: {path: rows.jsonl}\n"
        "fields: {id: id, input: text, target: label}\nlabels: [negative, positive]\n")


def write(tmp: Path, rows: list[object], extra: str = "") -> Path:
    (tmp / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp / "task.yaml").write_text(TASK + extra)
    return tmp / "task.yaml"


@pytest.mark.parametrize("name", sorted(METRIC_VALUES))
def test_the_value_table_matches_what_each_metric_computes(name: str) -> None:
    """The table in tasks/kinds.py (tasks may not import metrics) against the real metric."""
    from llmbench.metrics import get_metric

    labels = ("negative", "positive")
    from llmbench.metrics.calibration import ProbabilityMetric

    metric = get_metric(name, labels=labels)
    if isinstance(metric, ProbabilityMetric):  # calibration reads label probabilities
        probs = {"negative": 0.3, "positive": 0.7}
        stats = [metric.probability_stats(prediction=p, probabilities=probs, references=("positive",))
                 for p in ("positive", "negative")]
    elif name in ("acc", "perplexity"):  # these read the whole answer: choice / document log-likelihoods
        from llmbench.types import Response, Sample

        sample = Sample(id="s", input="a b", references=("positive",), choices=labels, gold=1)
        answer = Response(logprobs=(-1.0, -2.0) if name == "acc" else (-3.0,), n_scored=2)
        stats = [metric.answer_stats(prediction="positive", sample=sample, response=answer)]
    else:
        stats = [metric.sample_stats(prediction="positive", references=("positive",)),
                 metric.sample_stats(prediction="negative", references=("positive",))]
    if name == "squad_v2":  # its NoAns values need an unanswerable question (reference "")
        stats.append(metric.sample_stats(prediction="", references=("",)))
    assert set(metric.score(stats)) == metric_value_names(name, {}, labels)


def test_the_table_lists_every_registered_metric() -> None:
    from llmbench.metrics.registry import EVALUATE_PREFIX, metric_names
    from llmbench.tasks import kinds

    assert sorted(METRIC_VALUES) == metric_names()
    assert kinds.EVALUATE_PREFIX == EVALUATE_PREFIX


def test_unknown_metric_names_the_task_file(tmp_path: Path) -> None:
    path = write(tmp_path, [{"id": "a", "text": "t", "label": "positive"}], "metrics: [acuracy]\n")
    with pytest.raises(TaskError) as err:
        load_task(str(path))
    assert str(err.value).startswith(
        f"task 'v' ({path}): metrics: unknown metric 'acuracy' — use one of acc, accuracy,")


def test_rouge_types_narrow_the_values() -> None:
    assert metric_value_names("rouge", {"rouge_types": ["rouge1"]}, None) == {"rouge1"}
    assert metric_value_names("evaluate:foo", {}, None) is None  # known only when it runs


def test_primary_metric_must_be_computed(tmp_path: Path) -> None:
    path = write(tmp_path, [{"id": "a", "text": "t", "label": "positive"}],
                 "metrics: [accuracy]\nprimary_metric: f1_macro\n")
    with pytest.raises(TaskError) as err:
        load_task(str(path))
    assert str(err.value) == (f"task 'v' ({path}): primary_metric 'f1_macro' is not computed by the task's "
                              "metrics (accuracy) — use one of accuracy or add the metric that computes it")


def test_primary_metric_of_an_evaluate_metric_is_not_guessed(tmp_path: Path) -> None:
    path = write(tmp_path, [{"id": "a", "text": "t", "label": "positive"}],
                 "metrics: ['evaluate:some/metric']\nprimary_metric: whatever\n")
    assert load_task(str(path)).primary_metric == "whatever"


def test_duplicate_ids_name_the_first_duplicates(tmp_path: Path) -> None:
    rows = [{"id": "same" if i < 40 else f"r{i}", "text": "t", "label": "positive"} for i in range(45)]
    rows += [{"id": "r41", "text": "t", "label": "positive"}]
    with pytest.raises(TaskError) as err:
        load_task(str(write(tmp_path, rows))).samples()
    assert "'same' in rows 0, 1, 2, 3, … (40 rows); 'r41' in rows 41, 45" in str(err.value)


@pytest.mark.parametrize(("value", "what"), [(None, "null"), ({"a": 1}, "a dict"), (["x"], "a list"),
                                             (True, "a bool")])
def test_non_text_input_is_refused(tmp_path: Path, value: object, what: str) -> None:
    rows = [{"id": "a", "text": "fine", "label": "positive"}, {"id": "b", "text": value, "label": "negative"}]
    with pytest.raises(TaskError) as err:
        load_task(str(write(tmp_path, rows))).samples()
    assert f"row 1 (id 'b'): fields.input = 'text' is {what}, not text" in str(err.value)


def test_numbers_are_text_and_a_row_template_takes_structures(tmp_path: Path) -> None:
    rows = [{"id": 1, "text": 42, "label": "positive"},
            {"id": 2, "text": {"title": "T", "body": "B"}, "label": "negative"}]
    with pytest.raises(TaskError):
        load_task(str(write(tmp_path, rows))).samples()
    path = write(tmp_path, rows, "prompt: {template: '{{ row.text.title if row.text is mapping else input }}'}\n")
    task = load_task(str(path))
    assert [s.input for s in task.samples()] == ["42", '{"title": "T", "body": "B"}']
    assert [r.prompt for r in task.build_requests(task.samples(), "generate")] == ["42", "T"]


@pytest.mark.parametrize("body", ["", "\n\n  \n"])
def test_empty_data_is_refused(tmp_path: Path, body: str) -> None:
    path = write(tmp_path, [])
    (tmp_path / "rows.jsonl").write_text(body)
    with pytest.raises(TaskError) as err:
        load_task(str(path)).samples()
    assert "split 'test' has no rows (file 'rows.jsonl')" in str(err.value)
