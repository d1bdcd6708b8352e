"""The leaderboard in a real headless Chromium, opened from file:// with no network.

Debian's ``chromium`` is driven by the ``playwright`` package (never ``playwright install``).
The store holds model output and a model name that try to run script; the page must show
them as text, and a flag their script would set must stay undefined.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from report_fixtures import XSS_INPUT, XSS_PREDICTION, build_demo_store

from llmbench.report import leaderboard
from llmbench.report.html import task_slug, write_site
from llmbench.store import ResultStore

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
EVIL_NAME = '<img src=x onerror="window.__xss = 4">'

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"{CHROMIUM} missing — `apt-get install -y chromium` (never `playwright install`)"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None,
                       reason="playwright missing — `pip install playwright` (the test extra)"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site")
    build_demo_store(root, xss_model_name=True)
    board = leaderboard.build(ResultStore(root / "demo.sqlite"), n_resamples=200)
    return write_site(board, root / "leaderboard").parent


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Watched:
    """A page plus everything that should never happen on it: console errors, uncaught
    exceptions, dialogs (alert/confirm) and any request that is not a local file."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1360, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._dialog)
        self.page.on("request", lambda r: self.requests.append(r.url))

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self, path: Path) -> Any:
        self.page.goto(path.as_uri())
        self.page.wait_for_load_state("load")
        return self.page

    def assert_clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.dialogs == [], self.dialogs
        assert all(u.startswith(("file://", "data:")) for u in self.requests), self.requests
        assert self.page.evaluate("typeof window.__xss") == "undefined"


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    w = Watched(browser)
    yield w
    w.context.close()


def _models(page: Any) -> list[str]:
    return page.eval_on_selector_all("#overview tbody tr .model-name", "els => els.map(e => e.textContent)")


def test_overview_renders_from_file_and_sorts(site: Path, watched: Watched) -> None:
    page = watched.open(site / "index.html")
    before = _models(page)
    assert len(before) == 7 and EVIL_NAME in before  # the hostile name is there, as text
    assert page.locator("#overview td.best").count() == 3 and page.locator("#overview td.tied").count() >= 1
    page.click("#overview thead th:nth-child(3) button")  # sentiment_mini: best first
    first = _models(page)
    assert first != before and first[:2] == ["gpt-4o-mini", "minilm-l6-finetuned"]
    never_ran = {"baseline:first-sentence", "smollm2-135m-instruct"}  # QA only: always last
    assert set(first[-2:]) == never_ran
    assert page.get_attribute("#overview thead th:nth-child(3)", "aria-sort") == "descending"
    page.click("#overview thead th:nth-child(3) button")
    again = _models(page)
    assert again[0] == "baseline:random" and set(again[-2:]) == never_ran
    page.click("#overview thead th:nth-child(1) button")  # model name, A→Z
    assert _models(page) == sorted(before, key=str.lower)
    watched.assert_clean()


def test_kind_filter_hides_other_columns(site: Path, watched: Watched) -> None:
    page = watched.open(site / "index.html")
    page.select_option("#kind-filter", "qa")
    assert not page.is_visible("#overview thead th[data-kind=classification]")
    assert page.is_visible("#overview thead th[data-kind=qa]")
    page.select_option("#kind-filter", "all")
    assert page.is_visible("#overview thead th[data-kind=classification]")
    watched.assert_clean()


def test_sample_browser_search_and_xss_stays_text(site: Path, watched: Watched) -> None:
    page = watched.open(site / task_slug("qa_mini"))
    rows = "#sb-table tbody tr"
    assert page.locator(rows).count() == 30
    page.fill("#sb-search", "number 7?")
    assert page.eval_on_selector_all(rows, "els => els.map(e => e.dataset.id)") == ["q07"]
    assert "Showing 1 of 1" in page.text_content("#sb-count")
    page.fill("#sb-search", "")
    page.select_option("#sb-model", "smollm2-135m-instruct")
    page.fill("#sb-search", "window.__xss")  # the payload is searchable text
    ids = page.eval_on_selector_all(rows, "els => els.map(e => e.dataset.id)")
    assert ids == ["q00", "q01"]
    shown = page.eval_on_selector_all(f"{rows} td.pred .txt", "els => els.map(e => e.textContent)")
    assert XSS_PREDICTION in shown
    assert XSS_INPUT in page.eval_on_selector_all(f"{rows} td.input .txt", "els => els.map(e => e.textContent)")
    assert page.evaluate("document.querySelectorAll('img, iframe, object, embed').length") == 0
    assert page.evaluate("document.scripts.length") == 2  # the data block and app.js, nothing injected
    watched.assert_clean()


def test_side_by_side_lists_disagreements(site: Path, watched: Watched) -> None:
    page = watched.open(site / task_slug("sentiment_mini"))
    page.select_option("#sbs-a", "gpt-4o-mini")
    page.select_option("#sbs-b", "baseline:majority")
    rows = page.locator("#sbs-table tbody tr")
    n = rows.count()
    assert n > 0 and f"{n} of 40 shared samples differ" in page.text_content("#sbs-count")
    pairs = page.eval_on_selector_all("#sbs-table tbody tr", "els => els.map(r => "
                                      "[r.cells[3].querySelector('.txt').textContent,"
                                      " r.cells[4].querySelector('.txt').textContent])")
    assert all(a != b for a, b in pairs)
    page.select_option("#sbs-b", "gpt-4o-mini")
    assert rows.count() == 0 and "Pick two different models" in page.text_content("#sbs-count")
    watched.assert_clean()


def test_charts_page_and_screenshot(site: Path, watched: Watched, tmp_path: Path) -> None:
    page = watched.open(site / "charts.html")
    assert page.locator("svg.chart").count() >= 4
    assert page.locator("svg.chart path.front").count() >= 2  # a Pareto front per task
    assert page.locator("svg.chart path.band").count() >= 2  # CI bands of the trend
    page.select_option("select.chart-x >> nth=0", "cost")
    assert page.locator(".chart-pane[data-x=cost]").first.is_visible()
    watched.assert_clean()
    page = watched.open(site / "index.html")
    shot = tmp_path / "overview.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
