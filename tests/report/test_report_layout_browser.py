"""The site's layout in a real headless Chromium at 1400 px and 400 px (file://, no network).

At both widths no page scrolls sideways (``scrollWidth <= innerWidth``); at 1400 px the
five-task overview fits its container with every column visible; at 400 px the sticky header
stays small and sample cells stack instead of breaking words. Screenshots of each page go to
``$LLMBENCH_SHOTS`` (default: the test's tmp folder) for a person to look at.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from report_fixtures import BROWSER_MARKS, WIDE_TASKS, build_wide_store

from llmbench.report import leaderboard
from llmbench.report.html import task_slug, write_site
from llmbench.store import ResultStore

pytestmark = BROWSER_MARKS

PAGES = ("index.html", "charts.html", task_slug("qa_wide"), task_slug(WIDE_TASKS[0]))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wide-site")
    board = leaderboard.build(build_wide_store(root), n_resamples=100)
    return write_site(board, root / "site").parent


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("LLMBENCH_SHOTS") or tmp_path_factory.mktemp("shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _page(browser: Any, width: int) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return context, page, errors


def _overflow(page: Any) -> tuple[int, int]:
    return page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")


@pytest.mark.parametrize("width", [1400, 400])
def test_no_page_scrolls_sideways(site: Path, browser: Any, shots: Path, width: int) -> None:
    context, page, errors = _page(browser, width)
    try:
        for name in PAGES:
            page.goto((site / name).as_uri())
            scroll, inner = _overflow(page)
            assert scroll <= inner, f"{name} at {width} px is {scroll} px wide"
            page.screenshot(path=str(shots / f"{width}-{name.removesuffix('.html')}.png"), full_page=width == 1400)
        assert errors == []
    finally:
        context.close()


def test_overview_fits_its_container_at_1400(site: Path, browser: Any) -> None:
    context, page, _ = _page(browser, 1400)
    try:
        page.goto((site / "index.html").as_uri())
        table, box = page.evaluate("(() => { const t = document.querySelector('#overview');"
                                   " return [t.scrollWidth, t.parentElement.clientWidth]; })()")
        assert table <= box, f"overview table {table} px in a {box} px container"
        heads = page.eval_on_selector_all("#overview thead th", "els => els.map(e => e.textContent.trim())")
        assert heads[0].startswith("Model") and heads[-1].startswith("Latency") and any(h.startswith("Cost")
                                                                                         for h in heads)
        last = page.locator("#overview thead th").last.bounding_box()
        assert last is not None and last["x"] + last["width"] <= 1400
    finally:
        context.close()


def test_narrow_screen_header_legend_and_samples(site: Path, browser: Any) -> None:
    context, page, errors = _page(browser, 400)
    try:
        page.goto((site / "index.html").as_uri())
        # Every tab in view without scrolling sideways (a scrolling strip showed three of eight).
        tabs = page.locator("nav.tabs a")
        assert tabs.count() == 2 + len(WIDE_TASKS) + 1
        for i in range(tabs.count()):
            box = tabs.nth(i).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 400, tabs.nth(i).text_content()
            assert tabs.nth(i).is_visible()
        header = page.evaluate("document.querySelector('header.top').getBoundingClientRect().height")
        assert header <= 120, f"header {header} px tall at 400 px"
        legend = page.evaluate("document.querySelector('.legend').scrollWidth")
        assert legend <= 400
        # The model column stays in view while the task columns scroll under it.
        page.evaluate("document.querySelector('.table-scroll').scrollLeft = 400")
        model = page.locator("#overview tbody td.col-model").first.bounding_box()
        assert model is not None and 0 <= model["x"] < 40
        page.goto((site / task_slug("qa_wide")).as_uri())
        cell = page.locator("#sb-table tbody tr:first-child td.input .txt").first
        box = cell.bounding_box()
        assert box is not None and box["width"] > 200  # stacked: the text has the card's width
        words = page.evaluate("""(() => {
            const node = document.querySelector('#sb-table tbody tr:first-child td.input .txt');
            const range = document.createRange(); const text = node.firstChild; const broken = [];
            for (const m of text.textContent.matchAll(/\\S+/g)) {
              range.setStart(text, m.index); range.setEnd(text, m.index + m[0].length);
              if (range.getClientRects().length > 1) broken.push(m[0]);
            }
            return broken; })()""")
        assert words == []  # no word split over two lines
        assert errors == []
    finally:
        context.close()


def test_comparability_marks_in_the_page(site: Path, browser: Any) -> None:
    context, page, _ = _page(browser, 1400)
    try:
        page.goto((site / "index.html").as_uri())
        nc = page.locator("#overview td.cell.nc")
        assert nc.count() == 1 and page.locator("#overview td.cell.nc.best").count() == 0
        # The reason is written in the cell (visible without hover, e.g. on a touch screen).
        assert nc.first.locator(".why").is_visible()
        assert "another sample set (12 scored samples, the column compares 24)" in nc.first.inner_text()
        mode = page.locator("#overview tbody.ranked td.cell[data-mode=loglikelihood]")
        assert mode.count() == 1 and "scored by loglikelihood" in mode.first.inner_text()
        # Filterable, never excluded: picking a mode hides the models with no cell in it.
        page.select_option("#mode-filter", "loglikelihood")
        shown = [n for n in page.eval_on_selector_all("#overview tbody.ranked tr:not(.mode-hidden) .model-name",
                                                      "els => els.map(e => e.textContent)")]
        assert shown == ["other-scoring"]
        page.select_option("#mode-filter", "all")
        ranked = page.eval_on_selector_all("#overview tbody.ranked .model-name", "els => els.map(e => e.textContent)")
        assert ranked.index("all-five-tasks") < ranked.index("one-task-only")
        assert page.locator("#overview tbody.refs td.best").count() == sum(
            1 for c in leaderboard.build(ResultStore(site.parent / "wide.sqlite"), n_resamples=100).columns
            if c.best_is_baseline)
        assert "same weights as smollm2-135m-instruct" in page.text_content("#overview")
        page.goto((site / task_slug(WIDE_TASKS[2])).as_uri())
        assert "another sample set" in page.locator("table.metrics .nc-note").first.inner_text()
    finally:
        context.close()
