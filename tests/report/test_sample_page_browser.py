"""The sample page and the aggregate in a real headless Chromium, at 1,400 and 400 px.

From a task page's sample table, a click on a sample id opens the sample page, which shows
the input, the reference and, per model, everything the store kept (prediction, rendered
prompt, latency, tokens, ...). The overview states its aggregate and how it is defined.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from report_fixtures import BROWSER_MARKS

from llmbench.report import leaderboard
from llmbench.report.html import sample_slug, task_slug, write_site
from llmbench.store import ResultStore

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def site(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    board = leaderboard.build(ResultStore(demo_root / "demo.sqlite"), n_resamples=100)
    return write_site(board, tmp_path_factory.mktemp("sample-site") / "site").parent


def _open(browser: Any, width: int) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return context, page, errors


@pytest.mark.parametrize("width", [1400, 400])
def test_sample_page_from_a_task_cell(site: Path, browser: Any, width: int) -> None:
    context, page, errors = _open(browser, width)
    try:
        page.goto((site / task_slug("qa_mini")).as_uri())
        link = page.locator("#sb-table tbody tr td.sid a").nth(2)
        sid = link.text_content()
        link.click()
        page.wait_for_selector("#sp-models .sample-model")
        assert page.url.split("#")[0].endswith(sample_slug("qa_mini"))
        assert page.text_content("#sp-title") == f"Sample {sid}"
        assert page.locator("#sp-common dd").first.text_content() == f"Which city is number {int(sid[1:])}?"
        cards = page.locator("#sp-models .sample-model")
        assert cards.count() >= 3  # every model that answered the sample
        first = cards.first.inner_text()
        for field in ("prediction", "latency (s)"):
            assert field in first, first
        # The rendered prompt every model got is shown once, above the models' answers.
        assert "rendered prompt" in page.inner_text("#sp-common")
        assert page.locator("#sp-common .f-prompt").is_visible()
        assert "City number" in page.locator("#sp-common .f-prompt").inner_text()
        page.click("#sp-next")
        page.wait_for_function(f"document.getElementById('sp-title').textContent !== 'Sample {sid}'")
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll <= inner, f"sample page {scroll} px wide at {width}"
        assert errors == []
    finally:
        context.close()


@pytest.mark.parametrize("width", [1400, 400])
def test_aggregate_is_on_the_overview_with_its_definition(site: Path, browser: Any, width: int) -> None:
    context, page, errors = _open(browser, width)
    try:
        page.goto((site / "index.html").as_uri())
        agg = page.locator("#aggregate")
        agg.scroll_into_view_if_needed()
        assert agg.is_visible() and leaderboard.AGGREGATE_DEFINITION in agg.inner_text()
        wins = page.locator("#overview .win")
        assert wins.count() == page.locator("#overview tbody tr:not(.group)").count() > 0
        assert all(t.startswith("win ") for t in wins.all_inner_texts())
        assert page.locator("a.csv[href='overview.csv']").is_visible()
        if width == 1400:  # every column in view, Latency included
            last = page.locator("#overview thead th").last
            box = last.bounding_box()
            assert last.inner_text().startswith("Latency") and box is not None and box["x"] + box["width"] <= 1400
        assert errors == []
    finally:
        context.close()
