"""``llmbench.finetune.data``: fine-tuning's subsets are ``Task.samples``' subsets."""

from __future__ import annotations

from llmbench.finetune.data import _seeded_subset
from llmbench.tasks.base import select_indices


def test_finetune_subsets_are_the_rows_limit_picks() -> None:
    rows = [f"row{i}" for i in range(30)]
    kept, rest = _seeded_subset(rows, 6, seed=2)
    assert kept == [rows[i] for i in select_indices(30, 6, 2)]
    assert rest == [r for r in rows if r not in kept]  # the complement, in dataset order
