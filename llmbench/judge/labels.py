"""Human judgements to measure a judge against, and the agreement report.

A label file is JSON Lines, one item per line: ``id``, ``input``, ``reference`` (or
``references``), ``prediction`` and a human score under ``--human-field`` (default
``human``): an integer on the judge's scale. A pairwise file has ``answer_a`` and ``answer_b``
instead of ``prediction``, and the person's preference ``A``, ``B`` or ``tie``. ``#`` lines
are comments (the shipped file says where its labels come from). For a stored run, only ``id`` and the human field are
read, and items pair with the run's samples by id.

Agreement is reported on the items where the judge gave a valid verdict (how many were
invalid is said beside it): Spearman's rho of the scores, and Cohen's kappa of the scores
read as labels, each with a bootstrap CI. Pairwise: Cohen's kappa of the judge's final
preference (both orders; a flip is a tie) against the person's, and Spearman's rho of the
same read as an order (A < tie < B).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmbench.errors import one_line
from llmbench.judge.agreement import Agreement, cohen_kappa, spearman
from llmbench.judge.prompts import JudgeError
from llmbench.judge.rubric import RubricItem
from llmbench.judge.verdicts import Preference

#: Label sets that ship with llmbench, by name (``llmbench judge agreement stdlib_docstrings``).
BUILTIN_LABELS = {"stdlib_docstrings": "judge_labels_stdlib_docstrings.jsonl"}


def resolve_labels(name_or_path: str) -> Path:
    """A label file path, or the packaged file of a built-in label set named like its task."""
    path = Path(name_or_path)
    if not path.exists() and name_or_path in BUILTIN_LABELS:
        from importlib.resources import files

        return Path(str(files("llmbench.data") / BUILTIN_LABELS[name_or_path]))
    return path


@dataclass(frozen=True)
class Labelled:
    item: RubricItem
    human: int


def _row_item(row: dict[str, Any], where: str, field: str, *, need_text: bool) -> Labelled:
    if not isinstance(row.get("id"), str | int) or isinstance(row.get("id"), bool):
        raise JudgeError(f"{where}: no 'id' (a string) — every item needs one")
    human = row.get(field)
    if not isinstance(human, int) or isinstance(human, bool):
        raise JudgeError(f"{where}: '{field}' is {human!r}, not an integer score — fix the row or --human-field")
    refs = row.get("references", [row["reference"]] if "reference" in row else [])
    if need_text and (not isinstance(row.get("prediction"), str) or not isinstance(row.get("input"), str)
                      or not isinstance(refs, list) or not all(isinstance(r, str) for r in refs)):
        raise JudgeError(f"{where}: needs 'input', 'prediction' and 'reference' as text")
    item = RubricItem(str(row["id"]), str(row.get("input", "")), tuple(refs) if isinstance(refs, list) else (),
                      str(row.get("prediction", "")))
    return Labelled(item, human)


@dataclass(frozen=True)
class PairLabelled:
    """A pairwise item: two answers to one input, and which one a person preferred."""

    id: str
    input: str
    references: tuple[str, ...]
    answer_a: str
    answer_b: str
    human: Preference


def _pair_item(row: dict[str, Any], where: str, field: str) -> PairLabelled:
    human = row.get(field)
    if human not in ("A", "B", "tie"):
        raise JudgeError(f"{where}: '{field}' is {human!r}, not A, B or tie — fix the row or --human-field")
    texts = [row.get(k) for k in ("id", "input", "answer_a", "answer_b")]
    if not all(isinstance(t, str) for t in texts):
        raise JudgeError(f"{where}: a pairwise item needs 'id', 'input', 'answer_a' and 'answer_b' as text")
    refs = row.get("references", [row["reference"]] if "reference" in row else [])
    return PairLabelled(str(row["id"]), str(row["input"]), tuple(str(r) for r in refs), str(row["answer_a"]),
                        str(row["answer_b"]), human)


def is_pairwise(path: Path) -> bool:
    """Whether a label file holds pairwise items (its first item has ``answer_a``)."""
    rows = _rows(path)
    return bool(rows) and "answer_a" in rows[0][1]


def read_pair_labels(path: Path, *, field: str = "human") -> list[PairLabelled]:
    items = [_pair_item(row, where, field) for where, row in _rows(path)]
    _check_unique(path, [it.id for it in items])
    return items


def _check_unique(path: Path, ids: Sequence[str]) -> None:
    if not ids:
        raise JudgeError(f"label file '{path}' holds no items")
    seen: set[str] = set()
    for item_id in ids:
        if item_id in seen:
            raise JudgeError(f"label file '{path}': id '{item_id}' appears twice — ids must be unique")
        seen.add(item_id)


def _rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(where, object) for every data line of a JSONL label file (``#`` lines are comments)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise JudgeError(f"label file '{path}' does not exist — check the path") from None
    except (OSError, UnicodeDecodeError) as err:
        raise JudgeError(f"cannot read label file '{path}': {one_line(err, 160)}") from None
    out: list[tuple[str, dict[str, Any]]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"label file '{path}' line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise JudgeError(f"{where} is not JSON ({err.msg}) — one JSON object per line") from None
        if not isinstance(row, dict):
            raise JudgeError(f"{where} is not a JSON object")
        out.append((where, row))
    return out


def read_labels(path: Path, *, field: str = "human", need_text: bool = True) -> list[Labelled]:
    """The labelled items of ``path`` (one-line errors for every malformed row)."""
    items = [_row_item(row, where, field, need_text=need_text) for where, row in _rows(path)]
    _check_unique(path, [it.item.id for it in items])
    return items


@dataclass(frozen=True)
class AgreementReport:
    n_items: int
    n_invalid: int  # the judge's verdict was unparseable (or the judge failed)
    spearman: Agreement
    kappa: Agreement
    spearman_of: str = "score"  # or "expected score" (probability-weighted, by log-likelihood)

    def to_json(self) -> dict[str, Any]:
        return {"n_items": self.n_items, "n_invalid": self.n_invalid, "spearman_of": self.spearman_of,
                "spearman": self.spearman.__dict__, "cohen_kappa": self.kappa.__dict__}


def agreement(judge_scores: Sequence[int | None], human: Sequence[int], *, n_resamples: int = 1000,
              seed: int = 0, expected: Sequence[float | None] | None = None) -> AgreementReport:
    """Agreement on the items the judge scored validly. With ``expected`` (verdicts by
    log-likelihood), Spearman ranks the probability-weighted scores; kappa always compares
    the verdicts themselves."""
    rank_by = expected if expected is not None else judge_scores
    rows = [(j, h, e) for j, h, e in zip(judge_scores, human, rank_by, strict=True) if j is not None]
    js, hs, es = [j for j, _, _ in rows], [h for _, h, _ in rows], [float(e or 0) for _, _, e in rows]
    return AgreementReport(len(human), len(human) - len(rows),
                           spearman(es, hs, n_resamples=n_resamples, seed=seed),
                           cohen_kappa(js, hs, n_resamples=n_resamples, seed=seed),
                           "expected score" if expected is not None else "score")
