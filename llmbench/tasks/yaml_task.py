"""A task defined by a YAML file: data + field mapping + Jinja2 prompts + metrics."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import jinja2.sandbox

from llmbench.registry import EVALUATE_PREFIX
from llmbench.tasks import kinds
from llmbench.tasks.base import Task, TaskError
from llmbench.tasks.data import DataError, Row, get_field, load_rows, same_rows
from llmbench.tasks.spec import MetricRef, TaskSpec
from llmbench.tasks.template import BoundedSandbox, TemplateLimit, render
from llmbench.types import ChatMessage, Prompt, Request, RequestKind, Response, Sample

# The sandbox: a task file is data someone else may have written, and a plain Environment
# lets a template reach ``''.__class__.__mro__`` or ``cycler.__init__.__globals__.os`` and run
# shell commands. The immutable sandbox refuses private attributes, unsafe callables and
# mutating methods; a template that tries is a one-line TaskError naming the file. It is also
# bounded in time, output size and number size (``tasks.template``): a task file cannot hang.
_ENV = BoundedSandbox(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
_FEWSHOT_POOL = 2000  # few-shot examples are drawn from at most this many rows of their split


def _rows_list(indices: Sequence[int], show: int = 4) -> str:
    head = ", ".join(str(i) for i in indices[:show])
    return head + (f", … ({len(indices)} rows)" if len(indices) > show else "")


class YamlTask(Task):
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

    # -- data ---------------------------------------------------------------------------
    def _where(self) -> str:
        return f"task '{self.name}' ({self.path})" if self.path else f"task '{self.name}'"

    def load_split(self, split: str) -> list[Sample]:
        if split not in self._split_cache:
            rows = self._rows(split)
            self._split_cache[split] = [self._to_sample(i, row) for i, row in enumerate(rows)]
            self._check_prompts(self._split_cache[split][0])
        return self._split_cache[split]

    def _rows(self, split: str) -> list[Row]:
        if split not in self._row_cache:
            try:
                rows = load_rows(self.spec.dataset, split, self.base_dir)
            except DataError as err:
                raise TaskError(f"{self._where()}: {err}") from None
            self._check_rows(split, rows)
            self._row_cache[split] = rows
        return self._row_cache[split]

    def _check_rows(self, split: str, rows: list[Row]) -> None:
        """Whole-split checks, once per split, before any model is loaded.

        Empty data used to be stored as a ``complete`` run with no metrics, and duplicate
        ids silently broke compare and the leaderboard (both match samples by id).
        """
        if not rows:
            raise TaskError(f"{self._where()}: split '{split}' has no rows ({self._source_of(split)}) — "
                            "add rows to the data file or point dataset at the right file")
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                raise TaskError(f"{self._where()}: row {index} of split '{split}' is a "
                                f"{type(row).__name__}, not an object with columns — every row must be "
                                "a JSON object / a CSV line with a header")
        field = self.spec.fields.id
        if field is None:
            return  # ids are row numbers, unique by construction
        seen: dict[str, list[int]] = {}
        for index, row in enumerate(rows):
            seen.setdefault(self._sample_id(row, index), []).append(index)
        dupes = [(sid, where) for sid, where in seen.items() if len(where) > 1]
        if dupes:
            shown = "; ".join(f"'{sid}' in rows {_rows_list(where)}" for sid, where in dupes[:3])
            more = f" (and {len(dupes) - 3} more ids)" if len(dupes) > 3 else ""
            raise TaskError(f"{self._where()}: split '{split}' has duplicate ids in fields.id = '{field}': "
                            f"{shown}{more} — ids must be unique (compare and the leaderboard match samples "
                            "by id); fix the data or point fields.id at a unique column")

    def _source_of(self, split: str) -> str:
        ds = self.spec.dataset
        if ds.builtin is not None:
            return f"builtin '{ds.builtin}'"
        files = ds.data_files
        if isinstance(files, dict):
            files = files.get(split)
        return f"file '{files or ds.path}'"

    def _sample_id(self, row: Row, index: int) -> str:
        f = self.spec.fields
        if not f.id:
            return str(index)
        value = self._field(row, "id", f.id, index)
        if value is None or isinstance(value, dict | list) or value == "":
            raise TaskError(f"{self._where()}: row {index} has id {value!r} in column '{f.id}' — every row "
                            "needs a non-empty string or number id (or drop fields.id to number the rows)")
        return str(value)

    def _split_size(self, split: str) -> int:
        return len(self._split_cache[split]) if split in self._split_cache else len(self._rows(split))

    def _samples_at(self, split: str, indices: Sequence[int]) -> list[Sample]:
        """Built on demand from the raw rows (not kept), so a streamed run holds one chunk
        of ``Sample`` objects at a time; splits already loaded whole are reused."""
        if split in self._split_cache:
            return super()._samples_at(split, indices)
        rows = self._rows(split)
        samples = [self._to_sample(i, rows[i]) for i in indices]
        if samples:
            self._check_prompts(samples[0])
        return samples

    def _field(self, row: Row, key: str, path: str, index: int) -> Any:
        try:
            return get_field(row, path)
        except KeyError:
            cols = ", ".join(sorted(row)) if isinstance(row, dict) else "?"
            raise TaskError(
                f"{self._where()}: fields.{key} = '{path}' is not in row {index} (columns: {cols}) "
                f"— fix fields.{key} in the task file"
            ) from None

    def _text(self, row: Row, key: str, path: str, index: int) -> str:
        """A text field: a string, or a number written as text.

        ``None``, a dict or a list would otherwise reach the model and the store as
        ``"None"`` or a Python repr. A template that reads ``row`` handles structured
        fields itself, so then the value is kept as JSON text.
        """
        value = self._field(row, key, path, index)
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        if self._reads_row:
            return "" if value is None else json.dumps(value, ensure_ascii=False, default=str)
        what = "null" if value is None else f"a {type(value).__name__}"
        raise TaskError(f"{self._where()}: row {index} (id '{self._sample_id(row, index)}'): fields.{key} = "
                        f"'{path}' is {what}, not text — fix the data, point fields.{key} at a text column, "
                        "or read the structured value with a template that uses row (e.g. {{ row."
                        f"{path.split('.')[0]} }}}})")

    def _to_sample(self, index: int, row: Row) -> Sample:
        f = self.spec.fields
        sid = self._sample_id(row, index)
        assert f.target is not None  # the spec requires it of every kind this class builds
        raw_target = self._field(row, "target", f.target, index)
        context = self._text(row, "context", f.context, index) if f.context else None
        return Sample(
            id=sid,
            input=self._text(row, "input", f.input, index),
            references=self._references(raw_target, index),
            choices=self.labels,
            context=context,
            extra={"row": row, **self._slice_extra(row, index)},
        )

    def _slice_extra(self, row: Row, index: int) -> dict[str, str]:
        """``{"slice": value}`` of the ``slice_by`` field, read when the sample is built so a
        wrong field name fails before any model loads; a missing value is the slice "(none)"."""
        if self.slice_by is None:
            return {}
        try:
            value = get_field(row, self.slice_by)
        except KeyError:
            raise TaskError(f"{self._where()}: slice_by = '{self.slice_by}' is not in row {index} (columns: "
                            f"{', '.join(sorted(row))}) — fix slice_by in the task file") from None
        if value is None or value == "":
            return {"slice": "(none)"}
        if isinstance(value, dict | list):
            return {"slice": json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)}
        return {"slice": str(value)}

    def _references(self, raw: Any, index: int) -> tuple[str, ...]:
        if raw is None or isinstance(raw, dict):
            what = "null" if raw is None else "a dict"
            raise TaskError(f"{self._where()}: row {index}: fields.target = '{self.spec.fields.target}' is {what} "
                            "— every row needs a target (text, a list of texts or a label); for a nested "
                            "answer use a dotted path such as answers.text")
        if self.kind != "classification":
            refs = tuple(str(r) for r in raw) if isinstance(raw, list | tuple) else (str(raw),)
            if not refs and self.spec.no_answer is not None:
                return (self.spec.no_answer,)
            if not refs:
                raise TaskError(f"{self._where()}: row {index} has no reference — every row needs a target "
                                "(or set no_answer: for rows without an answer)")
            return refs
        assert self.labels is not None
        if isinstance(raw, bool):
            return (self._bool_label(raw, index),)
        if isinstance(raw, int) and not (self.spec.label_map and str(raw) in self.spec.label_map):
            if not 0 <= raw < len(self.labels):
                raise TaskError(f"{self._where()}: row {index} has label index {raw}, "
                                f"but labels has {len(self.labels)} entries — fix labels")
            return (self.labels[raw],)
        label = str(raw)
        if self.spec.label_map:
            label = self.spec.label_map.get(label, label)
        if label not in self.labels:
            raise TaskError(f"{self._where()}: row {index} has label '{label}', not one of "
                            f"{list(self.labels)} — fix labels or label_map")
        return (label,)

    def _bool_label(self, raw: bool, index: int) -> str:
        """A JSON ``true``/``false`` target is the label that says so (true/false or yes/no, any
        case); read as an index it silently became the second/first label whatever they are."""
        assert self.labels is not None
        words = ("true", "yes") if raw else ("false", "no")
        for label in self.labels:
            if label.strip().lower() in words:
                return label
        raise TaskError(f"{self._where()}: row {index} has the boolean label {str(raw).lower()}, and labels "
                        f"{list(self.labels)} has no true/false or yes/no — write the label's name in the data, "
                        "or name the labels true/false")

    # -- prompts -------------------------------------------------------------------------
    def _render(self, sample: Sample) -> str:
        try:
            text = render(self._template, input=sample.input, context=sample.context,
                          choices=self.labels, row=sample.extra.get("row", {}))
        except Exception as err:  # any template failure is the task file's
            raise self._template_error("prompt.template", sample, err) from None
        return self._nonempty(text, sample)

    def _nonempty(self, prompt: str, sample: Sample) -> str:
        """An empty prompt gives a model nothing to answer (a causal LM cannot even run on zero
        tokens); it is the template's or the row's mistake, said before any model loads."""
        if not prompt.strip():
            raise TaskError(f"{self._where()}: prompt.template renders an empty prompt for sample '{sample.id}' — "
                            "make the template use {{ input }} (or the row's fields), or fix the row's input")
        return prompt

    def _render_target(self, sample: Sample, target: str) -> str:
        memo = self._target_memo
        try:
            if memo is not None:
                if target not in memo:
                    memo[target] = render(self._target_template, target=target)
                return memo[target]
            return render(self._target_template, target=target, input=sample.input,
                          row=sample.extra.get("row", {}))
        except Exception as err:  # any template failure is the task file's
            raise self._template_error("prompt.target_template", sample, err) from None

    def _template_error(self, key: str, sample: Sample, err: Exception) -> TaskError:
        """One line naming the file, the template key and the sample, for every way a
        template can fail at render time: an undefined name, a sandbox refusal, or an
        exception raised by the expression itself (``{{ 1/0 }}``)."""
        from llmbench.errors import one_line

        where = f"{self._where()}: {key} (sample '{sample.id}')"
        if isinstance(err, TemplateLimit):
            return TaskError(f"{where} stopped: {one_line(err, 160)} — templates format one sample's "
                             "fields; remove the loop, power or padding that builds this much")
        if isinstance(err, jinja2.sandbox.SecurityError):
            return TaskError(f"{where} reaches outside the template sandbox ({one_line(err, 160)}) — templates "
                             "may only read input, context, choices, row and target and use Jinja filters; "
                             "remove the attribute access or call")
        if isinstance(err, jinja2.UndefinedError):
            return TaskError(f"{where} uses {err.message} — fix the template or the fields")
        return TaskError(f"{where} failed: {type(err).__name__}: {one_line(err, 160)} — fix the template")

    def _check_prompts(self, sample: Sample) -> None:
        """Render every prompt shape of one sample, once per task, when the samples are first
        built: a template that fails for every row (``{{ 1/0 }}``, a sandbox escape) is then
        found while the CLI checks the data, before any model loads or run record exists."""
        if self._prompt_checked:
            return
        self._prompt_checked = True
        self._render(sample)
        for label in self.labels or sample.references[:1]:
            self._render_target(sample, label)

    @cached_property
    def _fewshot_pool(self) -> list[Sample]:
        fs = self.spec.prompt.fewshot
        split = fs.split or self.spec.dataset.fewshot_split or self.train_split
        if fs.k == 0:
            return []
        if split is None:
            raise TaskError(f"{self._where()}: prompt.fewshot.k = {fs.k} needs prompt.fewshot.split "
                            "(or dataset.fewshot_split) — name the split to draw examples from")
        shared = same_rows(self.spec.dataset, split, self.eval_split, self.base_dir)
        if shared is not None and not fs.allow_evaluated_rows:
            raise TaskError(f"{self._where()}: few-shot examples (split '{split}') would be drawn from the evaluated "
                            f"rows (split '{self.eval_split}'; both read {shared}) — give the few-shot split its "
                            "own file (dataset.data_files: {test: ..., train: ...}), or set "
                            "prompt.fewshot.allow_evaluated_rows: true")
        pool = self.load_split(split)[:_FEWSHOT_POOL]
        room = len(pool) - (1 if shared is not None else 0)  # a sample's own row is left out
        if fs.k > room:
            raise TaskError(f"{self._where()}: prompt.fewshot.k = {fs.k} but split '{split}' offers {max(room, 0)} "
                            f"example(s) per sample — lower k or add rows to the split")
        return pool

    def _shots(self, sample: Sample) -> list[Sample]:
        """k examples drawn per sample with a seed that depends only on the sample id,
        so the prompt of a sample never depends on which other samples are in the run."""
        fs = self.spec.prompt.fewshot
        pool = [s for s in self._fewshot_pool if s.id != sample.id or s.input != sample.input]
        if fs.k == 0 or not pool:
            return []
        seed = int(hashlib.sha256(f"{fs.seed}:{sample.id}".encode()).hexdigest()[:12], 16)
        return random.Random(seed).sample(pool, min(fs.k, len(pool)))

    def prompt_for(self, sample: Sample, *, chat: bool) -> Prompt:
        p = self.spec.prompt
        shots = self._shots(sample)
        if not chat:
            parts = [self._render(s) + self._render_target(s, s.references[0]) for s in shots]
            parts.append(self._render(sample))
            body = p.fewshot.separator.join(parts)
            return f"{p.instruction}\n\n{body}" if p.instruction else body
        messages: list[ChatMessage] = []
        if p.system:
            messages.append(ChatMessage(role="system", content=p.system))
        for shot in shots:
            messages.append(ChatMessage(role="user", content=self._render(shot)))
            messages.append(ChatMessage(role="assistant",
                                        content=self._render_target(shot, shot.references[0]).strip()))
        messages.append(ChatMessage(role="user", content=self._render(sample)))
        if p.instruction:
            first = messages[1 if p.system else 0]
            messages[1 if p.system else 0] = ChatMessage(role="user", content=f"{p.instruction}\n\n{first.content}")
        return tuple(messages)

    def build_requests(
        self, samples: Sequence[Sample], mode: RequestKind, *, chat: bool = False
    ) -> list[Request]:
        out = []
        for s in samples:
            common = {"sample_id": s.id, "kind": mode, "input": s.input, "context": s.context,
                      "config": self.generation}
            if mode == "classify":
                out.append(Request(prompt=self.prompt_for(s, chat=chat), continuations=self.labels, **common))
            elif mode == "loglikelihood":
                assert self.labels is not None
                conts = tuple(self._render_target(s, lab) for lab in self.labels)
                if chat:
                    conts = tuple(c.strip() for c in conts)
                out.append(Request(prompt=self.prompt_for(s, chat=chat), continuations=conts, **common))
            else:
                out.append(Request(prompt=self.prompt_for(s, chat=chat), **common))
        return out

    def predict(self, sample: Sample, response: Response, mode: RequestKind) -> str:
        if self.kind != "classification":
            return (response.text or "").strip()
        assert self.labels is not None
        if mode == "loglikelihood":
            return kinds.argmax_label(response.logprobs or (), self.labels)
        if mode == "classify":
            return self._label_from_scores(response.label_scores or {})
        return kinds.parse_label(response.text or "", self.labels)

    def gives_label_probabilities(self, mode: RequestKind) -> bool:
        return self.kind == "classification" and mode in ("classify", "loglikelihood")

    def label_probabilities(self, sample: Sample, response: Response,
                            mode: RequestKind) -> dict[str, float] | None:
        """Softmax over the labels of the classifier's log-scores (mapped through
        ``label_map`` as ``predict`` maps them) or of the label continuations' log-likelihoods;
        None when scored by generation (``kinds.label_distribution`` says why one rule)."""
        if not self.gives_label_probabilities(mode):
            return None
        assert self.labels is not None
        if mode == "loglikelihood":
            return kinds.label_distribution(response.logprobs or (), self.labels)
        label_map = self.spec.label_map or {}
        scores = {label_map.get(k, k): v for k, v in (response.label_scores or {}).items()}
        known = all(lab in scores for lab in self.labels)
        return kinds.label_distribution([scores[lab] for lab in self.labels] if known else [], self.labels)

    def _label_from_scores(self, scores: dict[str, float]) -> str:
        """The task label with the highest classifier score. The model's label names are
        taken as they are, or through ``label_map`` when the task maps them; generic
        ``LABEL_i`` names are never matched by position (a guess that silently swaps
        classes when the model was trained with another order). No scores is an invalid
        answer ("", scored wrong)."""
        assert self.labels is not None
        if not scores:
            return ""
        label_map = self.spec.label_map or {}
        scores = {label_map.get(k, k): v for k, v in scores.items()}
        if all(lab in scores for lab in self.labels):
            return kinds.argmax_label([scores[lab] for lab in self.labels], self.labels)
        keys = list(scores)
        if all(k.startswith("LABEL_") for k in keys):
            raise TaskError(f"{self._where()}: the model only names its classes {keys} — map them "
                            f"to the task's labels {list(self.labels)} explicitly: label_map: "
                            "{LABEL_0: <label>, ...} in the task file, or id2label in the model's "
                            "config.json")
        raise TaskError(f"{self._where()}: the model's labels {keys} do not match the task's "
                        f"labels {list(self.labels)} — fine-tune with these labels or rename them")

    def config_fingerprint(self) -> dict[str, Any]:
        # slice_by only groups the scores: it changes no request, so it is not part of the identity
        spec = self.spec.model_dump(mode="json", exclude={"description", "tags", "slice_by"})
        return {"name": self.name, "version": self.version, "kind": self.kind, "spec": spec}
