"""The tables of the results store and the typed rows readers get back.

The tables describe the schema at the newest migration (``migrations/versions``); a change
here needs a new migration, which ``tests/store/test_migrations.py`` checks by comparing a
migrated store with these tables.
"""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from llmbench.types import MetricValue

metadata = sa.MetaData()

runs_table = sa.Table(
    "runs", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("batch_id", sa.String(32), index=True, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("finished_at", sa.String(32)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("model_kind", sa.String(32), nullable=False, default="local"),
    sa.Column("model_identity", sa.JSON, nullable=False),
    sa.Column("task", sa.String(200), nullable=False, index=True),
    sa.Column("task_kind", sa.String(32), nullable=False),
    sa.Column("task_version", sa.Integer, nullable=False),
    sa.Column("task_fingerprint", sa.String(32), nullable=False),
    sa.Column("scoring_mode", sa.String(32), nullable=False),
    sa.Column("scoring_method", sa.String(64), nullable=False),
    sa.Column("primary_metric", sa.String(64), nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("environment", sa.JSON, nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("n_samples", sa.Integer, default=0),
    sa.Column("n_errors", sa.Integer, default=0),
    sa.Column("cache_hits", sa.Integer, default=0),
    sa.Column("cache_misses", sa.Integer, default=0),
    sa.Column("usage", sa.JSON, nullable=False),
    # revision 0002: the run lifecycle (why a run failed; who runs it and when it last moved)
    sa.Column("reason", sa.Text),
    sa.Column("heartbeat_at", sa.String(32)),
    sa.Column("host", sa.String(255)),
    sa.Column("pid", sa.Integer),
    # revision 0004: how the adapter actually computed the answers (fallbacks taken)
    sa.Column("notes", sa.JSON),
)
samples_table = sa.Table(
    "samples", metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True),
    sa.Column("sample_id", sa.String(200), nullable=False),
    sa.Column("input", sa.Text, nullable=False),
    sa.Column("prompt", sa.Text, nullable=False),
    sa.Column("prediction", sa.Text),
    sa.Column("references", sa.JSON, nullable=False),
    sa.Column("stats", sa.JSON, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("latency_s", sa.Float),
    sa.Column("prompt_tokens", sa.Integer),
    sa.Column("completion_tokens", sa.Integer),
    sa.Column("cost_usd", sa.Float),
    # revision 0003: how the answer came about (once private keys of ``stats``), and the slice
    sa.Column("answer", sa.JSON),
    sa.Column("slice", sa.Text),
)
metrics_table = sa.Table(
    "metrics", metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("metric", sa.String(128), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("ci_low", sa.Float),
    sa.Column("ci_high", sa.Float),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("higher_is_better", sa.Boolean, nullable=False),
    sa.Column("signature", sa.Text, nullable=False),
    sa.Column("metric_args", sa.JSON, nullable=False),
)

#: What a run row's ``status`` column holds. ``running`` is written first; a reader shows a
#: ``running`` run whose process is gone as ``interrupted`` (see ``lifecycle.state``).
Status = Literal["running", "complete", "incomplete", "failed", "interrupted"]


class StoredRunConfig(BaseModel):
    """What a run was asked to do and how to read it back, as the runner writes it into the
    run's ``config`` column and every reader takes it out (``RunInfo.run_config``).

    Captured when the run starts, so a report never opens model folders or guesses a stats
    layout later. Unknown keys of a newer writer are ignored, missing ones of an older
    writer take these defaults.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    limit: int | None = None
    seed: int = 0
    n_resamples: int = 1000
    confidence: float = 0.95
    use_cache: bool = True
    tags: list[str] = Field(default_factory=list)
    #: The model entry (spec, label, chat, scoring, adapter options without placement).
    model: dict[str, Any] = Field(default_factory=dict)
    labels: list[str] | None = None
    #: The task's configuration fingerprint (what changes its numbers), for comparability.
    task: dict[str, Any] | None = None
    #: What reports show about the model (``ModelAdapter.describe``).
    model_info: dict[str, Any] = Field(default_factory=dict)
    #: Per metric, how its per-sample stats are laid out (``Metric.describe_stats``).
    metric_stats: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: Metrics the task declares but this run could not compute, with the reason.
    not_computed: dict[str, str] = Field(default_factory=dict)


class RunUsage(BaseModel):
    """What a run sent and waited for, and what it flagged (the ``usage`` column).
    ``attempts``/``retries`` count requests this run sent (a cached answer sent none);
    ``latency_*`` is the successful attempt's, ``latency_total_*`` end to end."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cost_usd: float | None = None
    attempts: int = 0
    retries: int = 0
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    latency_total_p50_s: float | None = None
    latency_total_p95_s: float | None = None
    finish_reasons: dict[str, int] = Field(default_factory=dict)
    #: Answers scored but not to be trusted blindly (``truncated``, ``content_filter``) -> count.
    flagged: dict[str, int] = Field(default_factory=dict)
    #: Per-slice metric values (``metrics.slices.slice_report``) when the task has ``slice_by``.
    slices: dict[str, Any] | None = None


class RunInfo(BaseModel):
    """One stored run (a model on a task), as readers see it.

    ``config`` and ``usage`` are the raw columns; read them through ``run_config`` and
    ``run_usage``, the types the runner writes them with."""

    model_config = ConfigDict(frozen=True)

    id: str
    batch_id: str
    created_at: str
    finished_at: str | None
    status: Status
    model: str
    model_kind: str
    model_identity: dict[str, Any]
    task: str
    task_kind: str
    task_version: int
    task_fingerprint: str
    scoring_mode: str
    scoring_method: str
    primary_metric: str
    config: dict[str, Any]
    environment: dict[str, Any]
    tags: list[str]
    n_samples: int = 0
    n_errors: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    usage: dict[str, Any] = Field(default_factory=dict)
    reason: str | None = None
    heartbeat_at: str | None = None
    host: str | None = None
    pid: int | None = None
    #: How the model's adapter actually computed this run's answers, when a reader should know
    #: (``ModelAdapter.take_scoring_notes``: a fallback path taken, and why). Answers taken from
    #: the response cache add none: they were computed by an earlier run, which noted its own.
    notes: list[str] = Field(default_factory=list)

    @field_validator("notes", mode="before")
    @classmethod
    def _null_notes(cls, value: Any) -> Any:
        return [] if value is None else value  # runs stored before revision 0004

    @property
    def run_config(self) -> StoredRunConfig:
        return StoredRunConfig.model_validate(self.config)

    @property
    def run_usage(self) -> RunUsage:
        return RunUsage.model_validate(self.usage)


class AnswerInfo(BaseModel):
    """How a sample's answer came about, beside what it scored: the raw output, the
    log-likelihood of each choice, why generation stopped, retries, end-to-end latency,
    and a flag when it is scored but should not be trusted blindly (``truncated``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    #: The model's text exactly as returned (before the task parsed it into a prediction).
    output: str | None = None
    #: Per choice / continuation, in the task's order: summed log-probability.
    choice_logprobs: list[float] | None = None
    #: Per choice: whether greedy decoding would have produced it.
    greedy_match: list[bool] | None = None
    #: A classifier head's score per label.
    label_scores: dict[str, float] | None = None
    finish_reason: str | None = None
    #: Requests sent for this answer when not 1 (retries); a cached answer sent none.
    attempts: int | None = None
    latency_total_s: float | None = None
    flag: str | None = None
    cached: bool = False


class SampleRecord(BaseModel):
    """One sample of a run: what was asked (the prompt as sent to the adapter), what came
    back (``answer``), what the task parsed from it (``prediction``), its per-metric
    statistics (``stats``: metric name -> that metric's per-sample statistics, nothing
    else) and its slice (the task's ``slice_by`` value)."""

    model_config = ConfigDict(frozen=True)

    idx: int
    sample_id: str
    input: str
    prompt: str
    prediction: str | None
    references: list[str]
    stats: dict[str, Any]
    error: str | None = None
    latency_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    answer: AnswerInfo = Field(default_factory=AnswerInfo)
    slice: str | None = None

    @field_validator("answer", mode="before")
    @classmethod
    def _null_answer(cls, value: Any) -> Any:
        return {} if value is None else value  # rows written before revision 0003


class StoredMetric(BaseModel):
    """A metric value as stored, with the metric (and its arguments) that computed it."""

    model_config = ConfigDict(frozen=True)

    value: MetricValue
    metric: str
    metric_args: dict[str, Any] = Field(default_factory=dict)
