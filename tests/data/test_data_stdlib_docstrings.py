"""stdlib_docstrings: summary line vs. body of standard-library docstrings."""

from __future__ import annotations

import sys

import pytest

from llmbench.data import load_builtin, stdlib_docstrings
from llmbench.data.stdlib_docstrings import keep, prose_of, split_docstring

VERSION = "{}.{}".format(*sys.version_info[:2])


@pytest.fixture(scope="module")
def splits() -> dict[str, list[dict]]:
    return {split: load_builtin("stdlib_docstrings", split) for split in ("train", "test")}


def test_enough_rows_and_a_small_train_split(splits: dict[str, list[dict]]) -> None:
    total = len(splits["train"]) + len(splits["test"])
    assert total >= 300  # 389 on Python 3.11
    assert 0.1 < len(splits["train"]) / total < 0.3


def test_rows_record_the_python_version(splits: dict[str, list[dict]]) -> None:
    for rows in splits.values():
        for row in rows:
            assert set(row) == {"id", "python", "name", "document", "summary"}
            assert row["python"] == VERSION
            assert row["id"] == stdlib_docstrings.sample_id(row["name"], row["summary"], row["document"])
            assert row["id"].startswith(row["name"] + "#") and VERSION not in row["id"]


def test_ids_depend_on_neither_the_python_version_nor_row_order(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A Python upgrade used to change every id (``py3.11:...``), so two nights on two
    interpreters shared no sample and the gate could test nothing."""
    before = {row["name"]: row["id"] for row in stdlib_docstrings._all_rows()}
    assert len(set(before.values())) == len(before)
    assert not any(i.startswith("py") and ":" in i for i in before.values())
    monkeypatch.setattr(stdlib_docstrings, "python_version", lambda: "3.99")
    monkeypatch.setattr(stdlib_docstrings, "MODULES", tuple(reversed(stdlib_docstrings.MODULES)))
    stdlib_docstrings._all_rows.cache_clear()
    try:
        after = {row["name"]: row["id"] for row in stdlib_docstrings._all_rows()}
        assert {row["python"] for row in stdlib_docstrings._all_rows()} == {"3.99"}
    finally:
        stdlib_docstrings._all_rows.cache_clear()
    shared = before.keys() & after.keys()
    assert len(shared) > 0.9 * len(before)  # reversing the module order may pick other duplicates' names
    assert all(before[name] == after[name] for name in shared)
    # a docstring whose text changed is a new sample, never paired with its old text
    assert stdlib_docstrings.sample_id("m.f", "Do a thing.", "Body.") != stdlib_docstrings.sample_id(
        "m.f", "Do a thing.", "Body, rewritten.")


def test_rows_follow_the_documented_filter(splits: dict[str, list[dict]]) -> None:
    summaries: set[str] = set()
    documents: set[str] = set()
    for rows in splits.values():
        assert [row["name"] for row in rows] == sorted(row["name"] for row in rows)
        for row in rows:
            assert 4 <= len(row["summary"].split()) <= 30
            assert "\n" not in row["summary"] and not row["summary"].endswith(":")
            assert "->" not in row["summary"]
            assert len(prose_of(row["document"]).split()) >= 40
            assert row["summary"] not in summaries and row["document"] not in documents
            summaries.add(row["summary"])
            documents.add(row["document"])


def test_known_row(splits: dict[str, list[dict]]) -> None:
    rows = {row["name"]: row for rows in splits.values() for row in rows}
    row = rows["textwrap.dedent"]
    assert row["summary"] == "Remove any common leading whitespace from every line in `text`."
    assert row["document"].startswith("This can be used to make triple-quoted strings")


def test_deterministic(splits: dict[str, list[dict]]) -> None:
    stdlib_docstrings._all_rows.cache_clear()
    assert {s: stdlib_docstrings.load(s) for s in splits} == splits


def test_split_docstring_needs_a_one_line_first_paragraph() -> None:
    assert split_docstring("Do a thing.\n\n    More about it.\n") == ("Do a thing.", "More about it.")
    assert split_docstring("Do a thing\n    that wraps.\n\n    More.") is None
    assert split_docstring("Only a summary.") is None


BODY = " ".join(["This sentence has exactly eight words in it."] * 6)


def test_keep_rules() -> None:
    assert keep("Return the frobnicated value of x.", BODY)
    assert not keep("Frobnicate.", BODY)  # summary too short
    assert not keep("frob(x) -> int", BODY)  # a signature
    assert not keep("stat_result: result of stat calls.", BODY)  # a label
    assert not keep("Return the value for these cases:", BODY)  # an introduction
    assert not keep("Return the frobnicated value of x.", "Too short. Body.")
    doctest_only = ">>> frob(1)\n2\n>>> frob(2)\n" + "\n".join(["3"] * 60)
    assert not keep("Return the frobnicated value of x.", doctest_only)


def test_methods_patched_in_by_other_libraries_are_not_rows(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """transformers adds ``logging.Logger.info_once``; the rows must not depend on whether it
    (or anything else) was imported first, or a seeded sub-sample would shift."""
    import logging

    from llmbench.data import stdlib_docstrings

    def warn_politely(self, message):  # type: ignore[no-untyped-def]
        """Log a warning message once per process, however many times it is called.

        The first call logs the message at the warning level, exactly as the warning method
        would. Later calls with the same message do nothing at all, so a loop that runs a
        million times leaves one line behind. This keeps long training loops from flooding
        the logs while still telling the reader that something deserves attention.
        """

    import inspect

    assert keep(*split_docstring(inspect.cleandoc(warn_politely.__doc__ or "")))  # would be a row

    before = [row["id"] for row in stdlib_docstrings._all_rows()]
    monkeypatch.setattr(logging.Logger, "warn_politely", warn_politely, raising=False)
    stdlib_docstrings._all_rows.cache_clear()
    try:
        after = [row["id"] for row in stdlib_docstrings._all_rows()]
    finally:
        stdlib_docstrings._all_rows.cache_clear()
    assert after == before and not any(i.endswith("Logger.warn_politely") for i in after)
