"""The leaderboard's Ratings page in a real headless Chromium (file://, no network): a suite whose
``judge:`` compares three models pairwise, then every model's Bradley–Terry rating with its CI,
raw and length-controlled win rate, comparisons and consistency — the numbers of the ratings
view (``report.ratings``), best first, linked from every page's tabs."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from report_fixtures import BROWSER_MARKS

from llmbench.report import html, leaderboard
from llmbench.store import ResultStore

pytestmark = BROWSER_MARKS

for _folder in ("models", "judge"):  # the scripted judge and its server thread
    if str(Path(__file__).parents[1] / _folder) not in sys.path:
        sys.path.insert(0, str(Path(__file__).parents[1] / _folder))

ROWS = [
    {"id": "good", "document": "Good summary here. More details follow.", "summary": "Good summary here."},
    {"id": "bad", "document": "This is bad. Extra words.", "summary": "Something else."},
    {"id": "plain", "document": "Neutral text. And more of it here.", "summary": "Other text."},
    {"id": "single", "document": "Single sentence only.", "summary": "One sentence."},
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, leaderboard.Leaderboard]:
    from fault_server import ServerThread
    from judge_server import judge_app

    from llmbench.cli.main import main

    root = tmp_path_factory.mktemp("ratings")
    (root / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS))
    (root / "task.yaml").write_text("name: judged_demo\nkind: summarization\ndataset: {path: rows.jsonl}\n"
                                    "fields: {id: id, input: document, target: summary}\nmetrics: [rouge]\n")
    with ServerThread(judge_app()) as server, pytest.MonkeyPatch.context() as mp:
        (root / "suite.yaml").write_text(
            "name: rated\nn_resamples: 30\nmodels: [baseline:copy, baseline:lead, baseline:first-sentence]\n"
            "tasks: [task.yaml]\n"
            f"judge: {{model: openai:judge-1, mode: pairwise, options: {{base_url: '{server.url}'}}}}\n")
        mp.setenv("OPENAI_API_KEY", "EMPTY")
        mp.setenv("LLMBENCH_CACHE", str(root / "cache"))
        mp.setenv("LLMBENCH_STORE", str(root / "db.sqlite"))
        with pytest.raises(SystemExit) as done:
            main(["run", "--suite", str(root / "suite.yaml")])
        assert done.value.code in (0, None)
    lb = leaderboard.build(ResultStore(root / "db.sqlite"), n_resamples=30)
    html.write_site(lb, root / "site")
    return root / "site", lb


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    pg = browser.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield pg
    pg.close()
    assert errors == []


def test_the_ratings_page_lists_every_model_with_the_views_numbers(site: tuple[Path, Any], page: Any) -> None:
    folder, lb = site
    (view,) = lb.ratings
    assert view["task"] == "judged_demo" and len(view["runs"]) == 3  # every pair of the three models
    page.goto((folder / "index.html").as_uri())
    page.click("nav.tabs a:text('Ratings')")
    assert page.url.endswith("ratings.html")
    section = page.locator("section.ratings")
    assert section.locator("h2").text_content().startswith("judged_demo")
    rows = section.locator("tbody tr")
    shown = rows.evaluate_all("rs => rs.map(r => [...r.cells].map(c => c.textContent.trim()))")
    expected = [[m["model"], f"{m['rating']:+.3f}", f"{m['ci_low']:+.3f} – {m['ci_high']:+.3f}",
                 f"{m['win_rate']:.3f}", f"{m['lc_win_rate']:.3f}", str(m["n_comparisons"]),
                 f"{m['consistency']:.3f}"] for m in view["models"]]
    assert shown == expected
    assert shown[-1][0] == "baseline:copy"  # the longest answers lose to this judge
    assert [float(r[1]) for r in shown] == sorted((float(r[1]) for r in shown), reverse=True)


def test_no_ratings_tab_without_pairwise_judgements(site: tuple[Path, Any], page: Any, tmp_path: Path) -> None:
    _, lb = site
    html.write_site(dataclasses.replace(lb, ratings=[]), tmp_path / "plain")
    assert not (tmp_path / "plain" / "ratings.html").exists()
    page.goto((tmp_path / "plain" / "index.html").as_uri())
    assert page.locator("nav.tabs a:text('Ratings')").count() == 0
