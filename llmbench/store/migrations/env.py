"""Alembic's entry point, run by ``llmbench.store.schema`` (never by the ``alembic`` command).

The caller hands over an open connection that already holds the store's migration lock
(``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL), so this only runs the
migrations on it; there is no alembic.ini and no URL here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

connection = context.config.attributes["connection"]
assert isinstance(connection, sa.Connection)
context.configure(connection=connection, target_metadata=None, transactional_ddl=True,
                  transaction_per_migration=False)
with context.begin_transaction():  # the caller's transaction: a no-op here
    context.run_migrations()
