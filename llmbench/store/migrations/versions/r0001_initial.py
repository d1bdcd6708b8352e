"""The schema as llmbench wrote it before stores were versioned: runs, samples, metrics.

A store made by that code has these tables and no ``alembic_version``; opening it stamps
this revision and upgrades from here.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("batch_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("finished_at", sa.String(32)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("model_kind", sa.String(32), nullable=False),
        sa.Column("model_identity", sa.JSON, nullable=False),
        sa.Column("task", sa.String(200), nullable=False),
        sa.Column("task_kind", sa.String(32), nullable=False),
        sa.Column("task_version", sa.Integer, nullable=False),
        sa.Column("task_fingerprint", sa.String(32), nullable=False),
        sa.Column("scoring_mode", sa.String(32), nullable=False),
        sa.Column("scoring_method", sa.String(64), nullable=False),
        sa.Column("primary_metric", sa.String(64), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("environment", sa.JSON, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("n_samples", sa.Integer),
        sa.Column("n_errors", sa.Integer),
        sa.Column("cache_hits", sa.Integer),
        sa.Column("cache_misses", sa.Integer),
        sa.Column("usage", sa.JSON, nullable=False),
    )
    op.create_index("ix_runs_batch_id", "runs", ["batch_id"])
    op.create_index("ix_runs_task", "runs", ["task"])
    op.create_table(
        "samples",
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
    op.create_table(
        "metrics",
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


def downgrade() -> None:
    op.drop_table("metrics")
    op.drop_table("samples")
    op.drop_table("runs")
