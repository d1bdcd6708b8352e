"""A task run with one perturbation of its inputs (``tasks.perturb`` holds the transforms).

Apart from ``tasks.perturb`` so the transforms stay pure (the task-file schema validates
perturbation names with them) and only this module depends on ``Task``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from llmbench.tasks.base import Task
from llmbench.tasks.perturb import SEP, Perturbation, PerturbationError, parse
from llmbench.types import Response, Sample


class VariantTask(Task):
    """A variant of a clean task, named ``<clean name>~<label>``: everything (data, prompting,
    few-shot examples, answer parsing, metrics) is delegated to the clean task; a subclass
    overrides the one thing it changes and adds its identity to the fingerprint."""

    def __init__(self, base: Task, label: str) -> None:
        self.base = base
        self.name = f"{base.name}{SEP}{label}"
        for attr in ("kind", "version", "description", "labels", "scoring", "generation", "metrics",
                     "primary_metric", "eval_split", "train_split", "validation_split", "source", "slice_by"):
            setattr(self, attr, getattr(base, attr))

    def load_split(self, split: str) -> list[Sample]:
        return self.base.load_split(split)  # training / few-shot rows stay clean

    def _split_size(self, split: str) -> int:
        return self.base._split_size(split)

    def _samples_at(self, split: str, indices: Sequence[int]) -> list[Sample]:
        return self.base._samples_at(split, indices)

    def build_requests(self, samples: Sequence[Sample], mode: Any, *, chat: bool = False) -> list[Any]:
        return self.base.build_requests(samples, mode, chat=chat)

    def predict(self, sample: Sample, response: Response, mode: Any) -> str:
        return self.base.predict(sample, response, mode)

    def label_probabilities(self, sample: Sample, response: Response, mode: Any) -> dict[str, float] | None:
        return self.base.label_probabilities(sample, response, mode)

    def gives_label_probabilities(self, mode: Any) -> bool:
        return self.base.gives_label_probabilities(mode)

    def slice_of(self, sample: Sample) -> str | None:
        return self.base.slice_of(sample)

    def choose_mode(self, supported: frozenset[Any]) -> Any:
        return self.base.choose_mode(supported)

    def _variant_fingerprint(self, key: str, identity: dict[str, Any]) -> dict[str, Any]:
        return {**self.base.config_fingerprint(), "name": self.name,
                key: {**identity, "clean_task": self.base.name, "clean_fingerprint": self.base.fingerprint()}}


class PerturbedTask(VariantTask):
    """A task whose evaluated samples' inputs go through one perturbation; everything else
    (prompting, few-shot examples, answer parsing, metrics) is the clean task's own.

    Its name is ``<clean name>~<perturbation label>`` and its fingerprint the clean one plus the
    perturbation's identity, so its runs are their own leaderboard column and pair with the
    clean task's runs by sample id (``report.robustness``)."""

    def __init__(self, base: Task, perturbation: Perturbation) -> None:
        super().__init__(base, perturbation.label)
        self.perturbation = perturbation

    def _samples_at(self, split: str, indices: Sequence[int]) -> list[Sample]:
        return [self.perturbation.sample(s) for s in self.base._samples_at(split, indices)]

    def config_fingerprint(self) -> dict[str, Any]:
        return self._variant_fingerprint("perturbation", self.perturbation.identity())


def declared(task: Task) -> tuple[Any, ...]:
    """The ``perturbations:`` a task file lists (YAML tasks; none for Python tasks)."""
    spec = getattr(task, "spec", None)
    return tuple(getattr(spec, "perturbations", ()) or ())


def variants(task: Task, extra: Sequence[str | Mapping[str, Any]] = (), *, seed: int = 0) -> Iterator[PerturbedTask]:
    """The perturbed versions of ``task``: those its file declares, then ``extra`` (``--perturb``,
    a suite's ``perturb:``), each label once."""
    seen: set[str] = set()
    if task.kind == "language_modeling" and (declared(task) or extra):
        raise PerturbationError(f"task '{task.name}': a language_modeling task scores its input text itself, so "
                                "perturbing it is not label-preserving — drop --perturb/perturbations for it")
    for spec in (*declared(task), *extra):
        p = parse(spec if isinstance(spec, (str, Mapping)) else spec.model_dump(), seed=seed)
        if p.label not in seen:
            seen.add(p.label)
            yield PerturbedTask(task, p)


class RepeatTask(VariantTask):
    """Repeat ``index`` (1, 2, ...) of a task for a model that samples: the same samples and
    prompts, every request's decoding seed offset by ``index`` (so each repeat is its own cache
    entry and its own draw). Named ``<clean name>~repeat<index>``; its fingerprint is the clean
    one plus the repeat index, which ``report.noise`` reads to pool the repeats."""

    def __init__(self, base: Task, index: int) -> None:
        super().__init__(base, f"repeat{index}")
        self.index = index

    def build_requests(self, samples: Sequence[Sample], mode: Any, *, chat: bool = False) -> list[Any]:
        out = []
        for r in self.base.build_requests(samples, mode, chat=chat):
            seed = r.config.seed + self.index
            out.append(r.model_copy(update={"config": r.config.model_copy(update={"seed": seed})}))
        return out

    def config_fingerprint(self) -> dict[str, Any]:
        return self._variant_fingerprint("repeat", {"index": self.index})


def repeats(task: Task, k: int) -> Iterator[RepeatTask]:
    """Repeats 1 .. k-1 of ``task`` (repeat 0 is the task itself)."""
    for index in range(1, k):
        yield RepeatTask(task, index)
