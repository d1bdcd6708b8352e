"""Human judgements to measure a judge against, and the agreement report.

A label file is JSON Lines, one item per line: ``id``, ``input``, ``reference`` (or
``references``), ``prediction`` and a human score under ``--human-field`` (default
``human``): an integer on the judge's scale. ``#`` lines are comments (the shipped file
says where its labels come from). For a stored run, only ``id`` and the human field are
read, and items pair with the run's samples by id.

Agreement is reported on the items where the judge gave a valid verdict (how many were
invalid is said beside it): Spearman's rho of the scores, and Cohen's kappa of the scores
read as labels, each with a bootstrap CI.
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


def read_labels(path: Path, *, field: str = "human", need_text: bool = True) -> list[Labelled]:
    """The labelled items of ``path`` (one-line errors for every malformed row)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise JudgeError(f"label file '{path}' does not exist — check the path") from None
    except (OSError, UnicodeDecodeError) as err:
        raise JudgeError(f"cannot read label file '{path}': {one_line(err, 160)}") from None
    out: list[Labelled] = []
    seen: set[str] = set()
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
        labelled = _row_item(row, where, field, need_text=need_text)
        if labelled.item.id in seen:
            raise JudgeError(f"{where}: id '{labelled.item.id}' appears twice — ids must be unique")
        seen.add(labelled.item.id)
        out.append(labelled)
    if not out:
        raise JudgeError(f"label file '{path}' holds no items")
    return out


@dataclass(frozen=True)
class AgreementReport:
    n_items: int
    n_invalid: int  # the judge's verdict was unparseable (or the judge failed)
    spearman: Agreement
    kappa: Agreement

    def to_json(self) -> dict[str, Any]:
        return {"n_items": self.n_items, "n_invalid": self.n_invalid,
                "spearman": self.spearman.__dict__, "cohen_kappa": self.kappa.__dict__}


def agreement(judge_scores: Sequence[int | None], human: Sequence[int], *, n_resamples: int = 1000,
              seed: int = 0) -> AgreementReport:
    """Agreement on the items the judge scored validly."""
    pairs = [(j, h) for j, h in zip(judge_scores, human, strict=True) if j is not None]
    js, hs = [j for j, _ in pairs], [h for _, h in pairs]
    return AgreementReport(len(human), len(human) - len(pairs),
                           spearman(js, hs, n_resamples=n_resamples, seed=seed),
                           cohen_kappa(js, hs, n_resamples=n_resamples, seed=seed))
