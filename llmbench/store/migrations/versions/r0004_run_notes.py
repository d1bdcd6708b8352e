"""A run's notes: how the model's adapter actually computed its answers.

``runs.notes`` (JSON, a list of sentences, ``ModelAdapter.take_scoring_notes``) records the
fallbacks a run took that a reader of its results should know, e.g. a model whose KV cache
cannot be shared row-wise answered through transformers' ``generate``. Nullable: rows of older
runs have none, and readers take a missing list as empty.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no default): SQLite and PostgreSQL both do it in place.
    op.add_column("runs", sa.Column("notes", sa.JSON))


def downgrade() -> None:
    op.drop_column("runs", "notes")
