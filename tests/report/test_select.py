"""``llmbench select``: best model under cost / latency / score limits from stored runs, the
models not significantly different from it, and why each other model was excluded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_fixtures import classifier, run, write_cls_task, wrong_ids

from llmbench.metrics import mcnemar
from llmbench.report.errors import ReportError
from llmbench.report.select import Constraints, select
from llmbench.store import ResultStore

N = 40
LOCAL = {"arch": "BertForSequenceClassification"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("select")
    store = ResultStore(root / "db.sqlite")
    cls = write_cls_task(root / "tasks", n=N)
    run(store, cls, classifier("api", wrong_ids("s", range(0, 5)), cost=0.0004, latency=0.3),
        "openai:gpt-4o-mini", label="api-mini")
    run(store, cls, classifier("fast", wrong_ids("s", range(10, 16)), latency=0.004, identity=LOCAL),
        "hf:/models/fast", label="fast-local")
    run(store, cls, classifier("slow", wrong_ids("s", range(20, 21)), latency=2.0, identity=LOCAL),
        "hf:/models/slow", label="slow-local")
    run(store, cls, classifier("bad", wrong_ids("s", range(0, 25)), latency=0.001, identity=LOCAL),
        "hf:/models/bad", label="bad-local")
    return {"store": store, "db": str(root / "db.sqlite")}


def test_best_without_limits_is_the_most_accurate(world: dict) -> None:
    res = select(world["store"], ["sentiment_mini"], Constraints())
    assert res.best is not None and res.best.model == "slow-local"
    assert res.best.score == pytest.approx(1 - 1 / N)
    assert [c.model for c in res.qualifying] == ["slow-local", "api-mini", "fast-local", "bad-local"]


def test_latency_limit_excludes_with_the_measured_p95_and_ties_are_tested(world: dict) -> None:
    res = select(world["store"], ["sentiment_mini"], Constraints(max_p95_latency_s=1.0))
    assert res.best is not None and res.best.model == "api-mini"
    slow = next(c for c in res.excluded if c.model == "slow-local")
    assert slow.excluded == ["p95 latency 2 s > 1 s"]
    # api wrong on s00-s04, fast wrong on s10-s15: McNemar on the 11 discordant samples
    fast = next(c for c in res.qualifying if c.model == "fast-local")
    right_api = [i >= 5 for i in range(N)]
    right_fast = [not 10 <= i < 16 for i in range(N)]
    assert fast.p_vs_best["sentiment_mini"] == pytest.approx(mcnemar(right_api, right_fast))
    assert fast.tied_with_best and [c.model for c in res.tied] == ["fast-local"]
    bad = next(c for c in res.qualifying if c.model == "bad-local")
    assert not bad.tied_with_best  # 25 wrong vs 5: significant


def test_cost_limit_uses_measured_cost_and_local_compute_time(world: dict) -> None:
    res = select(world["store"], ["sentiment_mini"], Constraints(max_cost_per_1k=0.3, local_cost_per_hour=0.2))
    api = next(c for c in res.excluded if c.model == "api-mini")
    assert api.cost_per_1k == pytest.approx(0.0004 * 1000)
    assert api.excluded == ["cost $0.4 per 1k samples > $0.3"]
    slow = next(c for c in res.qualifying if c.model == "slow-local")
    assert slow.cost_per_1k == pytest.approx(0.2 * (2.0 * N) / 3600 / N * 1000)  # $/h × measured seconds
    assert res.best is not None and res.best.model == "slow-local"


def test_nothing_qualifies_exits_2_and_says_why(invoke, world: dict) -> None:  # type: ignore[no-untyped-def]
    out = invoke("select", "--task", "sentiment_mini", "--min", "0.99", "--store", world["db"])
    assert out.exit_code == 2
    assert "no model meets the constraints" in out.output
    assert "slow-local: score 0.975 below the required 0.99" in out.output


def test_cli_json_and_text(invoke, world: dict) -> None:  # type: ignore[no-untyped-def]
    out = invoke("select", "--task", "sentiment_mini", "--max-p95-latency", "1", "--json", "--store", world["db"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["best"]["model"] == "api-mini"
    assert [c["model"] for c in data["not_significantly_different"]] == ["fast-local"]
    assert {c["model"]: c["excluded"] for c in data["excluded"]} == {"slow-local": ["p95 latency 2 s > 1 s"]}
    text = invoke("select", "--task", "sentiment_mini", "--store", world["db"])
    assert text.exit_code == 0 and text.output.startswith("best: slow-local")
    assert "$1/h" in text.output  # the stated local price is printed


def test_unknown_task_is_a_user_error(world: dict, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no complete run of task nope"):
        select(world["store"], ["nope"], Constraints())


def test_several_tasks_average_on_the_unit_scale_and_need_every_task(tmp_path: Path) -> None:
    from report_fixtures import reader, write_qa_task

    store = ResultStore(tmp_path / "db.sqlite")
    cls, qa = write_cls_task(tmp_path / "tasks", n=20), write_qa_task(tmp_path / "tasks", n=20)
    run(store, cls, classifier("a", wrong_ids("s", range(4)), cost=0.001), "openai:a", label="both")
    run(store, qa, reader("a", wrong_ids("q", range(10)), cost=0.001), "openai:a", label="both")
    run(store, cls, classifier("b", set(), cost=0.001), "openai:b", label="cls-only")
    res = select(store, ["sentiment_mini", "qa_mini"], Constraints())
    assert res.best is not None and res.best.model == "both"
    # accuracy 16/20 (unit scale) and SQuAD F1 50.0 (percent scale, divided by 100)
    assert res.best.score == pytest.approx((16 / 20 + 50.0 / 100) / 2)
    assert {c.model: c.excluded for c in res.excluded} == {"cls-only": ["no complete run on qa_mini"]}
    assert res.best.cost_per_1k == pytest.approx(0.001 * 1000)  # (20 + 20) samples at $0.001
