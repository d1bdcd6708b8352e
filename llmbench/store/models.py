"""The tables of the results store and the typed rows readers get back.

The tables describe the schema at the newest migration (``migrations/versions``); a change
here needs a new migration, which ``tests/store/test_migrations.py`` checks by comparing a
migrated store with these tables.
"""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

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


class RunInfo(BaseModel):
    """One stored run (a model on a task), as readers see it."""

    model_config = ConfigDict(frozen=True)

    id: str
    batch_id: str
    created_at: str
    finished_at: str | None
    status: str
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


class SampleRecord(BaseModel):
    """One sample of a run: what was asked, what came back, and its per-metric statistics."""

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


class StoredMetric(BaseModel):
    """A metric value as stored, with the metric (and its arguments) that computed it."""

    model_config = ConfigDict(frozen=True)

    value: MetricValue
    metric: str
    metric_args: dict[str, Any] = Field(default_factory=dict)
