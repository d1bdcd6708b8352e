"""The ``llmbench`` command line, one module per command group; ``main`` is the boundary."""

from llmbench.cli.main import app, entry, main

__all__ = ["app", "entry", "main"]
