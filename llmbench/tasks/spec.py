"""The closed, versioned schema of a task file (``tasks/*.yaml``).

Every model here forbids unknown keys, so a typo in a task file is an error that
names the file and the key instead of a silently ignored setting.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, field_validator, model_serializer, model_validator

from llmbench.types import Frozen, GenerationConfig, RequestKind

TaskKind = Literal["classification", "translation", "qa", "summarization", "multiple_choice",
                   "language_modeling", "continuation"]
SCHEMA_VERSION = 1


class DatasetSpec(Frozen):
    """Where the rows come from: a built-in offline set, local files, or a Hub id."""

    builtin: str | None = None
    path: str | None = Field(
        default=None,
        description="'json', 'csv', 'parquet' with data_files, a local file, or a Hub dataset id",
    )
    name: str | None = None
    revision: str | None = None
    data_files: str | dict[str, str] | None = None
    format: Literal["rows", "squad"] = "rows"
    split: str = "test"
    fewshot_split: str | None = None
    train_split: str | None = None
    validation_split: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DatasetSpec:
        if (self.builtin is None) == (self.path is None and self.data_files is None):
            raise ValueError("give exactly one of 'builtin' or 'path'/'data_files'")
        return self


class FieldMap(Frozen):
    """Column names (dotted paths allowed, e.g. ``answers.text``) for each Sample field."""

    id: str | None = None
    input: str
    target: str | None = None  # required by every kind but language_modeling (the text is the input)
    context: str | None = None


class FewShot(Frozen):
    k: int = Field(default=0, ge=0)
    split: str | None = None
    seed: int = 1234
    separator: str = "\n\n"
    allow_evaluated_rows: bool = Field(default=False, description="draw examples from the rows being evaluated "
                                       "(each sample's own row is still left out); refused unless set")
    sampler: Literal["random", "first_n", "sequential"] = Field(
        default="random", description="random: k examples drawn per sample, seeded by the sample id; first_n: "
        "the first k rows of the pool in order, the same for every sample (lm-eval's MMLU); sequential: one "
        "generator seeded once with seed, drawing for each row of the evaluated split in order (lm-eval's "
        "default sampler, so its few-shot prompts)")
    match: str | None = Field(default=None, description="a row field (dotted path allowed): examples only from "
                              "pool rows whose value equals the sample's (MMLU: subject)")

    @model_validator(mode="after")
    def _sequential_alone(self) -> FewShot:
        if self.sampler == "sequential" and self.match is not None:
            raise ValueError("sampler: sequential draws from the whole pool; it does not take match")
        return self

    @model_serializer(mode="wrap")
    def _new_keys_only_when_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """``sampler`` and ``match`` appear in a dump (so in a task's fingerprint) only when set:
        the tasks written before they existed keep their fingerprints and their runs' identity."""
        out: dict[str, Any] = handler(self)
        if self.sampler == "random":
            out.pop("sampler", None)
        if self.match is None:
            out.pop("match", None)
        return out


class PromptSpec(Frozen):
    """Jinja2 templates. Variables: ``input``, ``context``, ``choices``, ``row`` (the raw row).
    ``instruction`` is put once before the few-shot examples; written with Jinja markup it is
    rendered with the evaluated sample's variables (MMLU: ``... about {{ row.subject }}.``)."""

    template: str = "{{ input }}"
    target_template: str = " {{ target }}"
    system: str | None = None
    instruction: str | None = None
    fewshot: FewShot = FewShot()


class ChoicesSpec(Frozen):
    """Multiple choice: each row's own options and how its gold answer is written.

    ``field`` names a column holding the row's list of choices (``choices.text``);
    ``templates`` gives one Jinja template per choice instead (``["{{ row.sol1 }}", ...]``,
    or fixed letters ``["A", "B", "C", "D"]`` when the prompt lists the options). ``gold``
    says what ``fields.target`` holds: ``index`` (0-based; a digit string counts), ``text``
    (one of the choices) or ``label`` (one of ``labels_field``'s values, e.g. ARC's
    ``answerKey`` among ``choices.label``; letters A, B, ... without ``labels_field``).
    """

    field: str | None = None
    templates: tuple[str, ...] | None = Field(default=None, min_length=2)
    gold: Literal["index", "text", "label"] = "index"
    labels_field: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ChoicesSpec:
        if (self.field is None) == (self.templates is None):
            raise ValueError("give exactly one of 'field' (a column holding a list) or 'templates'")
        return self


class RollingSpec(Frozen):
    """Language modelling: how a document longer than the model's window is scored.
    ``stride``: tokens predicted per window after the first (None: a whole window each,
    lm-evaluation-harness's disjoint windows; smaller gives every window more context)."""

    stride: int | None = Field(default=None, ge=1)


class ExtractSpec(Frozen):
    """Answer extraction from a generated text by a regular expression (lm-eval's ``regex``
    filter, see ``llmbench.textregex``): the ``group_select``-th match (-1: the last), its
    first non-empty group when the pattern has several, or ``fallback`` when nothing matches.
    The pattern runs with a time bound (the ``regex`` module's timeout)."""

    regex: str = Field(min_length=1)
    group_select: int = 0
    fallback: str = "[invalid]"

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        from llmbench.textregex import compile_pattern

        compile_pattern(value)  # an ExtractError (a ValueError) names the pattern
        return value


class MetricRef(Frozen):
    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class JudgeConfig(Frozen):
    """``judge:`` in a task file or a suite: a judge model (any model spec) grades each run's
    answers after the run (``llmbench.plan.judging``, through ``llmbench.judge``): ``rubric``
    scores every answer on ``scale`` against its reference (and ``criteria``); ``pairwise``
    compares every two models of the plan on each sample, in both orders. This is only the
    configuration (tasks never import the judge); the plan wires it."""

    model: str = Field(min_length=1, description="the judge: any model spec (smollm2, hf:PATH, openai:MODEL, a plugin)")
    mode: Literal["rubric", "pairwise"] = "rubric"
    scale: tuple[int, int] = (1, 5)
    criteria: str | None = None
    template: str | None = Field(default=None, description="the judge prompt (Jinja, sandboxed); default built in")
    chat: bool = True
    verdict_by: Literal["generate", "loglikelihood"] = "generate"
    decoding: GenerationConfig | None = Field(default=None, description="the judge's decoding; default greedy, "
                                              "16 tokens (rubric) or 8 (pairwise)")
    options: dict[str, Any] = Field(default_factory=dict, description="judge adapter options (base_url, ...)")

    @field_validator("scale")
    @classmethod
    def _scale(cls, value: tuple[int, int]) -> tuple[int, int]:
        if value[0] >= value[1]:
            raise ValueError(f"scale [{value[0]}, {value[1]}] is empty — give [MIN, MAX] with MIN < MAX")
        return value


#: Task kinds whose answers are free text, the only ones a judge grades.
JUDGED_KINDS = ("translation", "qa", "summarization")


class TaskSpec(Frozen):
    llmbench_task: int = SCHEMA_VERSION
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    kind: TaskKind
    version: int = Field(default=1, ge=1, le=2**31 - 1, description="bump when a change makes old numbers "
                         "incomparable; a positive whole number")
    description: str = ""
    dataset: DatasetSpec
    fields: FieldMap
    labels: tuple[str, ...] | None = None
    label_map: dict[str, str] | None = None
    prompt: PromptSpec = PromptSpec()
    scoring: tuple[RequestKind, ...] | None = None
    generation: GenerationConfig | None = None
    metrics: tuple[str | MetricRef, ...] | None = None
    primary_metric: str | None = None
    no_answer: str | None = Field(default=None, description="the reference for a row whose target is an empty "
                                  "list (SQuAD v2 unanswerable questions)")
    language: str | None = Field(default=None, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]+)*$",
                                 description="the language of the targets (ISO 639 code, e.g. zh): "
                                 "picks BLEU's tokenizer as sacrebleu -l does (zh, ja, ko)")
    tags: tuple[str, ...] = ()
    slice_by: str | None = Field(default=None, description="a row field (dotted path allowed) whose values "
                                 "split the samples into slices; every metric is also reported per slice")
    choices: ChoicesSpec | None = None
    preprocess: Literal["hellaswag"] | None = Field(default=None, description="a named row clean-up "
                                                    "(hellaswag: lm-evaluation-harness's query and endings)")
    rolling: RollingSpec | None = None
    extract: ExtractSpec | None = Field(default=None, description="generated answers: the prediction is what a "
                                        "regular expression extracts (lm-eval's regex filter)")
    # Perturbed variants run beside the clean task (``tasks.perturb``: "typo:rate=0.05" or
    # {name: typo, rate: 0.05, seed: 1}). Kept out of model_dump, so out of the clean task's
    # fingerprint: listing a perturbation leaves the clean runs comparable.
    perturbations: tuple[str | dict[str, Any], ...] = Field(default=(), exclude=True)
    # A judge of the answers (``JudgeConfig``). Kept out of the fingerprint like perturbations:
    # the judge's identity is in the judged metric's signature, and the task's own numbers
    # stay comparable whichever judge grades them.
    judge: JudgeConfig | None = Field(default=None, exclude=True)

    @field_validator("perturbations")
    @classmethod
    def _known_perturbations(cls, value: tuple[str | dict[str, Any], ...]) -> tuple[str | dict[str, Any], ...]:
        from llmbench.tasks.perturb import parse

        for spec in value:
            parse(spec)  # a PerturbationError (one line) for an unknown name or parameter
        return value

    @model_serializer(mode="wrap")
    def _extract_only_when_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """``extract`` appears in a dump (so in a task's fingerprint) only when set: the tasks
        written before it existed keep their fingerprints and their runs' identity."""
        out: dict[str, Any] = handler(self)
        if self.extract is None:
            out.pop("extract", None)
        return out

    @model_validator(mode="after")
    def _check(self) -> TaskSpec:
        if self.llmbench_task != SCHEMA_VERSION:
            raise ValueError(f"llmbench_task: schema version {self.llmbench_task} is not supported "
                             f"(this llmbench reads version {SCHEMA_VERSION})")
        if self.kind == "classification" and not self.labels:
            raise ValueError("labels: a classification task must list its labels")
        if self.kind == "multiple_choice" and self.choices is None:
            raise ValueError("choices: a multiple_choice task must say where each row's choices are")
        if self.kind != "multiple_choice" and self.choices is not None:
            raise ValueError("choices: only for multiple_choice tasks (classification lists labels)")
        if self.kind != "language_modeling" and self.fields.target is None:
            raise ValueError("fields: every task kind but language_modeling needs fields.target")
        if self.kind == "continuation" and self.scoring is not None and set(self.scoring) != {"loglikelihood"}:
            raise ValueError("scoring: a continuation task is scored by loglikelihood only (it has one "
                             "continuation to score, nothing to generate or classify)")
        if self.extract is not None and self.kind not in ("qa", "translation", "summarization"):
            raise ValueError("extract: only for generated answers (qa, translation, summarization tasks)")
        if self.kind != "language_modeling" and self.rolling is not None:
            raise ValueError("rolling: only for language_modeling tasks")
        if self.judge is not None and self.kind not in JUDGED_KINDS:
            raise ValueError(f"judge: a judge grades free-text answers ({', '.join(JUDGED_KINDS)} tasks), "
                             f"not a {self.kind} task — remove the judge block")
        if self.kind == "classification" and self.no_answer is not None:
            raise ValueError("no_answer: only for qa, translation and summarization tasks")
        _check_labels(self.labels)
        return self


def _check_labels(labels: tuple[str, ...] | None) -> None:
    """An empty label, or two that differ only in case, spaces or punctuation, cannot be told
    apart by the answer parser (it compares normalised words), so one of them could never be
    predicted by generation; refused rather than scored wrong."""
    import re

    seen: dict[str, str] = {}
    for label in labels or ():
        norm = " ".join(re.sub(r"[^\w]+", " ", label.lower()).split())
        if not norm:
            raise ValueError(f"labels: {label!r} has no letters or digits — give every label a name")
        if norm in seen:
            raise ValueError(f"labels: {seen[norm]!r} and {label!r} differ only in case, spaces or punctuation "
                             "— make them distinct")
        seen[norm] = label
