"""compare and gate on real stored runs with known differences: exit codes and flipped samples exactly."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from report_fixtures import classifier, reader, run, set_created, write_cls_task, write_qa_task

from llmbench.metrics import mcnemar
from llmbench.report.compare import compare
from llmbench.report.gate import run_gate
from llmbench.report.paired import PairedValue
from llmbench.report.refs import resolve
from llmbench.store import ResultStore

BASE_WRONG = {"s01", "s02"}
WORSE_WRONG = {"s02", *(f"s{i:02d}" for i in range(5, 17))}  # s05..s16 newly wrong, s01 fixed
T0 = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("gate")
    store = ResultStore(root / "db.sqlite")
    cls, qa = write_cls_task(root / "t"), write_qa_task(root / "t")
    other = write_cls_task(root / "other", template="Say it: {{ input }}")  # same name, another prompt
    night1, night2 = {"tags": ["nightly"], "batch_id": "night-1"}, {"tags": ["nightly"], "batch_id": "night-2"}
    ids = {
        "base": run(store, cls, classifier("m", BASE_WRONG), "hf:/m", label="m", **night1),
        "base_qa": run(store, qa, reader("m", {"q03"}), "hf:/m", label="m", **night1),
        "worse": run(store, cls, classifier("m", WORSE_WRONG), "hf:/m", label="m", **night2),
        "worse_qa": run(store, qa, reader("m", {"q03"}), "hf:/m", label="m", **night2),
        "rerun": run(store, cls, classifier("m", BASE_WRONG), "hf:/m", label="m"),
        "slight": run(store, cls, classifier("m", BASE_WRONG | {"s03"}), "hf:/m", label="m"),
        "better": run(store, cls, classifier("m", set()), "hf:/m", label="m"),
        "mismatch": run(store, other, classifier("m", BASE_WRONG), "hf:/m", label="m"),
        "qa_only": run(store, qa, reader("m", set()), "hf:/m", label="m"),
        "partial": run(store, cls, classifier("m", BASE_WRONG, fail=["s30", "s31"]), "hf:/m", label="m"),
    }
    for i, key in enumerate(ids):
        set_created(store, ids[key], T0 + timedelta(days=i))
    return {"store": store, "db": str(root / "db.sqlite"), **ids}


def _gate(invoke, world, a: str, b: str, *extra: str):  # type: ignore[no-untyped-def]
    return invoke("gate", "--store", world["db"], "--baseline", world.get(a, a), "--candidate", world.get(b, b),
                  "--resamples", "300", *extra)


def test_same_model_rerun_never_fails(invoke, world) -> None:  # type: ignore[no-untyped-def]
    res = _gate(invoke, world, "base", "rerun")
    assert res.exit_code == 0, res.output
    assert "PASS" in res.stdout


def test_regression_fails_with_exact_flips(invoke, world) -> None:  # type: ignore[no-untyped-def]
    res = _gate(invoke, world, "base", "worse", "--json")
    assert res.exit_code == 1, res.output
    out = json.loads(res.stdout)
    assert out["passed"] is False and out["exit_code"] == 1
    acc = next(r for r in out["regressions"] if r["name"] == "accuracy")
    assert acc["right_to_wrong"] == [f"s{i:02d}" for i in range(5, 17)]
    assert acc["wrong_to_right"] == ["s01"]
    assert acc["a"] == pytest.approx(38 / 40) and acc["b"] == pytest.approx(27 / 40)
    assert acc["drop"] == pytest.approx(11 / 40)
    assert acc["test"] == "mcnemar-exact"
    right_a = [f"s{i:02d}" not in BASE_WRONG for i in range(40)]
    right_b = [f"s{i:02d}" not in WORSE_WRONG for i in range(40)]
    assert acc["p"] == pytest.approx(mcnemar(right_a, right_b))
    assert acc["ci_high"] < 0  # the whole paired CI of B - A is below zero


def test_regression_text_names_metric_drop_ci_p_and_flips(invoke, world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = _gate(invoke, world, "base", "worse", "--json-out", str(tmp_path / "gate.json"))
    assert res.exit_code == 1
    assert json.loads((tmp_path / "gate.json").read_text())["regressions"]
    text = res.stdout
    assert "FAIL" in text and "accuracy dropped by 0.2750" in text and "mcnemar-exact" in text
    assert "right → wrong (12): s05, s06, s07, s08, s09, s10, s11, s12, s13, s14, s15, s16" in text
    assert "wrong → right (1): s01" in text


def test_insignificant_drop_and_improvement_pass(invoke, world) -> None:  # type: ignore[no-untyped-def]
    assert _gate(invoke, world, "base", "slight").exit_code == 0
    assert _gate(invoke, world, "base", "better").exit_code == 0


def test_max_drop_tolerates_small_significant_drops(invoke, world) -> None:  # type: ignore[no-untyped-def]
    assert _gate(invoke, world, "base", "worse", "--max-drop", "0.3").exit_code == 0
    assert _gate(invoke, world, "base", "worse", "--max-drop", "0.2", "--metric", "accuracy").exit_code == 1


def test_tag_refs_compare_last_two_nightly_batches(invoke, world) -> None:  # type: ignore[no-untyped-def]
    res = _gate(invoke, world, "prev:nightly", "last:nightly", "--json")
    assert res.exit_code == 1, res.output
    out = json.loads(res.stdout)
    pairs = out["comparison"]["pairs"]
    assert sorted(p["task"] for p in pairs) == ["qa_mini", "sentiment_mini"]
    assert {r["task"] for r in out["regressions"]} == {"sentiment_mini"}
    assert out["comparison"]["a"]["resolved"] == "prev:nightly (batch night-1)"


def test_mismatched_fingerprint_is_refused_unless_allowed(invoke, world) -> None:  # type: ignore[no-untyped-def]
    res = _gate(invoke, world, "base", "mismatch", "--json")
    assert res.exit_code == 2, res.output
    out = json.loads(res.stdout)
    assert out["decision"] == "cannot_decide" and out["passed"] is False
    (reason,) = out["reasons"]
    assert "different benchmark" in reason and "fingerprint" in reason and "spec.prompt.template" in reason
    assert "--allow-mismatch" in reason and "CANNOT DECIDE" in res.stderr
    allowed = _gate(invoke, world, "base", "mismatch", "--allow-mismatch")
    assert allowed.exit_code == 0, allowed.output
    assert "OPT-OUT" in allowed.stdout and "allowed by --allow-mismatch" in allowed.stdout


def test_cannot_decide_exits_2(invoke, world) -> None:  # type: ignore[no-untyped-def]
    unknown = _gate(invoke, world, "base", "nope-123")
    assert unknown.exit_code == 2 and "no run or batch 'nope-123'" in unknown.stderr
    nothing = _gate(invoke, world, "base", "qa_only")
    assert nothing.exit_code == 2 and "nothing shared" in nothing.stderr
    bad_metric = _gate(invoke, world, "base", "rerun", "--metric", "bleu")
    assert bad_metric.exit_code == 2 and "available:" in bad_metric.stderr


def test_incomplete_candidate_cannot_decide_unless_allowed(invoke, world) -> None:  # type: ignore[no-untyped-def]
    res = _gate(invoke, world, "base", "partial", "--json")
    assert res.exit_code == 2, res.output
    out = json.loads(res.stdout)
    assert out["decision"] == "cannot_decide"
    assert any("is incomplete (2 of 40 samples failed" in r and "--allow-missing" in r for r in out["reasons"])
    allowed = _gate(invoke, world, "base", "partial", "--allow-missing")
    assert allowed.exit_code == 0, allowed.output
    assert "CANDIDATE INCOMPLETE" in allowed.stdout and "allowed by --allow-missing" in allowed.stdout
    assert "compared on the 38 samples both runs scored" in allowed.stdout


def test_compare_json_and_table(invoke, world) -> None:  # type: ignore[no-untyped-def]
    res = invoke("compare", world["base"], world["worse"][:-1], "--store", world["db"], "--json", "--resamples", "200")
    assert res.exit_code == 0, res.output
    (pair,) = json.loads(res.stdout)["pairs"]
    values = {v["name"]: v for v in pair["values"]}
    assert set(values) >= {"accuracy", "f1_macro", "f1/negative", "f1/positive"}
    assert values["accuracy"]["right_to_wrong"] == [f"s{i:02d}" for i in range(5, 17)]
    assert values["f1_macro"]["test"] == "paired-bootstrap" and values["f1_macro"]["right_to_wrong"] is None
    assert pair["n_shared"] == 40
    table = invoke("compare", world["base"], world["mismatch"], "--store", world["db"], "--resamples", "0")
    assert table.exit_code == 0 and "MISMATCH" in table.stdout and "accuracy" in table.stdout


def test_batch_id_and_ambiguous_prefix(world) -> None:  # type: ignore[no-untyped-def]
    store = world["store"]
    sel = resolve(store, "night-2")
    assert sel.how == "batch" and {r.id for r in sel.runs} == {world["worse"], world["worse_qa"]}
    with pytest.raises(Exception, match="ambiguous"):
        resolve(store, "night-")
    assert resolve(store, world["rerun"][:-1]).runs[0].id == world["rerun"]


def test_direction_aware_for_lower_is_better(world) -> None:  # type: ignore[no-untyped-def]
    store = world["store"]
    cmp = compare(store, resolve(store, world["base"]), resolve(store, world["rerun"]), n_resamples=0)
    pair = cmp.pairs[0]
    pair.values = [PairedValue(metric="wer", name="wer", higher_is_better=False, n=40, a=0.2, b=0.3, delta=0.1,
                               p=0.001), PairedValue(metric="loss", name="loss", higher_is_better=False, n=40,
                                                     a=0.3, b=0.2, delta=-0.1, p=0.001)]
    result = run_gate(cmp)
    assert [f.value.name for f in result.regressions] == ["wer"]


def test_entry_point_exit_codes(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Through ``python -m llmbench`` (main() registers the commands): 1 on a drop, 2 on a bad ref."""
    cmd = [sys.executable, "-m", "llmbench", "gate", "--store", world["db"], "--resamples", "100"]
    fail = subprocess.run([*cmd, "--baseline", world["base"], "--candidate", world["worse"]],
                          capture_output=True, text=True, timeout=120)
    assert fail.returncode == 1, fail.stderr
    bad = subprocess.run([*cmd, "--baseline", "zzz", "--candidate", world["worse"]],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "error:" in bad.stderr
