"""The gate never passes vacuously: every branch of its decision on real stored runs.

pass (0), regression (1), cannot_decide (2: untested values, missing or incomplete candidate
pairs, another model behind a label, stats of an unknown version, code named by the store),
no_baseline (2, told apart by the JSON ``decision``), internal error (3), and each opt-out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from report_fixtures import classifier, reader, run, write_cls_task, write_qa_task

from llmbench.report.compare import compare
from llmbench.report.gate import run_gate
from llmbench.report.paired import unpaired_value
from llmbench.report.refs import resolve
from llmbench.store import ResultStore, metrics_table, runs_table, samples_table


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("decisions")
    store = ResultStore(root / "db.sqlite")
    cls = write_cls_task(root / "t", n=20, metrics=["accuracy", "f1"])
    qa6 = write_qa_task(root / "t", n=6, name="qa_six")
    five_wrong = {f"q{i:02d}" for i in range(1, 6)}
    ids = {
        # F1 100 -> 16.7 on six questions: exact match flips 5 (McNemar p = 0.0625), F1 only a bootstrap can test
        "qa_all": run(store, qa6, reader("m", set()), "hf:/m", label="m", resamples=0),
        "qa_one": run(store, qa6, reader("m", five_wrong), "hf:/m", label="m", resamples=0),
        "a1": run(store, cls, classifier("m1", set()), "hf:/m1", label="m1", batch_id="n1", tags=["night"]),
        "a2": run(store, cls, classifier("m2", set()), "hf:/m2", label="m2", batch_id="n1", tags=["night"]),
        "a3": run(store, cls, classifier("m3", set()), "hf:/m3", label="m3", batch_id="n1", tags=["night"]),
        "b1": run(store, cls, classifier("m1", set()), "hf:/m1", label="m1", batch_id="n2", tags=["night"]),
        # the swap (baseline:majority -> baseline:random under one label), scripted so
        # both answer the same: the gate must refuse on identity, not on a drop
        "maj": run(store, cls, classifier("b", set(), identity={"kind": "majority"}), "baseline:majority", label="ref"),
        "rnd": run(store, cls, classifier("b", set(), identity={"kind": "random"}), "baseline:random", label="ref"),
        "solo": run(store, cls, classifier("m", set()), "hf:/m", label="m", batch_id="solo-1", tags=["solo"]),
        "v_a": run(store, cls, classifier("v", set()), "hf:/v", label="v"),
        "v_b": run(store, cls, classifier("v", set()), "hf:/v", label="v"),
        "e_a": run(store, cls, classifier("e", set()), "hf:/e", label="e"),
        "e_b": run(store, cls, classifier("e", {"s01"}), "hf:/e", label="e"),
    }
    return {"store": store, "db": str(root / "db.sqlite"), "root": root, **ids}


def _gate(invoke, world: dict[str, Any], a: str, b: str, *extra: str):  # type: ignore[no-untyped-def]
    return invoke("gate", "--store", world["db"], "--baseline", world.get(a, a), "--candidate", world.get(b, b),
                  "--resamples", "200", *extra)


def _decision(res: Any) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(res.stdout)
    return out


def test_f1_collapse_with_resampling_off_is_not_a_pass(invoke, world) -> None:  # type: ignore[no-untyped-def]
    """The issue's case: F1 100 -> 16.7 with --resamples 0 used to print PASS and exit 0."""
    res = _gate(invoke, world, "qa_all", "qa_one", "--resamples", "0", "--json")
    assert res.exit_code == 2, res.output
    out = _decision(res)
    assert out["decision"] == "cannot_decide" and out["passed"] is False and out["regressions"] == []
    untested = {v["name"]: v for v in out["untested"]}
    assert set(untested) == {"f1"}
    assert untested["f1"]["a"] == pytest.approx(100.0) and untested["f1"]["b"] == pytest.approx(100 / 6)
    assert "resampling is off" in untested["f1"]["note"]
    assert any("f1 was not tested" in r and "--allow-untested" in r for r in out["reasons"])
    shown = invoke("compare", world["qa_all"], world["qa_one"], "--store", world["db"], "--resamples", "0")
    assert shown.exit_code == 0 and "not tested: f1 — resampling is off" in shown.stdout
    only_f1 = _gate(invoke, world, "qa_all", "qa_one", "--resamples", "0", "--metric", "f1")
    assert only_f1.exit_code == 2 and "CANNOT DECIDE" in only_f1.stdout and "PASS" not in only_f1.stdout


