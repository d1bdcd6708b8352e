"""The charts page's budget filter and the task page's breakdowns in a real headless Chromium
(file://, no network): a budget fades the models above it and names the best one within it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from report_fixtures import BROWSER_MARKS, classifier, run, write_cls_task

from llmbench.report import html, leaderboard
from llmbench.store import ResultStore

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("budget")
    store = ResultStore(root / "db.sqlite")
    cls = write_cls_task(root / "tasks", n=20)
    run(store, cls, classifier("a", set(), cost=0.002, latency=0.5), "openai:a", label="pricey")
    run(store, cls, classifier("b", {"s01", "s02"}, cost=0.0005, latency=0.1), "openai:b", label="cheap")
    run(store, cls, classifier("c", {"s01", "s02", "s03", "s04"}, cost=0.0001, latency=0.05), "openai:c",
        label="cheapest")
    html.write_site(leaderboard.build(store, n_resamples=100), root / "site")
    return root / "site"


@pytest.fixture
def page(site: Path, browser: Any) -> Iterator[Any]:
    pg = browser.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield pg
    pg.close()
    assert errors == []


def test_budget_fades_models_above_it_and_names_the_best_within(site: Path, page: Any) -> None:
    page.goto((site / "charts.html").as_uri())
    page.select_option("select.chart-x", "cost")
    pane = page.locator('.chart-pane[data-x="cost"]')
    budget = pane.locator("input.budget-max")
    assert pane.locator(".budget-best").text_content() == ""
    budget.fill("0.02")  # run cost: pricey 0.04, cheap 0.01, cheapest 0.002
    assert pane.locator(".budget-best").text_content() == "best within the budget: cheap"
    faded = pane.locator("g.pt.over-budget").evaluate_all("gs => gs.map(g => g.getAttribute('data-model'))")
    assert faded == ["pricey"]
    budget.fill("0.001")
    assert pane.locator(".budget-best").text_content() == "no model within the budget"
    budget.fill("")
    assert pane.locator("g.pt.over-budget").count() == 0 and pane.locator(".budget-best").text_content() == ""
