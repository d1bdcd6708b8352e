"""Robustness end to end, against a hand computation.

The task asks to echo its input (references = the clean input) and is scored by exact match,
which normalises case and punctuation as SQuAD does. ``baseline:copy`` answers with its
(perturbed) input, so its behaviour under each perturbation is known exactly:

====  ===========  ===================  ====================
id    text         confusables rate=1   case mode=upper
====  ===========  ===================  ====================
r0    thumb        unchanged -> right   THUMB: changed, right
r1    good film    gооd fіlm -> wrong   changed, right
r2    2024         unchanged -> right   unchanged, right
r3    dull         unchanged -> right   changed, right
r4    a sad story  changed -> wrong     changed, right
r5    42 - 7       unchanged -> right   unchanged, right
====  ===========  ===================  ====================

(t, h, u, m, b, d, l, g, f, n, r have no look-alike in the table; o, i, a, s do.)
By hand: clean exact match 100; confusables 4/6 = 66.7 (drop 33.3, invariance 4/6, McNemar
p = 2 x 0.5^2 = 0.5); upper case 100 (drop 0) but invariance 2/6 — the answer changed where
the score did not; worst case (right under clean, confusables and upper case): r0, r2, r3, r5 =
4/6 = 66.7.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_inprocess import run_cli

from llmbench.report.robustness import find, worst_case
from llmbench.store import ResultStore

ROWS = {"r0": "thumb", "r1": "good film", "r2": "2024", "r3": "dull", "r4": "a sad story", "r5": "42 - 7"}


@pytest.fixture
def echo(tmp_path: Path) -> Path:
    (tmp_path / "echo.jsonl").write_text("\n".join(json.dumps({"id": k, "text": v}) for k, v in ROWS.items()),
                                         encoding="utf-8")
    path = tmp_path / "echo.yaml"
    path.write_text("name: echo\nkind: translation\ndataset: {path: echo.jsonl}\nfields: {id: id, input: text, "
                    "target: text}\nmetrics: [exact_match]\nprimary_metric: exact_match\n"
                    "perturbations: ['confusables:rate=1']\n", encoding="utf-8")
    return path


def test_invariance_and_worst_case_equal_the_hand_computation(echo: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "db.sqlite")
    code, out, err = run_cli(["run", "-m", "baseline:copy", "-t", str(echo), "--perturb", "case:mode=upper",
                              "--store", db, "--no-cache", "--resamples", "200"], capsys)
    assert code == 0, err
    (rob,) = find(ResultStore(db, create=False), n_resamples=200)
    assert (rob.task, rob.model, rob.value, rob.clean_score) == ("echo", "baseline:copy", "exact_match", 100.0)
    by = {p.perturbation: p for p in rob.perturbations}
    assert set(by) == {"confusables(rate=1.0)", "case(mode=upper)"}
    conf, upper = by["confusables(rate=1.0)"], by["case(mode=upper)"]
    assert conf.score == pytest.approx(400 / 6) and conf.drop == pytest.approx(200 / 6)
    assert conf.invariance == pytest.approx(4 / 6) and conf.p == pytest.approx(0.5)
    assert upper.score == 100.0 and upper.drop == 0.0 and upper.invariance == pytest.approx(2 / 6)
    assert rob.worst_case == pytest.approx(400 / 6) and rob.n_worst == 6
    # `run` printed the same numbers.
    assert "robustness (paired with the clean run by sample id)" in out
    assert "66.7 (n=6)" in out and "33.3%" in out and "+33.3" in out
    # A stored perturbed run: its prompt has the perturbation, its reference does not.
    store = ResultStore(db, create=False)
    (pert,) = [r for r in store.runs() if r.task == "echo~confusables(rate=1.0)"]
    r1 = next(s for s in store.samples(pert.id) if s.sample_id == "r1")
    assert r1.references == ["good film"] and r1.input == "gооd fіlm" and r1.prediction == "gооd fіlm"


def test_worst_case_takes_the_lowest_score_per_sample() -> None:
    assert worst_case([{"a": 1.0, "b": 1.0, "c": 0.0}, {"a": 0.0, "b": 1.0, "c": 1.0}]) == (1 / 3, 3)
    assert worst_case([{"a": 2.0, "b": 5.0}, {"a": 3.0, "b": 1.0}], higher_is_better=False) == (4.0, 2)
    assert worst_case([{"a": 1.0}]) == (None, 0)
    assert worst_case([{"a": 1.0}, {"a": None}]) == (None, 0)


def test_show_compare_leaderboard_and_select_agree(echo: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from llmbench.report import leaderboard, text

    db = str(tmp_path / "db.sqlite")
    code, _, err = run_cli(["run", "-m", "baseline:copy", "-t", str(echo), "--perturb", "case:mode=upper",
                            "--store", db, "--no-cache", "--resamples", "0"], capsys)
    assert code == 0, err
    store = ResultStore(db, create=False)
    clean = next(r for r in store.runs() if r.task == "echo")
    code, out, _ = run_cli(["show", clean.id, "--store", db], capsys)
    assert code == 0 and "robustness" in out and "66.7 (n=6)" in out
    code, out, _ = run_cli(["compare", clean.id, clean.id, "--store", db, "--json"], capsys)
    assert code == 0
    (rob,) = json.loads(out)["robustness"]
    assert rob["worst_case"] == pytest.approx(400 / 6) and len(rob["perturbations"]) == 2
    lb = leaderboard.build(store, n_resamples=0)
    assert lb.robustness[0]["worst_case"] == pytest.approx(400 / 6)
    assert lb.rows[0].cells["echo"].worst_case == pytest.approx(400 / 6)
    assert [c.task for c in lb.columns] == ["echo"]  # perturbed runs: the robustness view, not columns
    assert "### Robustness" in text.to_markdown(lb)
    # select: the worst case on the unit scale is 0.667.
    code, _, err = run_cli(["select", "--task", "echo", "--min-robustness", "0.7", "--store", db], capsys)
    assert code == 2 and "worst-case score 0.6667" in err
    code, out, _ = run_cli(["select", "--task", "echo", "--min-robustness", "0.6", "--store", db], capsys)
    assert code == 0 and out.startswith("best: baseline:copy")


def test_suite_perturb_and_repeats(echo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "db.sqlite")
    suite = tmp_path / "s.yaml"
    suite.write_text(f"name: s\nrepeats: 2\nmodels: [baseline:copy]\ntasks:\n  - {{task: {echo}, perturb: "
                     "['case:mode=upper']}\n", encoding="utf-8")
    code, out, err = run_cli(["run", "--suite", str(suite), "--store", db, "--no-cache", "--resamples", "0"], capsys)
    assert code == 0, err
    tasks = sorted(r.task for r in ResultStore(db, create=False).runs())
    assert tasks == ["echo", "echo~case(mode=upper)", "echo~confusables(rate=1.0)", "echo~repeat1"]
    assert "noise floor" in out and "robustness" in out
    suite.write_text(f"name: s\nmodels: [baseline:copy]\ntasks:\n  - {{task: {echo}, perturb: [typos]}}\n",
                     encoding="utf-8")
    code, _, err = run_cli(["run", "--suite", str(suite), "--store", str(tmp_path / "other.db")], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and str(suite) in lines[0] and "typos" in lines[0]
    assert not (tmp_path / "other.db").exists()
