"""--repeats and the noise floor (report.noise): a scripted model that samples (its answer on each
sample depends on the request's decoding seed and the night), the between-repeat variance checked
with the statistics module, the gate pooling the repeats, and a simulation showing why: gating each
repeat on its own flags an unchanged sampled model several times more often than the pooled test.
"""

from __future__ import annotations

import json
import random
import statistics
from pathlib import Path

import numpy as np
import pytest
from report_fixtures import LABELS, ScriptedAdapter, gold_label, write_cls_task

from llmbench.report.compare import Comparison, Pair, compare
from llmbench.report.gate import run_gate
from llmbench.report.noise import average_repeats, for_runs, repeat_value
from llmbench.report.paired import compare_value, rebuild_metric
from llmbench.report.refs import resolve
from llmbench.runner import ModelEntry, RunConfig, evaluate
from llmbench.store import ResultStore
from llmbench.tasks import load_task
from llmbench.tasks.perturbed import repeats

N, K = 60, 4


def sampler(night: str, seeds: set[int]) -> ScriptedAdapter:
    """Right on sample i with probability 0.3 + 0.4 * (i % 2), drawn per (night, seed, sample)."""
    def answer(r) -> str:  # type: ignore[no-untyped-def]
        seeds.add(r.config.seed)
        i = int(r.sample_id[1:])
        right = random.Random(f"{night}:{r.config.seed}:{r.sample_id}").random() < 0.3 + 0.4 * (i % 2)
        gold = gold_label(i)
        return gold if right else LABELS[1 - LABELS.index(gold)]
    return ScriptedAdapter("sampler", answer)


def night(store: ResultStore, task_path: Path, name: str, seeds: set[int]) -> str:
    task = load_task(str(task_path))
    batch = f"night-{name}"
    adapter = sampler(name, seeds)
    for t in (task, *repeats(task, K)):  # what `llmbench run --repeats K` plans (cli.robustness)
        evaluate(t, adapter, ModelEntry(spec="hf:/s", label="s"), RunConfig(n_resamples=0, use_cache=False,
                 tags=("nightly",)), store=store, cache=None, batch_id=batch)
    return batch


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("noise")
    store = ResultStore(root / "db.sqlite")
    task = write_cls_task(root / "t", n=N, metrics=["accuracy"])
    seeds: set[int] = set()
    b1, b2 = night(store, task, "1", seeds), night(store, task, "2", seeds)
    return {"store": store, "db": str(root / "db.sqlite"), "b1": b1, "b2": b2, "seeds": seeds}


def test_repeats_draw_with_distinct_seeds_and_report_their_variance(world) -> None:  # type: ignore[no-untyped-def]
    store: ResultStore = world["store"]
    assert world["seeds"] == set(range(K))  # repeat k asks with decoding seed 0 + k
    runs = [r for r in store.runs() if r.batch_id == world["b1"]]
    assert sorted(r.task for r in runs) == ["sentiment_mini", *(f"sentiment_mini~repeat{k}" for k in range(1, K))]
    (floor,) = for_runs(store, runs)
    scores = [next(m.value.value for m in store.metrics(r.id) if m.value.name == "accuracy")
              for r in sorted(runs, key=lambda r: r.task)]
    assert floor.scores == scores and len(scores) == K
    assert floor.sd == pytest.approx(statistics.stdev(scores)) and floor.mean == pytest.approx(statistics.mean(scores))
    answers: dict[str, set[str | None]] = {}
    for r in runs:
        for s in store.samples(r.id):
            answers.setdefault(s.sample_id, set()).add(s.prediction)
    assert floor.unstable == pytest.approx(sum(len(a) > 1 for a in answers.values()) / N) and floor.unstable > 0.3


def test_gate_pools_the_repeats(invoke, world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "gate.json"
    res = invoke("gate", "--store", world["db"], "--baseline", world["b1"], "--candidate", world["b2"],
                 "--metric", "accuracy", "--json-out", out)
    data = json.loads(out.read_text(encoding="utf-8"))
    (pair,) = data["comparison"]["pairs"]  # the repeat runs are pooled, not gated one by one
    (value,) = pair["values"]
    assert value["test"] == "paired-bootstrap (means over repeats)" and "4 (A) and 4 (B) draws" in value["note"]
    store: ResultStore = world["store"]
    means = {}
    for batch in (world["b1"], world["b2"]):
        per: dict[str, list[int]] = {}
        for r in (r for r in store.runs() if r.batch_id == batch):
            for s in store.samples(r.id):
                per.setdefault(s.sample_id, []).append(s.stats["accuracy"]["correct"])
        means[batch] = {k: float(np.mean(v)) for k, v in per.items()}
    hand = np.mean([means[world["b2"]][i] - means[world["b1"]][i] for i in means[world["b1"]]])
    assert value["delta"] == pytest.approx(hand)
    assert value["a"] == pytest.approx(np.mean(list(means[world["b1"]].values())))
    assert data["power"][0]["mde"] is not None and not data["power"][0]["binary"]
    # The decision is the gate's rule on the pooled value (an unchanged model: flagged only by chance).
    flagged = value["p"] < 0.05 and value["drop"] > 0
    assert res.exit_code == (1 if flagged else 0), res.output


def test_pooling_keeps_false_alarms_near_alpha_where_separate_gates_multiply_them(world) -> None:  # type: ignore[no-untyped-def]
    store: ResultStore = world["store"]
    cmp = compare(store, resolve(store, world["b1"]), resolve(store, world["b2"]), n_resamples=0)
    pooled_cmp = average_repeats(store, cmp, n_resamples=200)
    (template,) = pooled_cmp.pairs
    metric = rebuild_metric(template.a, "accuracy", {})
    rng = np.random.default_rng(7)
    q = rng.uniform(0.2, 0.8, size=200)
    ids = [f"s{i:03d}" for i in range(200)]

    def gate(values: list) -> bool:  # type: ignore[type-arg]
        pairs = [Pair(task=template.task, a=template.a, b=template.b, values=[v]) for v in values]
        result = run_gate(Comparison(a=cmp.a, b=cmp.b, pairs=pairs, only_a=[], only_b=[], warnings=[]))
        return result.decision == "regression"

    nights, pooled, separate = 300, 0, 0
    for night_no in range(nights):
        a = rng.random((K, 200)) < q  # an unchanged model: both nights draw from the same q
        b = rng.random((K, 200)) < q
        ma = dict(zip(ids, a.mean(axis=0), strict=True))
        mb = dict(zip(ids, b.mean(axis=0), strict=True))
        pooled += gate([repeat_value("accuracy", "accuracy", True, ma, mb, n_resamples=200, seed=night_no, note="")])
        per_repeat = [compare_value(metric, "accuracy", True, ids,
                                    [{"prediction": "x", "gold": "x" if x else "y", "correct": int(x)} for x in a[k]],
                                    [{"prediction": "x", "gold": "x" if x else "y", "correct": int(x)} for x in b[k]],
                                    n_resamples=0) for k in range(K)]
        separate += gate(per_repeat)
    print(f"false alarms over {nights} unchanged nights: pooled {pooled}, any of {K} separate {separate}")
    # One-sided alarms (a drop) at alpha 0.05: at most 2.5% per test (McNemar's exact test is
    # conservative); pooled is one test, separate gating is any of K.
    assert pooled / nights <= 0.04
    assert separate >= 2 * max(pooled, 1)
