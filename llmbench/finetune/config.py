"""What a fine-tuning run is asked to do (``FinetuneConfig``) and what it reports back.

Kept apart from the training code so that a suite file can validate its fine-tuning steps
(``llmbench.suite``) without importing torch or transformers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import field_validator

from llmbench.models.base import ModelError
from llmbench.types import Frozen


class FinetuneError(ModelError):
    """A user mistake in a fine-tuning request (bad setting, output folder in use).

    A ``ModelError`` so that the CLI prints it as one line and exits with code 2.
    """


class FinetuneConfig(Frozen):
    """What to fine-tune on what; every field that changes the weights is recorded.

    ``max_train_samples`` keeps a seeded subset of the train split (a prefix of one
    seeded permutation, so a smaller cap is a subset of a larger one for one seed).
    ``learning_rate`` 2e-4 suits small encoders such as MiniLM-L6 (on rotten_tomatoes, one
    epoch: 0.831 validation accuracy against 0.821 at BERT's usual 5e-5, and 0.783 against
    0.719 with 2,000 samples; 4e-4 is too high). ``warmup_ratio`` and ``weight_decay`` are
    the usual BERT fine-tuning defaults.
    ``group_by_length`` batches texts of similar length (in seeded random mega-batches),
    which halves the padding of short review snippets and with it the CPU time (a full
    rotten_tomatoes epoch on 2 cores: 123 s instead of 231 s, at the same accuracy).
    """

    task: str
    base: str
    out: Path
    seed: int = 0
    epochs: float = 1.0
    max_train_samples: int | None = None
    batch_size: int = 32
    learning_rate: float = 2e-4
    max_length: int = 128
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    eval_batch_size: int = 64
    max_eval_samples: int | None = None
    group_by_length: bool = True

    # Validators raise FinetuneError (not ValueError) so a bad CLI value is one line, not
    # a pydantic ValidationError traceback; pydantic lets non-ValueError exceptions through.
    @field_validator("epochs", "learning_rate")
    @classmethod
    def _positive(cls, value: float, info: Any) -> float:
        if not value > 0:
            raise FinetuneError(f"{info.field_name.replace('_', '-')} must be > 0 (got {value})")
        return value

    @field_validator("batch_size", "max_length", "eval_batch_size", "max_train_samples", "max_eval_samples")
    @classmethod
    def _at_least_one(cls, value: int | None, info: Any) -> int | None:
        if value is not None and value < 1:
            raise FinetuneError(f"{info.field_name.replace('_', '-')} must be at least 1 (got {value})")
        return value

    @field_validator("warmup_ratio")
    @classmethod
    def _ratio(cls, value: float) -> float:
        if not 0 <= value < 1:
            raise FinetuneError(f"warmup-ratio must be in [0, 1) (got {value})")
        return value

    @field_validator("weight_decay")
    @classmethod
    def _non_negative(cls, value: float) -> float:
        if value < 0:
            raise FinetuneError(f"weight-decay must be >= 0 (got {value})")
        return value


@dataclass(frozen=True)
class FinetuneResult:
    """What the CLI prints and a suite logs; the full facts are in ``out/llmbench_finetune.json``."""

    out: Path
    validation_accuracy: float
    steps: int
    seconds: float
    train_samples: int
    validation_samples: int
    facts: dict[str, Any]
