"""The MDE the gate prints, checked by simulation through the gate's own decision function.

A real store holds a baseline night and a clean candidate night (same model, some answers
changed both ways: the paired noise). ``llmbench gate`` prints and stores the MDE of the
accuracy value. Then 500 nights are simulated with that noise (the observed discordance) and a
true drop of exactly the printed MDE: each night's per-sample right/wrong pairs are drawn,
tested by ``report.paired.compare_value`` (McNemar, as the gate does) and decided by
``report.gate.run_gate``. The MDE is exact under this model, so the flag rate must be 0.80 up
to simulation noise: its standard deviation over 500 nights is sqrt(0.8 x 0.2 / 500) = 0.018,
and the tolerance is ±0.06 (3.3 SD). A drop of half the MDE must be flagged far less often
(below 0.45; the exact power is about 0.3).
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
from report_fixtures import classifier, run, write_cls_task

from llmbench.report.compare import Comparison, compare
from llmbench.report.gate import run_gate
from llmbench.report.paired import compare_value, rebuild_metric
from llmbench.report.refs import resolve
from llmbench.store import ResultStore

N = 400
BASE_WRONG = {f"s{i:02d}" for i in range(0, N, 5)}  # 80 wrong: accuracy 0.80
# The clean night: 10 answers newly wrong, 10 newly right (discordance 5%, no drop).
CAND_WRONG = ((BASE_WRONG - {f"s{i:02d}" for i in range(0, 50, 5)})
              | {f"s{i:02d}" for i in (1, 2, 3, 4, 6, 7, 8, 9, 11, 12)})
NIGHTS, TOLERANCE = 500, 0.06


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("power")
    store = ResultStore(root / "db.sqlite")
    task = write_cls_task(root / "t", n=N, metrics=["accuracy"])
    base = run(store, task, classifier("m", BASE_WRONG), "hf:/m", label="m", resamples=0)
    cand = run(store, task, classifier("m", CAND_WRONG), "hf:/m", label="m", resamples=0)
    return {"store": store, "db": str(root / "db.sqlite"), "base": base, "cand": cand, "root": root}


def test_gate_prints_and_stores_the_mde(invoke, night) -> None:  # type: ignore[no-untyped-def]
    out = night["root"] / "gate.json"
    res = invoke("gate", "--store", night["db"], "--baseline", night["base"], "--candidate", night["cand"],
                 "--metric", "accuracy", "--json-out", out)
    assert res.exit_code == 0, res.output
    found = re.search(r"this comparison can detect drops ≥ (\d+\.\d) points", res.stdout)
    assert found, res.stdout
    assert "discordance 5.0% (20 of 400 changed)" in res.stdout
    assert re.search(r"a \d\.\d-point drop would likely go unseen \(caught in \d+% of nights\)", res.stdout)
    data = json.loads(Path(out).read_text(encoding="utf-8"))
    (entry,) = data["power"]
    assert entry["binary"] and entry["n"] == N and entry["power"] == 0.8
    assert round(entry["mde"] * 100, 1) == float(found.group(1))


def _simulate(night: dict, drop: float, psi: float, seed: int) -> float:
    """Share of NIGHTS simulated nights the gate flags, with a true drop ``drop`` (a fraction)."""
    store: ResultStore = night["store"]
    cmp = compare(store, resolve(store, night["base"]), resolve(store, night["cand"]), n_resamples=0)
    (pair,) = cmp.pairs
    metric = rebuild_metric(pair.a, "accuracy", {})
    ids = [s.sample_id for s in store.samples(pair.a.id)]
    psi = max(psi, drop)
    p_a = 0.8
    cells = np.array([p_a - (psi + drop) / 2, (psi + drop) / 2, (psi - drop) / 2, 1 - p_a - (psi - drop) / 2])
    rng = np.random.default_rng(seed)
    flagged = 0
    for _ in range(NIGHTS):
        kind = rng.choice(4, size=N, p=cells)  # 0: right both, 1: right->wrong, 2: wrong->right, 3: wrong both
        right_a, right_b = np.isin(kind, (0, 1)), np.isin(kind, (0, 2))
        stats_a = [{"prediction": "x" if r else "y", "gold": "x", "correct": int(r)} for r in right_a]
        stats_b = [{"prediction": "x" if r else "y", "gold": "x", "correct": int(r)} for r in right_b]
        value = compare_value(metric, "accuracy", True, ids, stats_a, stats_b, n_resamples=0)
        simulated = dataclasses.replace(pair, values=[value])
        result = run_gate(Comparison(a=cmp.a, b=cmp.b, pairs=[simulated], only_a=[], only_b=[], warnings=[]))
        flagged += result.decision == "regression"
    return flagged / NIGHTS


def test_injected_drop_of_the_printed_size_is_caught_80_percent(night) -> None:  # type: ignore[no-untyped-def]
    store: ResultStore = night["store"]
    cmp = compare(store, resolve(store, night["base"]), resolve(store, night["cand"]), n_resamples=0)
    (detect,) = run_gate(cmp).power
    assert detect.mde is not None
    psi = 20 / N  # the clean night's discordance, which the MDE was computed from
    assert abs(_simulate(night, detect.mde, psi, seed=1) - 0.80) <= TOLERANCE
    assert _simulate(night, detect.mde / 2, psi, seed=2) < 0.45


def test_leaderboard_shows_the_gates_mde(night) -> None:  # type: ignore[no-untyped-def]
    """With a previous run, the cell's MDE is the one the gate prints for (previous, latest):
    one number from both commands."""
    from llmbench.report import leaderboard, text

    store: ResultStore = night["store"]
    lb = leaderboard.build(store, n_resamples=0)
    cell = lb.rows[0].cells["sentiment_mini"]
    assert cell.value == pytest.approx(0.8) and cell.run_id == night["cand"]
    cmp = compare(store, resolve(store, night["base"]), resolve(store, night["cand"]), n_resamples=0)
    (gate_mde,) = run_gate(cmp).power
    assert cell.mde == gate_mde.mde and "discordance 5.0%" in cell.mde_basis
    assert f"MDE {cell.mde:.3f}" in text.to_markdown(lb)


def test_leaderboard_one_run_bound(tmp_path: Path) -> None:
    """Before a second run: the Bernoulli bound at the cell's accuracy."""
    from llmbench.report import leaderboard
    from llmbench.report.power import bernoulli_discordance, mde_binary

    store = ResultStore(tmp_path / "db.sqlite")
    run(store, write_cls_task(tmp_path / "t", n=N, metrics=["accuracy"]), classifier("m", BASE_WRONG), "hf:/m",
        label="m", resamples=0)
    cell = leaderboard.build(store, n_resamples=0).rows[0].cells["sentiment_mini"]
    assert cell.value == pytest.approx(0.8)
    # Two independent runs right 80% of the time disagree on 2 x 0.8 x 0.2 = 32% of the samples.
    assert bernoulli_discordance(0.8) == pytest.approx(0.32)
    assert cell.mde == pytest.approx(mde_binary(N, 0.32), rel=1e-9) and 0.07 < cell.mde < 0.09
    assert cell.mde_basis.startswith("one-run bound")
