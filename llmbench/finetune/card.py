"""What a fine-tuned model folder says about itself: ``llmbench_finetune.json`` and ``README.md``.

The JSON facts are for machines (the leaderboard's "fine-tuned from", a suite deciding
whether to retrain); the model card renders the same facts for people and for the Hub
(its front matter names the base model when that is a Hub id).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmbench.finetune.base import base_display_name
from llmbench.finetune.config import FinetuneConfig
from llmbench.finetune.output import FACTS_FILE
from llmbench.paths import is_hub_id
from llmbench.tasks import Task

FACTS_SCHEMA = 1


def build_facts(config: FinetuneConfig, task: Task, labels: tuple[str, ...], *, steps: int, train_samples: int,
                validation_name: str, validation_samples: int, accuracy: float, train_seconds: float,
                train_cpu_seconds: float) -> dict[str, Any]:
    """Every setting and version behind the weights, so a number on the leaderboard can be
    traced to how the model was made (and a rerun compared with it)."""
    import torch
    import transformers

    from llmbench._version import __version__

    return {
        "llmbench_finetune": FACTS_SCHEMA,
        "task": task.name,
        "task_version": task.version,
        "task_fingerprint": task.fingerprint(),
        "task_ref": config.task,
        "base": config.base,
        "base_model": base_display_name(config.base),
        "labels": list(labels),
        "seed": config.seed,
        "epochs": config.epochs,
        "steps": steps,
        "train_split": task.train_split,
        "train_samples": train_samples,
        "max_train_samples": config.max_train_samples,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "max_length": config.max_length,
        "warmup_ratio": config.warmup_ratio,
        "weight_decay": config.weight_decay,
        "validation_split": validation_name,
        "validation_samples": validation_samples,
        "validation_accuracy": accuracy,
        "group_by_length": config.group_by_length,
        "train_seconds": round(train_seconds, 2),
        "train_cpu_seconds": round(train_cpu_seconds, 2),  # comparable across busy and idle machines
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "llmbench_version": __version__,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
    }


def model_card(facts: dict[str, Any]) -> str:
    """The ``README.md`` of the folder: Hub front matter, then the facts as a table."""
    base_id = facts["base_model"] if is_hub_id(facts["base_model"]) else None
    front = ["---", "library_name: transformers", "pipeline_tag: text-classification", "tags: [llmbench]"]
    if base_id:
        front.append(f"base_model: {base_id}")
    front.append("---")
    rows = [
        ("task", f"{facts['task']} (version {facts['task_version']})"),
        ("base model", facts["base_model"] + ("" if facts["base"] == facts["base_model"] else f" (`{facts['base']}`)")),
        ("labels", ", ".join(facts["labels"])),
        ("seed", facts["seed"]),
        ("epochs", f"{facts['epochs']:g}"),
        ("steps", facts["steps"]),
        ("train samples", f"{facts['train_samples']} (split {facts['train_split']})"),
        ("batch size / learning rate", f"{facts['batch_size']} / {facts['learning_rate']:g}"),
        ("max length", facts["max_length"]),
        ("validation accuracy", f"{facts['validation_accuracy']:.4f} on {facts['validation_samples']} samples "
                                f"({facts['validation_split']})"),
        ("training time", f"{facts['train_seconds']:.0f} s"),
        ("date", facts["date"]),
        ("llmbench", facts["llmbench_version"]),
    ]
    table = ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]
    body = [
        f"# {facts['task']} classifier fine-tuned from {facts['base_model']}",
        "",
        f"Fine-tuned with `llmbench finetune` on the train split of the llmbench task `{facts['task']}`. "
        "The model's `id2label` are the task's label names, so `llmbench run --model hf:<this folder>` "
        "scores it through the classify path.",
        "",
        *table,
        "",
        f"Machine-readable facts: `{FACTS_FILE}`.",
        "",
    ]
    return "\n".join([*front, "", *body])


def write_card(folder: Path, facts: dict[str, Any]) -> None:
    """Write the facts and the model card into ``folder`` (the staging folder, before the rename)."""
    (folder / FACTS_FILE).write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    (folder / "README.md").write_text(model_card(facts), encoding="utf-8")
