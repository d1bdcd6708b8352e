"""Fixtures for the report tests: stores of real runs (see report_fixtures) and a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from llmbench.store import ResultStore


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from report_fixtures import build_demo_store

    root = tmp_path_factory.mktemp("demo")
    build_demo_store(root)
    return root


@pytest.fixture(scope="session")
def demo_store(demo_root: Path) -> ResultStore:
    return ResultStore(demo_root / "demo.sqlite")


@pytest.fixture(scope="session")
def cli_app() -> typer.Typer:
    """The real ``llmbench`` app with the report commands registered, as ``main()`` does."""
    from llmbench.cli import app
    from llmbench.report.cli import register

    register(app)
    return app


@pytest.fixture
def invoke(cli_app: typer.Typer):  # type: ignore[no-untyped-def]
    runner = CliRunner(env={"COLUMNS": "240", "NO_COLOR": "1", "TERM": "dumb"})

    def call(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(cli_app, [str(a) for a in args])

    return call
