"""The run lifecycle: why a run failed, and who runs it (host, pid) and when it last moved.

``reason`` holds the one-line error of a ``failed`` run; ``heartbeat_at``, ``host`` and
``pid`` let a reader tell a live ``running`` run from one whose process died
(``interrupted``). All nullable: rows of older runs simply have none.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no default): SQLite and PostgreSQL both do it in place.
    op.add_column("runs", sa.Column("reason", sa.Text))
    op.add_column("runs", sa.Column("heartbeat_at", sa.String(32)))
    op.add_column("runs", sa.Column("host", sa.String(255)))
    op.add_column("runs", sa.Column("pid", sa.Integer))


def downgrade() -> None:
    for column in ("pid", "host", "heartbeat_at", "reason"):
        op.drop_column("runs", column)
