"""A classification prediction is a label the model named, or invalid: never a guess.

Why these cases: an empty log-probability list used to become ``labels[0]`` and a
classifier's generic ``LABEL_i`` names were matched to the task's labels by position, so a
broken answer or a model trained with another label order scored as a real prediction.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmbench.tasks import Task, TaskError, load_task
from llmbench.types import Response

ROWS = [{"id": f"s{i}", "text": f"text {i}", "label": i % 2} for i in range(4)]


def _task(tmp: Path, extra: str = "") -> Task:
    tmp.mkdir(exist_ok=True)
    (tmp / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    (tmp / "task.yaml").write_text(
        "name: cls\nkind: classification\ndataset: {path: rows.jsonl}\n"
        "fields: {id: id, input: text, target: label}\nlabels: [neg, pos]\n" + extra
    )
    return load_task(str(tmp / "task.yaml"))


def test_empty_scores_are_invalid_not_the_first_label(tmp_path: Path) -> None:
    task = _task(tmp_path)
    sample = task.samples()[0]
    assert sample.references == ("neg",)  # labels[0] would have scored this one right
    assert task.predict(sample, Response(logprobs=()), "loglikelihood") == ""
    assert task.predict(sample, Response(logprobs=None), "loglikelihood") == ""
    assert task.predict(sample, Response(label_scores=None), "classify") == ""
    assert task.predict(sample, Response(logprobs=(-2.0, -1.0)), "loglikelihood") == "pos"


def test_generic_label_names_need_an_explicit_map(tmp_path: Path) -> None:
    generic = Response(label_scores={"LABEL_0": -2.0, "LABEL_1": -0.1})
    plain = _task(tmp_path / "a")
    sample = plain.samples()[0]
    with pytest.raises(TaskError, match=r"LABEL_0.*label_map"):
        plain.predict(sample, generic, "classify")
    # The task maps them the other way round from their position: the map wins.
    mapped = _task(tmp_path / "b", "label_map: {LABEL_0: pos, LABEL_1: neg}\n")
    sample = mapped.samples()[0]
    assert mapped.predict(sample, generic, "classify") == "neg"
