"""Typed per-sample record: how the answer came about and the slice get columns of their own.

Before this revision a sample's ``stats`` held, beside each metric's statistics, two private
keys: ``_answer`` (finish reason, attempts, end-to-end latency, flag) and ``_slice`` (the
task's ``slice_by`` value), which every reader had to know to skip or pick. They move to
``samples.answer`` (JSON, ``store.models.AnswerInfo``) and ``samples.slice``, so ``stats``
holds metric statistics only. Rows are rewritten in slices of a few thousand, so a large
store is migrated without holding it in memory.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

#: The keys as revisions up to 0002 wrote them into ``stats`` (only this script spells them).
_OLD_ANSWER, _OLD_SLICE = "_answer", "_slice"
_ROWS = 2000

_samples = sa.table("samples", sa.column("run_id", sa.String), sa.column("idx", sa.Integer),
                    sa.column("stats", sa.JSON), sa.column("answer", sa.JSON), sa.column("slice", sa.Text))


def upgrade() -> None:
    op.add_column("samples", sa.Column("answer", sa.JSON))
    op.add_column("samples", sa.Column("slice", sa.Text))
    conn = op.get_bind()
    last: tuple[str, int] | None = None
    while True:
        q = sa.select(_samples.c.run_id, _samples.c.idx, _samples.c.stats).order_by(
            _samples.c.run_id, _samples.c.idx).limit(_ROWS)
        if last is not None:
            q = q.where(sa.tuple_(_samples.c.run_id, _samples.c.idx) > sa.tuple_(*last))
        rows = conn.execute(q).all()
        if not rows:
            return
        for run_id, idx, stats in rows:
            if not isinstance(stats, dict) or not ({_OLD_ANSWER, _OLD_SLICE} & stats.keys()):
                continue
            rest = {k: v for k, v in stats.items() if k not in (_OLD_ANSWER, _OLD_SLICE)}
            conn.execute(_samples.update().where(_samples.c.run_id == run_id, _samples.c.idx == idx).values(
                stats=rest, answer=stats.get(_OLD_ANSWER), slice=stats.get(_OLD_SLICE)))
        last = (rows[-1][0], rows[-1][1])


def downgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(_samples.c.run_id, _samples.c.idx, _samples.c.stats, _samples.c.answer,
                                  _samples.c.slice)).all()
    for run_id, idx, stats, answer, slice_ in rows:
        old = dict(stats or {})
        if answer:
            old[_OLD_ANSWER] = answer
        if slice_ is not None:
            old[_OLD_SLICE] = slice_
        conn.execute(_samples.update().where(_samples.c.run_id == run_id, _samples.c.idx == idx).values(stats=old))
    op.drop_column("samples", "slice")
    op.drop_column("samples", "answer")
