"""The task page's breakdowns: a reliability diagram per model with calibration values, the
per-slice table with the best-worst gap, and the note when calibration was not computed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from report_fixtures import LABELS, ScriptedAdapter, gold_label, run

from llmbench.report import html, leaderboard
from llmbench.store import ResultStore
from llmbench.tasks import load_task

N = 30
TOPICS = ("sports", "music", "food")


def write_task(folder: Path) -> Path:
    rows = [{"id": f"s{i:02d}", "text": f"review {i}", "label": gold_label(i), "topic": TOPICS[i % 3]}
            for i in range(N)]
    (folder / "sl.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    path = folder / "sl.yaml"
    path.write_text("name: sliced\nkind: classification\ndataset: {path: sl.jsonl}\n"
                    "fields: {id: id, input: text, target: label}\nlabels: [negative, positive]\n"
                    "scoring: [classify, generate]\nslice_by: topic\n", encoding="utf-8")
    return path


def wrong_on(i: int) -> bool:
    return i % 3 == 0 and i % 2 == 0  # sports only: 5 of its 10 samples wrong


def answer(r) -> str:  # type: ignore[no-untyped-def]
    i = int(r.sample_id[1:])
    gold = gold_label(i)
    return LABELS[1 - LABELS.index(gold)] if wrong_on(i) else gold


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("breakdown")
    store = ResultStore(root / "db.sqlite")
    task = load_task(str(write_task(root)))
    run(store, task, ScriptedAdapter("cls", answer), "hf:/models/cls", label="scorer")
    gen = ScriptedAdapter("gen", answer)
    gen.supports = frozenset({"generate"})
    run(store, task, gen, "openai:gen", label="generator")
    lb = leaderboard.build(store, n_resamples=200)
    html.write_site(lb, root / "site")
    return {"lb": lb, "page": (root / "site" / html.task_slug("sliced")).read_text(encoding="utf-8")}


def test_reliability_bins_come_from_the_stored_probabilities(site: dict) -> None:
    bd = site["lb"].tasks["sliced"].breakdown
    assert [r.model for r in bd.reliability] == ["scorer"]  # the generator has no probabilities
    rel = bd.reliability[0]
    conf = 1 / (1 + math.exp(-1.0))  # the scripted scores 1.0 / 0.0 are log-scores: softmax 0.731
    filled = [b for b in rel.bins if b["count"]]
    assert len(filled) == 1 and filled[0]["count"] == N
    assert filled[0]["lo"] < conf <= filled[0]["hi"] and filled[0]["confidence"] == pytest.approx(conf)
    accuracy = 1 - sum(wrong_on(i) for i in range(N)) / N
    assert filled[0]["accuracy"] == pytest.approx(accuracy)
    assert rel.ece == pytest.approx(abs(accuracy - conf))  # one bin: |accuracy - confidence|
    assert bd.not_computed == ["generator: calibration not computed — scoring by generate gives no label "
                               "probabilities"]


def test_slices_show_the_primary_per_slice_and_the_gap(site: dict) -> None:
    bd = site["lb"].tasks["sliced"].breakdown
    assert bd.slice_by == "topic" and bd.slice_names == ["food", "music", "sports"]
    row = next(r for r in bd.slices if r.model == "scorer")
    assert row.value_name == "accuracy"
    assert {k: v["value"] for k, v in row.slices.items()} == pytest.approx({"food": 1.0, "music": 1.0, "sports": 0.5})
    assert (row.gap["best"], row.gap["worst"]) == ("food", "sports")
    assert row.gap["value"] == pytest.approx(0.5)
    assert row.gap["ci_low"] <= 0.5 <= row.gap["ci_high"]
    exported = site["lb"].to_json()["tasks"]["sliced"]["breakdown"]["slice_reports"]["scorer"]["metrics"]
    assert set(exported) == {"accuracy", "f1", "calibration"}  # every metric, not only the primary
    assert exported["f1"]["f1_macro"]["slices"]["sports"]["n"] == 10


def test_task_page_has_the_diagram_the_table_and_the_note(site: dict) -> None:
    page = site["page"]
    assert 'aria-label="reliability diagram"' in page
    assert "Slices by topic" in page and "food vs sports" in page
    assert "generator: calibration not computed" in page


def test_charts_page_has_a_budget_filter_on_cost_and_latency(tmp_path: Path) -> None:
    """Every point of the cost / latency scatter carries its raw values for the filter."""
    import re

    from report_fixtures import classifier, write_cls_task

    store = ResultStore(tmp_path / "db.sqlite")
    cls = write_cls_task(tmp_path / "tasks", n=20)
    run(store, cls, classifier("a", set(), cost=0.002, latency=0.5), "openai:a", label="pricey")
    run(store, cls, classifier("b", {"s01", "s02"}, cost=0.0005, latency=0.1), "openai:b", label="cheap")
    html.write_site(leaderboard.build(store, n_resamples=0), tmp_path / "site")
    page = (tmp_path / "site" / "charts.html").read_text(encoding="utf-8")
    assert page.count('class="budget-max"') == 2  # cost and latency panes, not tokens
    found = re.findall(r'data-x="([^"]+)" data-y="[^"]+" data-model="(\w+)"', page)
    points = {(round(float(x), 9), m) for x, m in found}
    assert {(0.5, "pricey"), (0.1, "cheap"), (0.04, "pricey"), (0.01, "cheap")} <= points  # latency; run cost
    assert 'data-hib="1"' in page
