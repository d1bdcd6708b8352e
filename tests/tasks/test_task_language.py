"""A task's ``language:`` reaches BLEU (and only BLEU) as a stored metric argument, so the
tokenizer choice is part of the run record and a rebuilt metric makes the same choice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmbench.metrics import get_metric
from llmbench.tasks import Task, TaskError, load_task

TASK = """
name: zh_mt
kind: translation
dataset: {{path: rows.jsonl}}
fields: {{input: src, target: tgt}}
metrics: {metrics}
{language}
"""


PLAIN = "[bleu, chrf]"
CHAR = "[{name: bleu, args: {tokenize: char}}, chrf]"  # one metric, one configuration per task


def _task(tmp: Path, language: str, metrics: str = PLAIN) -> Task:
    (tmp / "rows.jsonl").write_text(json.dumps({"src": "The cat.", "tgt": "猫。"}) + "\n")
    (tmp / "task.yaml").write_text(TASK.format(language=language, metrics=metrics))
    return load_task(str(tmp / "task.yaml"))


def test_language_becomes_bleus_argument(tmp_path: Path) -> None:
    refs = _task(tmp_path, "language: zh").metrics + _task(tmp_path, "language: zh", CHAR).metrics
    assert [(m.name, m.args) for m in refs] == [
        ("bleu", {"language": "zh"}), ("chrf", {}), ("bleu", {"language": "zh", "tokenize": "char"}), ("chrf", {}),
    ]
    signatures = [get_metric(m.name, **m.args).signature([{"nrefs": 1}]) for m in refs]
    assert "tok:zh" in signatures[0] and "tok:char" in signatures[2]


def test_no_language_no_argument_and_bad_codes_refused(tmp_path: Path) -> None:
    task = _task(tmp_path, "")
    assert [m.args for m in task.metrics] == [{}, {}]
    assert [m.args for m in _task(tmp_path, "", CHAR).metrics] == [{"tokenize": "char"}, {}]
    with pytest.raises(TaskError, match="language"):
        _task(tmp_path, "language: Chinese")
