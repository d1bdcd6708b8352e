"""The rows a fine-tuning run trains and validates on, checked and tokenised.

Checks run before any model is loaded, so an unsuitable task fails in a second with a
one-line ``TaskError`` instead of after the weights load. Validation never uses the test
split: a task without a validation split gets a seeded hold-out of its train rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmbench.finetune.config import FinetuneConfig
from llmbench.tasks import Task, TaskError
from llmbench.tasks.base import select_indices
from llmbench.types import Sample

_HOLDOUT_MAX = 1000  # validation rows carved from train when a task has no validation split


def check_task(task: Task) -> tuple[str, ...]:
    """The task's labels, or a ``TaskError`` saying why it cannot train a classifier."""
    if task.kind != "classification" or not task.labels:
        raise TaskError(f"task '{task.name}' is a {task.kind} task — fine-tuning needs a classification task "
                        "with labels")
    if task.train_split is None:
        raise TaskError(f"task '{task.name}' has no train split — set dataset.train_split in the task file")
    if len(task.labels) < 2:
        raise TaskError(f"task '{task.name}' has one label — a classifier needs at least two")
    return tuple(task.labels)


def check_labels(task: Task, samples: Sequence[Sample], label2id: dict[str, int]) -> None:
    """YAML tasks already guarantee this; Python tasks might not, and a KeyError deep in
    tokenisation would say nothing about which row is wrong."""
    for s in samples:
        if not s.references or s.references[0] not in label2id:
            got = s.references[0] if s.references else None
            raise TaskError(f"task '{task.name}': sample {s.id} has label {got!r}, not one of {list(label2id)}")


def _seeded_subset(rows: list[Sample], n: int, seed: int) -> tuple[list[Sample], list[Sample]]:
    """(kept, rest), both in dataset order: ``kept`` is ``Task.samples``' own seeded subset
    (``select_indices``), so caps nest for a given seed and match ``--limit`` on the same rows."""
    keep = set(select_indices(len(rows), n, seed))
    return [r for i, r in enumerate(rows) if i in keep], [r for i, r in enumerate(rows) if i not in keep]


def splits(task: Task, config: FinetuneConfig) -> tuple[list[Sample], list[Sample], str]:
    """(train, validation, validation split name). A task without a validation split gets
    a seeded hold-out of its train rows, so an accuracy is always reported and never on test."""
    assert task.train_split is not None
    train = list(task.load_split(task.train_split))
    if task.validation_split:
        validation = list(task.load_split(task.validation_split))
        name = task.validation_split
    else:
        if len(train) < 2:
            raise TaskError(f"task '{task.name}': the train split has {len(train)} row(s) and there is no "
                            "validation split — add dataset.validation_split or more training rows")
        n_hold = min(_HOLDOUT_MAX, max(1, len(train) // 10))
        validation, train = _seeded_subset(train, n_hold, config.seed)
        name = f"{task.train_split} hold-out"
    if not train:
        raise TaskError(f"task '{task.name}': split '{task.train_split}' is empty — nothing to train on")
    if not validation:
        raise TaskError(f"task '{task.name}': split '{task.validation_split}' is empty — nothing to validate on")
    if config.max_train_samples is not None and config.max_train_samples < len(train):
        train, _ = _seeded_subset(train, config.max_train_samples, config.seed)
    if config.max_eval_samples is not None and config.max_eval_samples < len(validation):
        validation, _ = _seeded_subset(validation, config.max_eval_samples, config.seed)
    return train, validation, name


class Encoded:
    """A list of tokenised rows; a plain torch-style dataset (``datasets`` is not needed,
    and importing it would cost about a second)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.rows[index]


def encode(tokenizer: Any, samples: Sequence[Sample], label2id: dict[str, int], max_length: int) -> Encoded:
    """Tokenise ``samples`` (unpadded: the collator pads per batch) with their label ids."""
    enc = tokenizer([s.input for s in samples], truncation=True, max_length=max_length)
    keys = list(enc.keys())
    rows = [{**{k: enc[k][i] for k in keys}, "labels": label2id[s.references[0]]} for i, s in enumerate(samples)]
    return Encoded(rows)
