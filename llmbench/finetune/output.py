"""The output folder of a fine-tuning run: what may be replaced, and replacing it atomically.

A suite skips fine-tuning when its output folder already holds a model, so a half-written
folder would be taken as finished. Training therefore writes into a hidden sibling folder
that is renamed onto ``out`` only when everything (weights, tokenizer, card, facts) is in it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from llmbench.finetune.config import FinetuneError

FACTS_FILE = "llmbench_finetune.json"


def read_facts(folder: Path) -> dict[str, Any] | None:
    """The ``llmbench_finetune.json`` facts of a fine-tuned model folder, or None."""
    try:
        facts = json.loads((Path(folder) / FACTS_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return facts if isinstance(facts, dict) else None


def is_replaceable(folder: Path) -> bool:
    """Only an empty folder or an earlier fine-tuning output may be replaced, so a typo
    in ``--out`` can never delete someone's data."""
    return folder.is_dir() and (not any(folder.iterdir()) or (folder / FACTS_FILE).is_file())


def check_out(out: Path) -> None:
    """Refuse, before any training, an ``out`` that holds something else."""
    if out.exists() and not is_replaceable(out):
        what = "a file" if not out.is_dir() else "a folder that is not an llmbench fine-tuning output"
        raise FinetuneError(f"--out '{out}' is {what} — choose a new or empty folder")


def stage_dir(out: Path) -> Path:
    """The hidden sibling folder a run writes into: on ``out``'s file system, so the final
    rename is atomic, and named by process so two runs never share one."""
    return out.parent / f".{out.name}.partial-{os.getpid()}"


def replace(stage: Path, out: Path) -> None:
    """Move the finished ``stage`` folder onto ``out``. A previous output is moved aside
    first and deleted only after the rename, so ``out`` is always either the old model or
    the complete new one."""
    out.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if out.exists():
        if not is_replaceable(out):  # checked before training too; something appeared meanwhile
            raise FinetuneError(f"--out '{out}' was filled by something else while training — choose a new folder")
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
    stage.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
