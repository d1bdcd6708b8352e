"""The leaderboard in a real headless Chromium, opened from file:// with no network.

Debian's ``chromium`` is driven by the ``playwright`` package (never ``playwright install``).
The store holds model output and a model name that try to run script; the page must show
them as text, and a flag their script would set must stay undefined.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from report_fixtures import BROWSER_MARKS, XSS_INPUT, XSS_PREDICTION, build_demo_store

from llmbench.report import leaderboard
from llmbench.report.html import task_slug, write_site
from llmbench.store import ResultStore

EVIL_NAME = '<img src=x onerror="window.__xss = 4">'

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site")
    build_demo_store(root, xss_model_name=True)
    board = leaderboard.build(ResultStore(root / "demo.sqlite"), n_resamples=200)
    return write_site(board, root / "leaderboard").parent


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


def _group(page: Any, body: str) -> list[str]:
    return page.eval_on_selector_all(f"#overview tbody.{body} tr:not(.filtered-out) .model-name",
                                     "els => els.map(e => e.textContent)")


def test_overview_renders_from_file_and_sorts(site: Path, watched: Watched) -> None:
    page = watched.open(site / "index.html")
    before = _models(page)
    assert len(before) == 7 and EVIL_NAME in before  # the hostile name is there, as text
    assert page.locator("#overview td.best").count() == 3 and page.locator("#overview td.tied").count() >= 1
    refs = ["baseline:first-sentence", "baseline:majority", "baseline:random"]
    assert _group(page, "refs") == refs and not set(refs) & set(_group(page, "ranked"))
    page.click("#overview thead th:nth-child(3) button")  # sentiment_mini: best first
    first = _group(page, "ranked")
    assert first[:2] == ["gpt-4o-mini", "minilm-l6-finetuned"]
    assert first[-1] == "smollm2-135m-instruct"  # QA only: last, unknown values always last
    assert _group(page, "refs") == ["baseline:majority", "baseline:random", "baseline:first-sentence"]
    assert page.get_attribute("#overview thead th:nth-child(3)", "aria-sort") == "descending"
    page.click("#overview thead th:nth-child(3) button")
    again = _group(page, "ranked")
    assert again[0] == EVIL_NAME and again[-1] == "smollm2-135m-instruct"
    assert _group(page, "refs")[0] == "baseline:random"  # baselines sort within their own group
    page.click("#overview thead th:nth-child(1) button")  # model name, A→Z, each group on its own
    assert _group(page, "ranked") == sorted(_group(page, "ranked"), key=str.lower)
    assert _group(page, "refs") == refs
    watched.assert_clean()


def test_kind_filter_drops_empty_rows_and_reranks(site: Path, watched: Watched) -> None:
    page = watched.open(site / "index.html")
    ranks = "#overview tbody.ranked tr:not(.filtered-out) td.rank .pos"
    page.select_option("#kind-filter", "qa")
    assert not page.is_visible("#overview thead th[data-kind=classification]")
    assert page.is_visible("#overview thead th[data-kind=qa]")
    # Only the models that ran the QA task remain, ranked over it alone.
    assert _group(page, "ranked") == ["gpt-4o-mini", "smollm2-135m-instruct"]
    assert page.eval_on_selector_all(ranks, "els => els.map(e => e.textContent)") == ["#1", "#2"]
    first_rank = page.locator("#overview tbody.ranked tr:not(.filtered-out) td.rank").first
    assert "1/1 tasks" in first_rank.text_content()
    assert _group(page, "refs") == ["baseline:first-sentence"]
    page.select_option("#kind-filter", "classification")
    assert "smollm2-135m-instruct" not in _group(page, "ranked") and "baseline:first-sentence" not in _group(
        page, "refs")
    assert _group(page, "ranked")[:2] == ["gpt-4o-mini", "minilm-l6-finetuned"]  # both best on the one task
    page.select_option("#kind-filter", "all")
    assert page.is_visible("#overview thead th[data-kind=classification]") and len(_models(page)) == 7
    assert page.eval_on_selector_all(ranks, "els => els.map(e => e.textContent)")[0] == "#1"
    assert "2/2 tasks" in first_rank.text_content()
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
    assert n > 0 and f"{n} of 40 shared samples: answers differ" in page.text_content("#sbs-count")
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


def _ids(page: Any, table: str) -> list[str]:
    return page.eval_on_selector_all(f"{table} tbody tr", "els => els.map(e => e.dataset.id)")


def test_side_by_side_filters_by_right_and_wrong(site: Path, watched: Watched) -> None:
    """Each outcome lists exactly the samples the stored scores put there (right: score >= half
    the full mark), and two models both at 0 are 'both wrong', not a disagreement."""
    board = leaderboard.build(ResultStore(site.parent / "demo.sqlite"), n_resamples=0)
    preds = board.tasks["qa_mini"].predictions
    a, b = preds["gpt-4o-mini"], preds["smollm2-135m-instruct"]
    right = {m: {i for i, p in ps.items() if p["s"] is not None and p["s"] >= 50} for m, ps in
             (("a", a), ("b", b))}
    shared = sorted(a.keys() & b.keys())
    expect = {"only-a": [i for i in shared if i in right["a"] and i not in right["b"]],
              "only-b": [i for i in shared if i in right["b"] and i not in right["a"]],
              "both-wrong": [i for i in shared if i not in right["a"] and i not in right["b"]],
              "both-right": [i for i in shared if i in right["a"] and i in right["b"]]}
    assert expect["only-a"] and expect["both-wrong"] and expect["both-right"]
    page = watched.open(site / task_slug("qa_mini"))
    page.select_option("#sbs-a", "gpt-4o-mini")
    page.select_option("#sbs-b", "smollm2-135m-instruct")
    for outcome, ids in expect.items():
        page.select_option("#sbs-show", outcome)
        assert sorted(_ids(page, "#sbs-table")) == ids, outcome
    tally = page.text_content("#sbs-tally")
    assert f"both wrong {len(expect['both-wrong'])}" in tally and f"only A right {len(expect['only-a'])}" in tally
    # Per-sample scores are on the metric's declared scale (SQuAD F1 0-100), as in the table.
    scores = page.eval_on_selector_all("#sbs-table td.pred .score-tag", "els => els.map(e => e.textContent)")
    assert "100.0" in scores and all("." in s and len(s.split(".")[1]) == 1 for s in scores)
    # The passage a QA answer is judged against is on the page.
    assert "City number" in page.text_content("#sbs-table tbody tr:first-child td.input")
    watched.assert_clean()


def test_pareto_toggle_counts_baselines_only_when_asked(site: Path, watched: Watched) -> None:
    page = watched.open(site / "charts.html")
    pane = page.locator(".chart-pane").first
    display = "e => getComputedStyle(e).display"
    models_front, all_front = pane.locator("path.front-models"), pane.locator("path.front-all")
    assert models_front.evaluate(display) != "none" and all_front.evaluate(display) == "none"
    assert pane.locator("g.pt.ref").count() >= 1 and pane.locator("g.pt.ref.on-front").count() == 0
    fastest = pane.locator("g.pt.ref.on-front-all circle").first  # a baseline at microseconds
    fill = "e => getComputedStyle(e).fill"
    assert fastest.evaluate(fill) == "rgb(255, 255, 255)"  # drawn off the front by default
    pane.locator("input.front-refs").check()
    assert all_front.evaluate(display) != "none" and models_front.evaluate(display) == "none"
    assert fastest.evaluate(fill) != "rgb(255, 255, 255)"
    watched.assert_clean()


def test_trend_legend_brings_one_band_forward(site: Path, watched: Watched) -> None:
    """Overlapping CI bands stay faint; hovering a legend entry lifts that model's band and line
    and fades the others, so each band can be read on its own."""
    page = watched.open(site / "charts.html")
    box = page.locator(".chart-box").nth(1)  # the first task's trend
    item = box.locator("ul.chart-legend li[data-c]").first
    color = item.get_attribute("data-c")
    bands = box.locator("path.band")
    assert bands.count() >= 2
    item.hover()
    assert "focus" in (box.locator("svg.chart").get_attribute("class") or "")
    lifted = box.locator(f"path.band.c{color}.on")
    assert lifted.count() == 1 and box.locator("path.band.on").count() == 1
    opacity = "e => parseFloat(getComputedStyle(e).opacity)"
    other = box.locator(f"path.band:not(.c{color})").first
    assert lifted.evaluate(opacity) > other.evaluate(opacity)
    page.mouse.move(0, 0)
    assert box.locator("path.band.on").count() == 0
    watched.assert_clean()
