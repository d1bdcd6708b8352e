"""``finetune()``: train an encoder (e.g. MiniLM) into a sequence classifier on a task's train split.

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

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmbench.errors import require_extra
from llmbench.finetune.base import load_base, resolve_base
from llmbench.finetune.card import build_facts, write_card
from llmbench.finetune.config import FinetuneConfig, FinetuneResult
from llmbench.finetune.data import Encoded, check_labels, check_task, encode, splits
from llmbench.finetune.output import check_out, replace, stage_dir
from llmbench.tasks import load_task

if TYPE_CHECKING:
    from rich.console import Console


def finetune(config: FinetuneConfig, console: Console | None = None) -> FinetuneResult:
    """Train ``config.base`` as a classifier on ``config.task`` and save it to ``config.out``.

    Raises ``TaskError`` for an unsuitable task and ``ModelError``/``FinetuneError`` for a
    base that cannot be loaded or an output folder that holds something else.
    """
    require_extra("hf", "fine-tuning", "torch", "transformers", "accelerate")
    started = time.perf_counter()
    say = _printer(console)
    config = config.model_copy(update={"base": resolve_base(config.base)})
    task = load_task(config.task)
    labels = check_task(task)
    out = config.out.expanduser()
    check_out(out)
    train, validation, validation_name = splits(task, config)
    label2id = {name: i for i, name in enumerate(labels)}
    check_labels(task, train + validation, label2id)

    import torch
    from transformers import set_seed

    stage = stage_dir(out)
    shutil.rmtree(stage, ignore_errors=True)
    try:
        with _quiet_transformers(), _deterministic(torch), tempfile.TemporaryDirectory(prefix="llmbench-ft-") as tmp:
            say(f"loading base model {config.base}")
            set_seed(config.seed)  # before loading: the seed decides the new head's initialisation
            tokenizer, model = load_base(config.base, labels)
            train_ds = encode(tokenizer, train, label2id, config.max_length)
            val_ds = encode(tokenizer, validation, label2id, config.max_length)
            trainer = _trainer(config, model, tokenizer, train_ds, Path(tmp), say)
            say(f"training on {len(train)} {task.name} samples ({config.epochs:g} epoch(s), seed {config.seed})")
            train_started, train_cpu = time.perf_counter(), time.process_time()
            trainer.train()
            train_seconds, train_cpu = time.perf_counter() - train_started, time.process_time() - train_cpu
            steps = int(trainer.state.global_step)
            accuracy = _accuracy(trainer, val_ds)
            say(f"validation accuracy {accuracy:.4f} on {len(validation)} samples ({validation_name})")
            facts = build_facts(config, task, labels, steps=steps, train_samples=len(train),
                                validation_name=validation_name, validation_samples=len(validation),
                                accuracy=accuracy, train_seconds=train_seconds, train_cpu_seconds=train_cpu)
            stage.mkdir(parents=True)
            model.save_pretrained(stage)
            tokenizer.save_pretrained(stage)
        facts["seconds"] = round(time.perf_counter() - started, 2)
        write_card(stage, facts)
        replace(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return FinetuneResult(out=out, validation_accuracy=accuracy, steps=steps, seconds=time.perf_counter() - started,
                          train_samples=len(train), validation_samples=len(validation), facts=facts)


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


def _trainer(config: FinetuneConfig, model: Any, tokenizer: Any, train_ds: Encoded, scratch: Path,
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


def _accuracy(trainer: Any, val_ds: Encoded) -> float:
    """Accuracy of argmax predictions, computed with sklearn on what the Trainer predicts."""
    from sklearn.metrics import accuracy_score

    output = trainer.predict(val_ds)
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    return float(accuracy_score(output.label_ids, logits.argmax(axis=-1)))


def _printer(console: Console | None) -> Any:
    def say(message: str) -> None:
        if console is not None:
            console.print(message, highlight=False, markup=False)

    return say
