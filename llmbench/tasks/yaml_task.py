"""A task defined by a YAML file: data + field mapping + Jinja2 prompts + metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta

from llmbench.registry import EVALUATE_PREFIX
from llmbench.tasks import kinds
from llmbench.tasks.answers import TaskAnswers
from llmbench.tasks.base import TaskError
from llmbench.tasks.data import Row
from llmbench.tasks.prompting import _ENV, TaskPrompting
from llmbench.tasks.rows import TaskRows
from llmbench.tasks.spec import MetricRef, TaskSpec
from llmbench.types import Sample

__all__ = ["_ENV", "YamlTask"]  # _ENV: the one sandbox, imported from here by multiple_choice and judge


class YamlTask(TaskRows, TaskPrompting, TaskAnswers):
    """A task file: rows (``tasks.rows``) + prompting (``tasks.prompting``) + answer parsing
    (``tasks.answers``); this class reads the spec and checks the metrics it lists."""

    def __init__(self, spec: TaskSpec, *, path: Path | None = None) -> None:
        self.spec = spec
        self.path = path
        self.base_dir = path.parent if path else Path.cwd()
        self.source = str(path) if path else "yaml"
        self.name = spec.name
        self.kind = spec.kind
        self.version = spec.version
        self.description = spec.description
        self.labels = spec.labels
        self.scoring = spec.scoring or kinds.DEFAULT_SCORING[spec.kind]
        self.generation = spec.generation or kinds.DEFAULT_GENERATION[spec.kind]
        self.metrics = tuple(
            m if isinstance(m, MetricRef) else MetricRef(name=m)
            for m in (spec.metrics or kinds.DEFAULT_METRICS[spec.kind])
        )
        if spec.language:  # BLEU tokenizes by the target language, as sacrebleu -l does
            self.metrics = tuple(
                m.model_copy(update={"args": {"language": spec.language, **m.args}}) if m.name == "bleu" else m
                for m in self.metrics)
        self.primary_metric = spec.primary_metric or kinds.DEFAULT_PRIMARY[spec.kind]
        self.eval_split = spec.dataset.split
        self.train_split = spec.dataset.train_split
        self.validation_split = spec.dataset.validation_split
        self.slice_by = spec.slice_by
        self.judge = spec.judge
        template = spec.prompt.template
        if template == "{{ input }}" and "template" not in spec.prompt.model_fields_set:
            template = kinds.DEFAULT_TEMPLATE[spec.kind]
        try:
            self._template = _ENV.from_string(template)
            self._target_template = _ENV.from_string(spec.prompt.target_template)
            # A target template that reads only ``target`` (" {{ target }}") renders the same
            # text for a label in every sample: render it once per label, not per sample.
            target_vars = jinja2.meta.find_undeclared_variables(_ENV.parse(spec.prompt.target_template))
            prompt_vars = jinja2.meta.find_undeclared_variables(_ENV.parse(template))
        except jinja2.TemplateSyntaxError as err:
            raise TaskError(f"{self._where()}: prompt template error: {err.message} (line {err.lineno}) "
                            "— fix the template's syntax") from None
        # A template that reads ``row`` takes structured fields itself, so a dict or list in the
        # input column is its business; otherwise such a value would be scored as its repr.
        self._reads_row = "row" in prompt_vars
        self._check_metric_list()
        self._check_primary_metric()
        self._split_cache: dict[str, list[Sample]] = {}
        self._row_cache: dict[str, list[Row]] = {}
        self._target_memo: dict[str, str] | None = {} if target_vars <= {"target"} else None
        self._prompt_checked = False

    def _check_metric_list(self) -> None:
        """``metrics: []`` would silently fall back to the kind's defaults; one metric listed
        twice (chrF and chrF++ as ``[chrf, {name: chrf, args: {word_order: 2}}]``) used to
        evaluate everything and then fail storing two values of one name (exit 3). Per-sample
        stats and stored values are keyed by the metric's name, so refuse it up front."""
        if self.spec.metrics is not None and not self.spec.metrics:
            raise TaskError(f"{self._where()}: metrics: [] lists no metric — list at least one, or remove the key "
                            f"for the {self.kind} defaults ({', '.join(m.name for m in self.metrics)})")
        seen: dict[str, int] = {}
        for i, ref in enumerate(self.metrics):
            if ref.name in seen:
                raise TaskError(
                    f"{self._where()}: metrics[{i}] '{ref.name}' is already metrics[{seen[ref.name]}]; two "
                    "configurations of one metric cannot be stored in one run — keep one here and put the other "
                    "in a copy of this task file with its own name")
            seen[ref.name] = i

    def _check_primary_metric(self) -> None:
        """``primary_metric`` must be a value one of the metrics computes, or the leaderboard,
        gate and comparison tables have no headline number (the run used to be stored as
        complete with nothing to rank). Checked from the task file alone, before any data."""
        computed: set[str] = set()
        unknown = False
        for ref in self.metrics:
            names = kinds.metric_value_names(ref.name, ref.args, self.labels)
            if names is None and not ref.name.startswith(EVALUATE_PREFIX):
                raise TaskError(f"{self._where()}: metrics: unknown metric '{ref.name}' — use one of "
                                f"{', '.join(kinds.metric_names())} or evaluate:<hub name or path>")
            unknown |= names is None  # an evaluate: metric's values are known only when it runs
            computed |= names or set()
        if unknown:
            return
        if self.primary_metric not in computed:
            where = "primary_metric" if self.spec.primary_metric else f"the {self.kind} default primary_metric"
            raise TaskError(f"{self._where()}: {where} '{self.primary_metric}' is not computed by the task's "
                            f"metrics ({', '.join(ref.name for ref in self.metrics)}) — use one of "
                            f"{', '.join(sorted(computed))} or add the metric that computes it")

    def config_fingerprint(self) -> dict[str, Any]:
        # slice_by only groups the scores: it changes no request, so it is not part of the identity
        spec = self.spec.model_dump(mode="json", exclude={"description", "tags", "slice_by"})
        return {"name": self.name, "version": self.version, "kind": self.kind, "spec": spec}
