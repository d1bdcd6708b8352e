"""What every command group shares: the consoles, ``--store``, KEY=VALUE parsing."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from llmbench.errors import UserError
from llmbench.store import DEFAULT_DB

# Piped output (CI logs, files) gets 240 columns instead of rich's 80, so tables such as
# `llmbench runs` keep whole model and task names; COLUMNS still wins when set.
console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 240)
err_console = Console(stderr=True)

StoreOpt = Annotated[str, typer.Option("--store", help="SQLite path or SQLAlchemy URL of the results store.",
                                       envvar="LLMBENCH_STORE")]
DEFAULT_STORE = str(DEFAULT_DB)


def parse_kv(pairs: list[str], flag: str) -> dict[str, Any]:
    """``KEY=VALUE`` options, each value read as YAML (``dtype=bfloat16``, ``concurrency=8``)."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"{flag} '{pair}' must look like KEY=VALUE")
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise UserError(f"{flag} '{pair}': the value is not valid YAML — quote it, "
                            f"e.g. {key}='\"{value}\"'") from None
    return out
