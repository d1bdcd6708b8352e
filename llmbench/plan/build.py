"""What a plan is: models x tasks x options, built from command-line arguments or a suite file.

Both faces build the same ``RunPlan`` (``llmbench run -m ... -t ...`` and ``llmbench.evaluate``
through ``plan_from_args``; ``llmbench run --suite`` through ``plan_from_suite``), so the
executor in ``llmbench.plan.execute`` never knows which one asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmbench.executors import ExecutorName
from llmbench.runner import ModelEntry, RunConfig
from llmbench.types import RequestKind

if TYPE_CHECKING:
    from llmbench.finetune import FinetuneConfig
    from llmbench.tasks.spec import JudgeConfig


@dataclass(frozen=True)
class PlannedTask:
    ref: str
    limit: int | None = None
    data: str | None = None
    origin: str | None = None  # where a suite names it ("suite.yaml: tasks[2]"), for error lines
    detect: float | None = None  # the suite's declared detectable drop (checked as the task loads)
    perturb: tuple[str, ...] = ()  # --perturb / a suite's perturb: (tasks.perturbed variants)
    variant: str | None = None  # the perturbation (or repeat) label of a variant of this task
    repeats: int = 1  # --repeats K: K draws per sample with distinct decoding seeds (report.noise)
    # A suite's judge for this task (replaces the task file's ``judge:``); not part of the key.
    judge: JudgeConfig | None = field(default=None, compare=False)


@dataclass(frozen=True)
class RunPlan:
    models: list[tuple[ModelEntry, tuple[str, ...] | None]]
    tasks: list[PlannedTask]
    config: RunConfig
    cap_note: str | None = None
    finetune: list[FinetuneConfig] = field(default_factory=list)
    model_origins: tuple[str | None, ...] = ()  # per model, as PlannedTask.origin
    # Where the models answer (llmbench.executors): in this process, or on Ray replicas.
    executor: ExecutorName = "local"
    ray_address: str | None = None


def plan_from_args(models: Sequence[str], tasks: Sequence[str], *, limit: int | None, seed: int | None,
                   options: dict[str, Any], chat: bool | None, data: str | None,
                   tags: tuple[str, ...], resamples: int | None, scoring: RequestKind | None = None,
                   label: str | None = None, perturb: tuple[str, ...] = (), repeats: int = 1) -> RunPlan:
    """A grid of ``models`` x ``tasks`` sharing one set of options (``label`` names a single model)."""
    # Plain-text prompts by default, also for chat APIs (they get them as one user message);
    # chat=True renders few-shot turns as chat messages and applies local chat templates.
    entries: list[tuple[ModelEntry, tuple[str, ...] | None]] = [
        (ModelEntry(spec=spec, label=label, options=options, chat=bool(chat), scoring=scoring), None)
        for spec in models
    ]
    config = RunConfig(limit=limit, seed=seed or 0, tags=tags,
                       **({"n_resamples": resamples} if resamples is not None else {}))
    from llmbench.tasks.lmeval import expand_refs  # lm-eval:DIR -> one lm-eval:FILE per task (issue 27)

    planned = [PlannedTask(t, data=data, perturb=perturb, repeats=repeats) for t in expand_refs(tasks)]
    return RunPlan(models=entries, tasks=planned, config=config)


def _suite_task_refs(base: Path, ref: str) -> list[str]:
    """A suite's task reference with its file resolved against the suite's folder, as every
    other path in a suite is: a YAML task file, a Python task file (``FILE.py[:NAME]``) and an
    lm-eval task file or folder (``lm-eval:PATH``, a folder giving one reference per task file);
    a built-in or registered task name is left as it is."""
    from llmbench.suite import resolve_path
    from llmbench.tasks.lmeval import PREFIX, expand_refs
    from llmbench.tasks.python_file import split_ref

    if ref.startswith(PREFIX):
        return expand_refs([PREFIX + resolve_path(base, ref.removeprefix(PREFIX))])
    if ref.endswith((".yaml", ".yml")):
        return [resolve_path(base, ref)]
    py = split_ref(ref)
    if py is not None:
        file, name = py
        return [resolve_path(base, str(file)) + (f":{name}" if name else "")]
    return [ref]


def plan_from_suite(path: Path, *, limit: int | None, full: bool, seed: int | None,
                    tags: tuple[str, ...], resamples: int | None,
                    extra_options: dict[str, Any]) -> RunPlan:
    from llmbench.models.packaged import EVAL_MODELS
    from llmbench.suite import load_suite, resolve_path

    suite = load_suite(path)
    base = path.parent
    entries: list[tuple[ModelEntry, tuple[str, ...] | None]] = []
    for m in suite.models:
        spec = m.spec
        if spec.startswith("hf:") and spec[3:] not in EVAL_MODELS:  # a packaged model is no path
            spec = "hf:" + resolve_path(base, spec[3:])
        entry = ModelEntry(spec=spec, label=m.label or m.spec, chat=m.chat, scoring=m.scoring,
                           options={**m.options, **extra_options})
        entries.append((entry, m.tasks))
    cap = None if full else (limit or suite.limit)
    tasks = [PlannedTask(ref,
                         limit=None if full else (limit or t.limit or suite.limit),
                         data=resolve_path(base, t.data) if t.data else None,
                         origin=f"{path}: tasks[{i}] '{t.task}'",
                         detect=t.detect if t.detect is not None else suite.detect,
                         perturb=(*suite.perturb, *t.perturb), repeats=t.repeats or suite.repeats,
                         judge=t.judge or suite.judge)
             for i, t in enumerate(suite.tasks) for ref in _suite_task_refs(base, t.task)]
    note = None
    if cap is not None or any(t.limit for t in suite.tasks if not full):
        note = (f"suite '{suite.name}': samples capped per task (default cap {cap}); "
                "add --full for the complete sets")
    config = RunConfig(limit=None, seed=seed if seed is not None else suite.seed,
                       tags=tuple(suite.tags) + tags,
                       n_resamples=resamples if resamples is not None else suite.n_resamples)
    steps = [s.model_copy(update={"out": Path(resolve_path(base, str(s.out)))}) for s in suite.finetune]
    return RunPlan(models=entries, tasks=tasks, config=config, cap_note=note, finetune=steps,
                   executor=suite.executor, ray_address=suite.ray_address,
                   model_origins=tuple(f"{path}: models[{i}] '{m.spec}'" for i, m in enumerate(suite.models)))