def test_untested_opt_out_passes_and_says_so(invoke, world) -> None:  # type: ignore[no-untyped-def]
    res = _gate(invoke, world, "qa_all", "qa_one", "--resamples", "0", "--allow-untested")
    assert res.exit_code == 0, res.output
    assert "OPT-OUT" in res.stdout and "f1 was not tested" in res.stdout and "allowed by --allow-untested" in res.stdout


def test_with_resampling_the_f1_collapse_is_a_regression(invoke, world) -> None:  # type: ignore[no-untyped-def]
    res = _gate(invoke, world, "qa_all", "qa_one", "--metric", "f1", "--json")
    assert res.exit_code == 1, res.output
    assert _decision(res)["decision"] == "regression"


def test_models_missing_from_the_candidate_night(invoke, world) -> None:  # type: ignore[no-untyped-def]
    res = _gate(invoke, world, "n1", "n2", "--json")
    assert res.exit_code == 2, res.output
    out = _decision(res)
    assert out["decision"] == "cannot_decide"
    missing = [r for r in out["reasons"] if "in the baseline but not in the candidate" in r]
    assert len(missing) == 2 and "m2 on sentiment_mini" in missing[0] and "m3 on sentiment_mini" in missing[1]
    allowed = _gate(invoke, world, "n1", "n2", "--allow-missing")
    assert allowed.exit_code == 0, allowed.output
    assert allowed.stdout.count("allowed by --allow-missing") == 2


def test_another_model_behind_the_same_label(invoke, world) -> None:  # type: ignore[no-untyped-def]
    cmp = invoke("compare", world["maj"], world["rnd"], "--store", world["db"], "--resamples", "0")
    assert cmp.exit_code == 0, cmp.output
    assert "MODEL CHANGED" in cmp.stdout and "kind" in cmp.stdout
    cmp_json = invoke("compare", world["maj"], world["rnd"], "--store", world["db"], "--resamples", "0", "--json")
    (pair,) = json.loads(cmp_json.stdout)["pairs"]
    assert pair["model_change"].startswith("model 'ref' is another model in B")
    res = _gate(invoke, world, "maj", "rnd", "--json")
    assert res.exit_code == 2, res.output
    out = _decision(res)
    assert out["decision"] == "cannot_decide" and out["regressions"] == []
    assert any("another model" in r and "--allow-model-change" in r for r in out["reasons"])
    allowed = _gate(invoke, world, "maj", "rnd", "--allow-model-change", "--json")
    assert allowed.exit_code == 0, allowed.output
    assert any("allowed by --allow-model-change" in o for o in _decision(allowed)["opt_outs"])


