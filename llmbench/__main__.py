"""``python -m llmbench``: the same as the ``llmbench`` console script."""

from llmbench.cli.main import entry

entry()
