"""Fixtures for the report tests: stores of real runs (see report_fixtures) and a CLI runner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from click.testing import CliRunner

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
    from llmbench.cli.main import app
    from llmbench.cli.report import register

    register(app)
    return app


class _Boundary:
    """What ``CliRunner`` invokes: the console script's ``main``, error boundary included, so
    exit codes and one-line errors are the user's, not typer's."""

    name = "llmbench"

    def main(self, args: list[str], prog_name: str | None = None, **_: object) -> None:
        from llmbench.cli.main import main

        main(list(args))


@pytest.fixture
def invoke(cli_app: typer.Typer):  # type: ignore[no-untyped-def]
    runner = CliRunner(env={"COLUMNS": "240", "NO_COLOR": "1", "TERM": "dumb"})

    def call(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(_Boundary(), [str(a) for a in args])  # type: ignore[arg-type]

    return call


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module (the browser tests' only launch code)."""
    from playwright.sync_api import sync_playwright
    from report_fixtures import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
