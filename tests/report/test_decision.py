"""One truth at the point of decision: the site, the Markdown report, ``select`` and ``compare``
name the same best model per task, in any run order, and a model a baseline beats is not starred.

The store mirrors the demo: a fine-tuned classifier scored by ``classify`` (the best), a small
LM scored by ``loglikelihood`` (a property of that system, not a reason to exclude it), a weak
model no better than the majority baseline, and a second task on which no model clears the
baseline. It is built twice, the second time with every run made in the reverse order.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from report_fixtures import classifier, run, set_created, set_scoring_mode, write_cls_task, wrong_ids

from llmbench.models.baselines import BaselineAdapter
from llmbench.report import leaderboard, text
from llmbench.report.decision import decide_all
from llmbench.report.html import sample_slug, task_slug, write_site
from llmbench.report.select import Constraints, select
from llmbench.store import ResultStore

N = 60
MAIN, HARD = "sentiment_main", "sentiment_hard"
# (label, spec, wrong ids on MAIN, scoring mode) — accuracy 0.90, 0.80, 0.567; majority 33/60 = 0.55.
MODELS = [("minilm-finetuned", "hf:/m/minilm", range(0, 6), "classify"),
          ("smollm2", "hf:/m/smollm2", range(10, 22), "loglikelihood"),
          ("weak", "hf:/m/weak", range(30, 56), "classify")]


def _build(root: Path, *, reverse: bool) -> ResultStore:
    root.mkdir(parents=True, exist_ok=True)
    store = ResultStore(root / "store.sqlite")
    main = write_cls_task(root / "tasks", n=N, name=MAIN)
    hard = write_cls_task(root / "tasks", n=N, name=HARD)
    jobs: list[tuple[Path, Any, str, str | None, str]] = []
    for label, spec, wrong, mode in MODELS:
        jobs.append((main, classifier(label, wrong_ids("s", wrong)), spec, label, mode))
    jobs.append((hard, classifier("weak", wrong_ids("s", range(30, 56))), "hf:/m/weak", "weak", "classify"))
    for task in (main, hard):
        jobs.append((task, BaselineAdapter("majority"), "baseline:majority", None, "classify"))
    if reverse:
        jobs.reverse()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i, (task, adapter, spec, label, mode) in enumerate(jobs):
        rid = run(store, task, adapter, spec, label=label, resamples=200)
        if mode != "classify":
            set_scoring_mode(store, rid, mode)
        set_created(store, rid, start + timedelta(minutes=i))
    return store


@pytest.fixture(scope="module", params=[False, True], ids=["forward", "reverse"])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[ResultStore, Path]:
    root = tmp_path_factory.mktemp("reverse" if request.param else "forward")
    return _build(root, reverse=request.param), root


def test_one_best_per_task_in_every_view(built: tuple[ResultStore, Path], invoke: Any) -> None:
    store, root = built
    lb = leaderboard.build(store, n_resamples=200)
    md = text.to_markdown(lb)
    cols = {c.task: c for c in lb.columns}
    # MiniLM is the best on the main task although SmolLM2 was scored by log-likelihood.
    assert cols[MAIN].best == ["minilm-finetuned"] and not cols[MAIN].best_is_baseline
    assert select(store, [MAIN], Constraints(), n_resamples=200).best.model == "minilm-finetuned"  # type: ignore[union-attr]
    assert "- sentiment\\_main: best = minilm-finetuned; floor baseline:majority" in md
    # No model clears the baseline on the hard task: every view names the baseline.
    assert cols[HARD].best == ["baseline:majority"] and cols[HARD].best_is_baseline
    assert select(store, [HARD], Constraints(), n_resamples=200).best.model == "baseline:majority"  # type: ignore[union-attr]
    assert "- sentiment\\_hard: best = baseline:majority (a baseline: no model is significantly above it)" in md
    # The site stars the same cell (and only that one on the main task's models).
    index = write_site(lb, root / "site").read_text(encoding="utf-8")
    rows = {seg.split('<div class="model-name">')[1].split("<")[0]: seg
            for seg in index.split("<tr class=")[1:] if '<div class="model-name">' in seg}
    assert 'aria-label="best"' in rows["minilm-finetuned"] and 'aria-label="best"' not in rows["smollm2"]
    assert 'aria-label="best"' not in rows["weak"] and 'aria-label="best"' in rows["baseline:majority"]
    # The CLI says the same (select's text and JSON, compare's decision line).
    db = str(root / "store.sqlite")
    sel = invoke("select", "--task", MAIN, "--store", db, "--resamples", "200", "--json")
    assert sel.exit_code == 0, sel.output
    assert json.loads(sel.output)["best"]["model"] == "minilm-finetuned"
    ids = {r.model: r.id for r in store.runs() if r.task == MAIN}
    cmp = invoke("compare", ids["smollm2"], ids["minilm-finetuned"], "--store", db, "--resamples", "200")
    assert cmp.exit_code == 0, cmp.output
    assert "MISMATCH" not in cmp.output and "system: scoring mode loglikelihood → classify" in cmp.output
    assert "sentiment_main: best = minilm-finetuned; floor baseline:majority" in cmp.output


def test_loglikelihood_model_is_ranked_and_shows_its_mode(built: tuple[ResultStore, Path]) -> None:
    store, _ = built
    lb = leaderboard.build(store, n_resamples=200)
    row = next(r for r in lb.rows if r.model == "smollm2")
    cell = row.cells[MAIN]
    assert cell.comparable and cell.rank == 2 and not cell.best and cell.system == ["scored by loglikelihood"]
    assert not cell.below_baseline and cell.p_vs_baseline is not None and cell.p_vs_baseline < 0.05


def test_below_baseline_is_never_starred_and_says_so(built: tuple[ResultStore, Path], tmp_path: Path,
                                                     invoke: Any) -> None:
    store, root = built
    lb = leaderboard.build(store, n_resamples=200)
    weak = next(r for r in lb.rows if r.model == "weak")
    for task in (MAIN, HARD):
        cell = weak.cells[task]
        assert cell.below_baseline and not cell.best and cell.p_vs_baseline is not None
        assert cell.p_vs_baseline >= 0.05 and cell.badge == f"≤ baseline (p = {cell.p_vs_baseline:.3g})"
    md = text.to_markdown(lb)
    assert f"≤ baseline (p = {weak.cells[HARD].p_vs_baseline:.3g})" in md
    index = write_site(lb, tmp_path / "site").read_text(encoding="utf-8")
    assert f"≤ baseline (p = {weak.cells[HARD].p_vs_baseline:.3g}) baseline:majority" in index
    out = invoke("select", "--task", MAIN, "--store", str(root / "store.sqlite"), "--resamples", "200")
    assert f"excluded: weak — {MAIN}: ≤ baseline (p = " in out.output


def test_decision_does_not_depend_on_run_order(tmp_path: Path) -> None:
    """The same runs made in the two orders give the same decision, cell by cell."""
    def summary(store: ResultStore) -> dict[str, Any]:
        found = decide_all(store.runs(), store.metrics, store.samples, n_resamples=200)
        return {t: (d.best, d.floor, {m: (v.rank, v.best, v.tied, v.below_baseline, v.comparable)
                                      for m, v in d.verdicts.items()})
                for t, d in found.items() if not isinstance(d, str)}

    assert summary(_build(tmp_path / "a", reverse=False)) == summary(_build(tmp_path / "b", reverse=True))


def test_aggregate_and_csv_on_the_page(built: tuple[ResultStore, Path], tmp_path: Path) -> None:
    store, _ = built
    lb = leaderboard.build(store, n_resamples=200)
    rows = {r.model: r for r in lb.rows}
    # minilm beats smollm2, weak and majority on MAIN (3 of 3) and ran 1 of 2 tasks.
    assert rows["minilm-finetuned"].win_rate == 1.0 and rows["minilm-finetuned"].win_tasks == 1
    # weak: on MAIN it beats majority only (1 of 3); on HARD it beats majority (1 of 1).
    assert rows["weak"].win_tasks == 2 and rows["weak"].win_rate == pytest.approx((1 / 3 + 1) / 2)
    site = write_site(lb, tmp_path / "site").parent
    index = (site / "index.html").read_text(encoding="utf-8")
    assert leaderboard.AGGREGATE_DEFINITION in index and 'href="overview.csv"' in index
    csv_text = (site / "overview.csv").read_text(encoding="utf-8")
    assert csv_text.splitlines()[0].startswith("model,kind,win_rate,win_tasks,")
    assert any(line.startswith("minilm-finetuned,") and ",best," in line for line in csv_text.splitlines())
    assert (site / sample_slug(MAIN)).exists() and sample_slug(MAIN) in (site / task_slug(MAIN)).read_text()


def test_over_time_a_changed_scoring_mode_is_a_changed_identity(tmp_path: Path) -> None:
    """Across models the mode is shown, not held against anyone; for one model's trend a run in
    another mode is not the same series (the gate refuses it as a mismatch, see compare)."""
    store = _build(tmp_path / "t", reverse=False)
    rid = run(store, tmp_path / "t" / "tasks" / f"{MAIN}.yaml", classifier("smollm2", wrong_ids("s", range(10, 22))),
              "hf:/m/smollm2", label="smollm2", resamples=200)  # the same model, now scored by classify
    set_created(store, rid, datetime(2026, 2, 1, tzinfo=UTC))
    lb = leaderboard.build(store, n_resamples=200)
    points = lb.tasks[MAIN].history["smollm2"]
    assert [p["comparable"] for p in points] == [False, True]
    assert next(r for r in lb.rows if r.model == "smollm2").cells[MAIN].system == []  # now classify, as the ref
