"""The catalog ``squad``/``squad_v2`` tasks read the official nested SQuAD JSON through
``--data`` (no ``format: squad`` in the task file), giving the same samples as the Hub's
flat rows; a plain JSON file of rows still loads as rows."""

from __future__ import annotations

import json
from pathlib import Path

from llmbench.tasks import load_task

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "catalog"


def _flat(name: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines()]


def official_v2_json(rows: list[dict]) -> dict:  # type: ignore[type-arg]
    """The Hub's flat v2 rows in the official ``dev-v2.0.json`` layout."""
    articles: dict[str, dict[str, list[dict]]] = {}  # type: ignore[type-arg]
    for row in rows:
        paragraphs = articles.setdefault(row["title"], {})
        answers = [{"text": t, "answer_start": s}
                   for t, s in zip(row["answers"]["text"], row["answers"]["answer_start"], strict=True)]
        paragraphs.setdefault(row["context"], []).append(
            {"id": row["id"], "question": row["question"], "answers": answers,
             "is_impossible": not answers})
    return {"version": "v2.0", "data": [
        {"title": title, "paragraphs": [{"context": c, "qas": qas} for c, qas in paras.items()]}
        for title, paras in articles.items()
    ]}


def _view(task_ref: str, data: Path) -> list[tuple[object, ...]]:
    return [(s.id, s.input, s.context, s.references) for s in load_task(task_ref, data=str(data)).samples()]


def test_squad_v2_official_json_through_data(tmp_path: Path) -> None:
    rows = _flat("squad_v2.jsonl")
    nested = tmp_path / "dev-v2.0.json"
    nested.write_text(json.dumps(official_v2_json(rows), indent=1), encoding="utf-8")
    got = _view("squad_v2", nested)
    assert got == _view("squad_v2", FIXTURES / "squad_v2.jsonl")
    assert [refs for *_, refs in got] == [("1895", "1895", "in 1895"), ("",), ("1911", "1911"), ("",)]


def test_squad_v1_official_json_through_data() -> None:
    assert _view("squad", FIXTURES / "squad_v1.1.json") == _view("squad", FIXTURES / "squad.jsonl")


def test_a_json_array_of_rows_is_still_rows(tmp_path: Path) -> None:
    rows = _flat("squad.jsonl")
    array = tmp_path / "rows.json"
    array.write_text(json.dumps(rows), encoding="utf-8")
    assert _view("squad", array) == _view("squad", FIXTURES / "squad.jsonl")
