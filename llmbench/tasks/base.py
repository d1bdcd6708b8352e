"""The ``Task`` base class: samples in, requests out, predictions back.

A task never imports a model or a metric: it turns dataset rows into ``Sample``s,
``Sample``s into ``Request``s for one scoring mode, and a ``Response`` back into a
prediction string that a metric can score. YAML tasks are one subclass; anything
richer subclasses ``Task`` in Python and registers with ``@register_task``.
"""

from __future__ import annotations

import hashlib
import json
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from llmbench import registry
from llmbench.errors import UserError
from llmbench.tasks.spec import JudgeConfig, MetricRef, TaskKind
from llmbench.types import GenerationConfig, Request, RequestKind, Response, Sample


def select_indices(n: int, limit: int | None, seed: int) -> Sequence[int]:
    """Row indices of a seeded sub-sample of ``limit`` out of ``n`` rows, in dataset order
    (all rows when ``limit`` is None or not smaller than ``n``)."""
    if limit is None or limit >= n:
        return range(n)
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return sorted(order[:limit])


class TaskError(UserError):
    """A user mistake in a task (file, data, fields). The message is one line."""


class Task(ABC):
    name: str
    kind: TaskKind
    version: int = 1
    description: str = ""
    labels: tuple[str, ...] | None = None
    scoring: tuple[RequestKind, ...] = ("generate",)
    generation: GenerationConfig = GenerationConfig()
    metrics: tuple[MetricRef, ...] = ()
    primary_metric: str = ""
    eval_split: str = "test"
    train_split: str | None = None
    validation_split: str | None = None
    source: str = "python"
    #: The row field whose values split the samples into slices (``slice_by:`` in a task file);
    #: every metric is then also reported per slice. ``slice_of`` reads a sample's value.
    slice_by: str | None = None
    #: A judge of the answers (``judge:`` in a task file); the plan runs it after the run.
    judge: JudgeConfig | None = None

    @abstractmethod
    def load_split(self, split: str) -> list[Sample]:
        """All samples of ``split``, in dataset order."""

    @abstractmethod
    def build_requests(
        self, samples: Sequence[Sample], mode: RequestKind, *, chat: bool = False
    ) -> list[Request]:
        """One request per sample for the scoring ``mode``, each carrying the rendered prompt
        and the raw ``input`` (an adapter whose model reads the raw text, such as a
        classifier head, takes that instead; see ``ModelAdapter.adapt_request``)."""

    @abstractmethod
    def predict(self, sample: Sample, response: Response, mode: RequestKind) -> str:
        """The prediction a metric scores: a label name or the generated text."""

    def label_probabilities(self, sample: Sample, response: Response,
                            mode: RequestKind) -> dict[str, float] | None:
        """P(label) over the task's labels for calibration metrics, or None when the scoring
        mode gives no probabilities (generation). Default: none."""
        return None

    def gives_label_probabilities(self, mode: RequestKind) -> bool:
        """Whether ``label_probabilities`` answers in ``mode`` (decided before any request, so
        a run can say up front that calibration is not computed)."""
        return False

    def slice_of(self, sample: Sample) -> str | None:
        """The sample's slice (``sample.extra["slice"]``, set when samples are built) when the
        task slices by a field, else None."""
        if self.slice_by is None:
            return None
        value = sample.extra.get("slice")
        return None if value is None else str(value)

    def config_fingerprint(self) -> dict[str, Any]:
        """What defines this task's requests; stored with runs and used to refuse
        silent comparisons of runs made with different prompts or versions."""
        return {"name": self.name, "version": self.version, "kind": self.kind}

    def fingerprint(self) -> str:
        blob = json.dumps(self.config_fingerprint(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def samples(self, *, limit: int | None = None, seed: int = 0, split: str | None = None) -> list[Sample]:
        """The evaluation samples, optionally a seeded sub-sample of ``limit`` rows.

        The sub-sample is a prefix of one seeded permutation, so ``--limit 100`` is a
        subset of ``--limit 200``; the kept rows stay in dataset order. Subclasses provide
        ``load_split`` (and may override ``_split_size``/``_samples_at`` to build samples
        on demand); the runner reads ``iter_samples``, so overriding this method alone
        does not change what is evaluated.
        """
        return [s for chunk in self.iter_samples(limit=limit, seed=seed, split=split) for s in chunk]

    def sample_count(self, *, limit: int | None = None, split: str | None = None) -> int:
        """How many samples ``samples``/``iter_samples`` give, without building them."""
        n = self._split_size(split or self.eval_split)
        return n if limit is None else min(limit, n)

    def iter_samples(
        self, *, limit: int | None = None, seed: int = 0, split: str | None = None, chunk_size: int = 1 << 30
    ) -> Iterator[list[Sample]]:
        """``samples`` in consecutive chunks of at most ``chunk_size``.

        Why: the runner streams a large set chunk by chunk (requests, answers, scores and
        store rows of one chunk at a time), so memory stays bounded by the chunk rather
        than growing with the dataset. A task whose ``_samples_at`` builds samples on
        demand (YAML tasks do) then never holds every ``Sample`` at once.
        """
        split = split or self.eval_split
        picked = select_indices(self._split_size(split), limit, seed)
        for start in range(0, len(picked), chunk_size):
            yield self._samples_at(split, picked[start : start + chunk_size])

    def _split_size(self, split: str) -> int:
        return len(self.load_split(split))

    def _samples_at(self, split: str, indices: Sequence[int]) -> list[Sample]:
        rows = self.load_split(split)
        return [rows[i] for i in indices]

    def choose_mode(self, supported: frozenset[RequestKind]) -> RequestKind | None:
        """The first scoring mode this task accepts that the model can serve."""
        return next((m for m in self.scoring if m in supported), None)


TaskT = TypeVar("TaskT", bound=type[Task])


def register_task(name: str) -> Callable[[TaskT], TaskT]:
    """Class decorator: make a Python task available by name (``llmbench run --task NAME``)."""

    def add(cls: TaskT) -> TaskT:
        registry.tasks.register(name, cls, origin="python")
        return cls

    return add
