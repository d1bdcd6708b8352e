"""The store's one user error (a module of its own so schema, refs and db share it)."""

from __future__ import annotations

from llmbench.errors import UserError


class StoreError(UserError):
    """The store cannot be opened or written, or a run reference does not resolve; one line."""