def test_first_night_is_no_baseline_in_the_json(invoke, world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "gate.json"
    res = _gate(invoke, world, "prev:solo", "last:solo", "--json-out", str(target))
    assert res.exit_code == 2, res.output
    out = json.loads(target.read_text())
    assert out["decision"] == "no_baseline" and out["exit_code"] == 2 and out["passed"] is False
    assert "NO BASELINE" in res.stdout
    # a candidate that names nothing is a user error, still written as a decision
    bad = _gate(invoke, world, "prev:nothing", "last:nothing", "--json-out", str(target))
    assert bad.exit_code == 2 and json.loads(target.read_text())["decision"] == "cannot_decide"


def _set_stats_version(store: ResultStore, run_id: str, metric: str, version: int) -> None:
    with store.engine.begin() as conn:
        config = conn.execute(sa.select(runs_table.c.config).where(runs_table.c.id == run_id)).scalar_one()
        config = dict(config)
        config["metric_stats"] = {**config["metric_stats"], metric: {**config["metric_stats"][metric],
                                                                     "stats_version": version}}
        conn.execute(sa.update(runs_table).where(runs_table.c.id == run_id).values(config=config))


def test_stats_of_an_unknown_version_are_refused(invoke, world) -> None:  # type: ignore[no-untyped-def]
    store = world["store"]
    run_info = store.runs()
    stored = next(r for r in run_info if r.id == world["v_a"]).config["metric_stats"]
    assert stored["accuracy"] == {"stats_schema": "accuracy", "stats_version": 1, "scale": "unit"}
    assert stored["f1"]["stats_version"] == 2
    assert _gate(invoke, world, "v_a", "v_b").exit_code == 0
    _set_stats_version(store, world["v_b"], "accuracy", 99)
    res = _gate(invoke, world, "v_a", "v_b", "--json")
    assert res.exit_code == 2, res.output
    reasons = " ".join(_decision(res)["reasons"])
    assert "accuracy was not tested" in reasons and "accuracy v99" in reasons


def test_code_named_by_the_store_is_never_imported(invoke, world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A store that names ``evaluate:/path/evil.py`` must not make compare, gate or report import it."""
    mark = tmp_path / "imported.txt"
    evil = tmp_path / "evil.py"
    evil.write_text(f"import pathlib\npathlib.Path({str(mark)!r}).write_text('pwned')\n", encoding="utf-8")
    name = f"evaluate:{evil}"
    store = world["store"]
    with store.engine.begin() as conn:
        for run_id in (world["e_a"], world["e_b"]):
            conn.execute(sa.update(metrics_table).where(metrics_table.c.run_id == run_id,
                                                        metrics_table.c.metric == "accuracy").values(metric=name))
            rows = conn.execute(sa.select(samples_table.c.idx, samples_table.c.stats)
                                .where(samples_table.c.run_id == run_id)).all()
            for idx, stats in rows:
                stats = dict(stats)
                stats[name] = stats.pop("accuracy")
                conn.execute(sa.update(samples_table).where(samples_table.c.run_id == run_id,
                                                            samples_table.c.idx == idx).values(stats=stats))
    res = _gate(invoke, world, "e_a", "e_b", "--metric", name, "--json")
    assert res.exit_code == 2, res.output
    assert "is code named by the results store; it is not imported" in " ".join(_decision(res)["reasons"])
    report = invoke("report", "--store", world["db"], "--format", "json", "--out", str(tmp_path / "lb"))
    assert report.exit_code == 0, report.output
    compared = invoke("compare", world["e_a"], world["e_b"], "--store", world["db"], "--resamples", "0")
    assert compared.exit_code == 0, compared.output
    assert not mark.exists()


def test_no_shared_samples_cannot_decide(world) -> None:  # type: ignore[no-untyped-def]
    store = world["store"]
    cmp = compare(store, resolve(store, world["a1"]), resolve(store, world["b1"]), n_resamples=0)
    assert run_gate(cmp, metrics=["accuracy"]).decision == "pass"  # McNemar needs no resampling
    assert run_gate(cmp).decision == "cannot_decide"  # f1_macro needs the bootstrap
    pair = cmp.pairs[0]
    pair.values = [unpaired_value("accuracy", "accuracy", True, 0, 1.0, 0.5, "no sample scored by both runs")]
    result = run_gate(cmp)
    assert result.decision == "cannot_decide" and result.code == 2
    assert "no sample scored by both runs" in result.reasons[0]
    assert run_gate(cmp, allow_untested=True).code == 0


def test_a_bug_while_rebuilding_is_an_internal_error(invoke, world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """compare must not turn an unexpected exception into 'untested' (and so into a decision)."""
    import llmbench.report.compare as compare_module

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(compare_module, "rebuild_metric", broken)
    res = _gate(invoke, world, "a1", "b1")
    assert res.exit_code == 3, res.output


def test_same_weights_in_another_folder_is_the_same_model(world) -> None:  # type: ignore[no-untyped-def]
    from llmbench.report.compare import model_change

    store = world["store"]
    base = next(r for r in store.runs() if r.id == world["a1"])
    moved = base.model_copy(update={"model_identity": {**base.model_identity, "path": "/new", "weights": "abc"}})
    same = base.model_copy(update={"model_identity": {**base.model_identity, "path": "/old", "weights": "abc"}})
    other = base.model_copy(update={"model_identity": {**base.model_identity, "path": "/old", "weights": "def"}})
    assert model_change(same, moved) is None
    assert "weights" in (model_change(same, other) or "")
