"""The overall ranking is honest and shares one comparability policy with compare and gate.

A store shaped like the issue's: a model that ran all five tasks, one that ran one task and won
it, baselines that beat models, a run on fewer samples, a run under another scoring mode, and
the same weights under two labels (``report_fixtures.build_wide_store``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from report_fixtures import WIDE_TASKS, build_wide_store

from llmbench.report import charts, leaderboard, text
from llmbench.report.compare import compare_pair
from llmbench.report.html import write_site
from llmbench.store import ResultStore


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> ResultStore:
    return build_wide_store(tmp_path_factory.mktemp("wide"))


@pytest.fixture(scope="module")
def lb(wide: ResultStore) -> leaderboard.Leaderboard:
    return leaderboard.build(wide, n_resamples=100)


def _row(lb: leaderboard.Leaderboard, model: str) -> leaderboard.Row:
    return next(r for r in lb.rows if r.model == model)


def test_coverage_first_then_mean_rank(lb: leaderboard.Leaderboard) -> None:
    order = [r.model for r in lb.rows]
    one = _row(lb, "one-task-only")
    assert one.mean_rank == 1.0 and one.coverage == 1 and one.cells[WIDE_TASKS[0]].best
    every = _row(lb, "all-five-tasks")
    assert every.coverage == 5 and every.mean_rank is not None and every.mean_rank > 1.0
    assert order.index("all-five-tasks") < order.index("one-task-only")  # 1 of 5 never outranks 5 of 5
    # other-scoring (loglikelihood) is ranked now: its mode is a property of the system, not a mismatch.
    assert [r.position for r in lb.rows if r.position is not None] == [1, 2, 3, 4, 4, 6]
    assert order[:2] == ["gpt-4o-mini", "all-five-tasks"]


def test_baselines_are_reference_rows_never_ranked(lb: leaderboard.Leaderboard) -> None:
    refs = [r for r in lb.rows if r.reference]
    assert {r.model for r in refs} == {"baseline:majority", "baseline:random", "baseline:first-sentence"}
    assert lb.rows[-len(refs):] == refs  # below every model
    for row in refs:
        assert row.position is None and row.mean_rank is None
        cols = {c.task: c for c in lb.columns}
        assert all(c.rank is None and c.reference and (not c.best or cols[c.task].best_is_baseline)
                   for c in row.cells.values())
    # Still tested against the best, so "not better than majority" would show.
    assert _row(lb, "baseline:majority").cells[WIDE_TASKS[0]].p_vs_best is not None
    # A baseline is a column's best only when no model is significantly above it (and says so).
    assert all(c.best_is_baseline == any(m.startswith("baseline:") for m in c.best) for c in lb.columns)


def test_other_sample_set_is_marked_other_scoring_mode_is_ranked(lb: leaderboard.Leaderboard) -> None:
    short = _row(lb, "short-run").cells[WIDE_TASKS[2]]
    assert short.value == 1.0 and not short.comparable and not short.best and short.rank is None
    assert short.n == 12 and "another sample set (12 scored samples, the column compares 24)" in (short.note or "")
    mode = _row(lb, "other-scoring").cells[WIDE_TASKS[3]]
    assert mode.value == 1.0 and mode.comparable and mode.best and mode.rank == 1
    assert mode.system == ["scored by loglikelihood"]
    col = next(c for c in lb.columns if c.task == WIDE_TASKS[3])
    assert col.n == 24 and col.best == ["other-scoring"] and col.modes == ["classify", "loglikelihood"]
    assert _row(lb, "short-run").coverage == 0 and _row(lb, "short-run").position is None


def test_leaderboard_and_compare_say_the_same(wide: ResultStore, lb: leaderboard.Leaderboard) -> None:
    """Two models in another scoring mode: compare reports it as a system difference, never a
    MISMATCH, as the leaderboard ranks both; one model over time keeps the mode as identity."""
    cell = _row(lb, "other-scoring").cells[WIDE_TASKS[3]]
    same_mode = _row(lb, "all-five-tasks").cells[WIDE_TASKS[3]]
    pair = compare_pair(wide, wide.run(same_mode.run_id), wide.run(cell.run_id), n_resamples=0)
    assert pair.mismatches == [] and pair.system == ["scoring mode classify → loglikelihood"]
    assert same_mode.comparable and cell.comparable
    over_time = compare_pair(wide, wide.run(cell.run_id), wide.run(cell.run_id).model_copy(
        update={"scoring_mode": "classify"}), n_resamples=0)
    assert over_time.mismatches == ["scoring mode loglikelihood → classify"]


def test_same_weights_under_two_names_are_flagged(lb: leaderboard.Leaderboard) -> None:
    assert _row(lb, "smollm2").same_weights_as == ["smollm2-135m-instruct"]
    assert _row(lb, "smollm2-135m-instruct").same_weights_as == ["smollm2"]
    assert _row(lb, "gpt-4o-mini").same_weights_as == []


def test_site_cost_only_where_known_and_marks(lb: leaderboard.Leaderboard, tmp_path: Path) -> None:
    index = write_site(lb, tmp_path / "site").read_text(encoding="utf-8")
    assert ">Cost<" in index and "$0.0564" in index
    assert index.count("— tok") == 0 and "same weights as smollm2" in index
    assert "Baselines · reference rows, not ranked" in index
    assert "not comparable: another sample set (12 scored samples, the column compares 24)" in index  # inline
    md = text.to_markdown(lb)
    assert "★" in md


def test_no_cost_column_without_any_price(wide: ResultStore, tmp_path: Path) -> None:
    from report_fixtures import classifier, run, write_cls_task

    store = ResultStore(tmp_path / "local.sqlite")
    task = write_cls_task(tmp_path / "t", n=10)
    run(store, task, classifier("a", set()), "hf:/a", label="a", resamples=0)
    run(store, task, classifier("b", {"s01"}), "hf:/b", label="b", resamples=0)
    index = write_site(leaderboard.build(store, n_resamples=0), tmp_path / "site").read_text(encoding="utf-8")
    assert ">Cost<" not in index and ">Tokens<" in index


def test_pareto_front_leaves_baselines_out_by_default() -> None:
    pts = [("base", 1e-6, 0.5), ("fast", 0.05, 0.7), ("good", 0.5, 0.9), ("slow-bad", 1.0, 0.6)]
    chart = charts.scatter(pts, colors={}, x_title="x", y_title="y", x_fmt="latency", metric="accuracy",
                           higher_is_better=True, references=frozenset({"base"}))
    on = {p.label for p in chart.points if p.front}
    on_all = {p.label for p in chart.points if p.front_all}
    assert on == {"fast", "good"} and on_all == {"base", "fast", "good"}
    assert next(p for p in chart.points if p.label == "base").reference
    assert chart.front != chart.front_all


def test_tick_labels_never_repeat() -> None:
    chart = charts.scatter([("a", 2.1e-6, 0.5), ("b", 2.4e-6, 0.6), ("c", 2.6e-6, 0.7)], colors={}, x_title="x",
                           y_title="y", x_fmt="latency", metric="accuracy", higher_is_better=True)
    labels = [t for _, t in chart.x_ticks]
    assert len(labels) >= 2 and len(set(labels)) == len(labels), labels
    ys = charts.scatter([("a", 1.0, 0.8501), ("b", 2.0, 0.8502)], colors={}, x_title="x", y_title="y",
                        x_fmt="latency", metric="accuracy", higher_is_better=True).y_ticks
    assert len({t for _, t in ys}) == len(ys)


def test_trend_needs_two_runs_and_dates_its_axis() -> None:
    point = {"run_id": "r", "ci_low": 0.6, "ci_high": 0.8, "value": 0.7, "tags": [], "comparable": True}
    series = {"nightly": [{**point, "created_at": f"2025-06-0{d}T02:00:00+00:00"} for d in (1, 2, 3)],
              "once": [{**point, "created_at": "2025-06-03T02:00:00+00:00"}]}
    chart = charts.trend(series, colors={}, metric="accuracy", y_title="accuracy")
    assert [m for m, _ in chart.legend] == ["nightly"] and "needs ≥2 runs" in chart.note and "once" in chart.note
    assert [t for _, t in chart.x_ticks] == ["2025-06-01", "2025-06-02", "2025-06-03"]
    lone = charts.trend({"once": series["once"]}, colors={}, metric="accuracy", y_title="accuracy")
    assert lone.points == [] and "once" in lone.note
