"""What a task refuses when it loads (the corpus in tests/core/test_bad_input.py drives the same
checks through the CLI). The value names behind the ``primary_metric`` check are each metric's
own declaration, compared with what it computes in tests/metrics/test_metrics_declarations.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmbench.tasks import TaskError, load_task
from llmbench.tasks.kinds import metric_value_names

TASK = ("name: v\nkind: classification\ndataset: {path: rows.jsonl}\n"
        "fields: {id: id, input: text, target: label}\nlabels: [negative, positive]\n")


def write(tmp: Path, rows: list[object], extra: str = "") -> Path:
    (tmp / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp / "task.yaml").write_text(TASK + extra)
    return tmp / "task.yaml"


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
