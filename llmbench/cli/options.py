"""What every command group shares: the consoles, ``--store``, KEY=VALUE parsing."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
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


def check_run_args(*, models: Sequence[str], seed: int | None, resamples: int | None, tags: Sequence[str],
                   json_dir: Path | None, base_url: str | None = None) -> None:
    """``llmbench run``'s arguments that are cheap to check, checked before any file is read,
    model loaded or run row written (each used to fail after the run was stored, or hang)."""
    from llmbench.suite import MAX_RESAMPLES, MAX_SEED

    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise UserError(f"--seed {seed} is out of range — use a whole number from 0 to {MAX_SEED}")
    if resamples is not None and resamples > MAX_RESAMPLES:
        raise UserError(f"--resamples {resamples} is more than {MAX_RESAMPLES:,} — 1,000 (the default) gives "
                        "stable 95% intervals; use at most 10,000")
    seen = [m for i, m in enumerate(models) if m in models[:i]]
    if seen:
        raise UserError(f"--model '{seen[0]}' is given twice — give each model once (rerun to repeat a run)")
    for tag in tags:
        if not tag.strip() or "," in tag:
            raise UserError(f"--tag {tag!r} is not a tag — give one non-empty word per --tag, e.g. --tag nightly "
                            "--tag gpu (no commas)")
    if json_dir is not None:
        check_writable_folder(json_dir, "--json-dir")
    if base_url is not None:
        check_base_url(base_url)


def check_base_url(url: str) -> None:
    """``htp:/x`` used to be retried for 11 s and stored as an incomplete run."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as err:
        raise UserError(f"--base-url '{url}' is not a URL ({err}) — give http(s)://HOST[:PORT]/v1") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"--base-url '{url}' is not an http(s) URL with a host — give e.g. "
                        "http://localhost:8000/v1")


def check_writable_folder(folder: Path, flag: str) -> None:
    """Create ``folder`` (as the export would) and write a probe file in it, before the work
    whose output goes there, so a finished run never ends in a permission error. Asking
    ``os.access`` is not enough: it says yes to root and to /proc."""
    import tempfile

    if folder.exists() and not folder.is_dir():
        raise UserError(f"{flag} '{folder}' is a file — give a folder (created if missing)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise UserError(f"{flag} '{folder}' cannot be written ({err.strerror or type(err).__name__}) — give a "
                        "folder you can write to") from None
