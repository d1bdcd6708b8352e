"""``judge:`` in a task file and in a suite: ``llmbench run`` answers, then the judge grades the
answers through the same adapter, cache and strict verdicts as ``llmbench judge`` — rubric runs
and every pair of a suite's models in both orders — and the judged runs join the plan's batch,
with the judge in the metric signature, invalid verdicts counted and the judge's tokens in the
cost. The judge is the scripted one of ``judge_server`` on a local OpenAI-compatible server."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_inprocess import run_cli
from fault_server import ServerThread
from judge_server import judge_app

from llmbench.store import ResultStore

ROWS = [
    {"id": "good", "document": "Good summary here. More details follow.", "summary": "Good summary here."},
    {"id": "bad", "document": "This is bad. Extra words.", "summary": "Something else."},
    {"id": "ramble", "document": "We ramble now. And on.", "summary": "Other."},
    {"id": "plain", "document": "Neutral text. And more of it here.", "summary": "Other text."},
    {"id": "single", "document": "Single sentence only.", "summary": "One sentence."},
]
TASK = ("name: judged_demo\nkind: summarization\ndataset: {path: rows.jsonl}\n"
        "fields: {id: id, input: document, target: summary}\nmetrics: [rouge]\nprimary_metric: rougeL\n")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")
    monkeypatch.setenv("LLMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LLMBENCH_STORE", str(tmp_path / "db.sqlite"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def _task(judge: str) -> None:
    Path("task.yaml").write_text(TASK + f"judge: {judge}\n")


def test_a_task_file_judge_grades_every_run_and_reruns_from_cache(workdir: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    app = judge_app()
    with ServerThread(app) as server:
        _task(f"{{model: openai:judge-1, mode: rubric, scale: [1, 5], options: {{base_url: '{server.url}'}}}}")
        code, out, err = run_cli(["run", "-m", "baseline:lead", "-t", "task.yaml", "--resamples", "0"], capsys)
        assert code == 0, err
        assert app.state.calls == 5
        assert "judged_demo@judge: judge_score=0.5000" in out and "1 invalid verdicts" in out
        assert "stored 1 run(s) and 1 judged run(s)" in out
        db = ResultStore("db.sqlite")
        source, judged = db.runs(task="judged_demo")[-1], db.runs(task="judged_demo@judge")[-1]
        assert judged.batch_id == source.batch_id and judged.model == "baseline:lead"
        values = {m.value.name: m for m in db.metrics(judged.id)}
        # good -> 5 (lead == reference), bad -> 1, ramble -> invalid, plain -> 3, single -> 3
        assert values["judge_mean"].value.value == pytest.approx((5 + 1 + 3 + 3) / 4)
        assert values["judge_score"].value.value == pytest.approx(((5 + 1 + 3 + 3) / 4 - 1) / 4)
        assert values["judge_valid"].value.value == pytest.approx(4 / 5)
        args = values["judge_score"].metric_args
        assert args["judge"] == "openai:judge-1" and len(args["fingerprint"]) == 16
        usage = judged.usage
        assert usage["invalid_verdicts"] == 1
        judge_tokens = usage["judge"]["prompt_tokens"] + usage["judge"]["completion_tokens"]
        assert judge_tokens > 0
        assert usage["prompt_tokens"] + usage["completion_tokens"] == pytest.approx(
            judge_tokens + (source.usage.get("prompt_tokens") or 0) + (source.usage.get("completion_tokens") or 0))

        code, out, err = run_cli(["run", "-m", "baseline:lead", "-t", "task.yaml", "--resamples", "0"], capsys)
        assert code == 0, err
        assert app.state.calls == 5  # every verdict from the response cache
        assert "judge 5 cached / 0 asked" in out
    judged_runs = db.runs(task="judged_demo@judge")
    code, out, err = run_cli(["show", db.runs(task="judged_demo")[-1].id], capsys)
    assert code == 0, err
    # the evaluated run shows its judged number (from the judgement of this very run)
    assert f"judged: judged_demo@judge judge_score=0.5000 by openai:judge-1 (run {judged_runs[-1].id})" in out
    assert judged_runs[0].id not in out


def test_a_changed_judge_block_is_not_comparable(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with ServerThread(judge_app()) as server:
        for criteria in ("brevity", "faithfulness"):
            _task(f"{{model: openai:judge-1, criteria: {criteria}, options: {{base_url: '{server.url}'}}}}")
            code, _, err = run_cli(["run", "-m", "baseline:lead", "-t", "task.yaml", "--resamples", "0"], capsys)
            assert code == 0, err
    db = ResultStore("db.sqlite")
    first, second = db.runs(task="judged_demo@judge")
    sig = [next(m.metric_args for m in db.metrics(r.id) if m.metric == "judge_score") for r in (first, second)]
    assert sig[0]["fingerprint"] != sig[1]["fingerprint"]
    assert first.task_fingerprint != second.task_fingerprint
    sources = db.runs(task="judged_demo")
    assert sources[0].task_fingerprint == sources[1].task_fingerprint  # the task's own numbers stay comparable


def _suite(server_url: str, models: list[str], judge_extra: str = "") -> Path:
    Path("task.yaml").write_text(TASK)
    lines = ["name: judged", "n_resamples: 40", "models:", *[f"  - {m}" for m in models], "tasks:", "  - task.yaml",
             f"judge: {{model: openai:judge-1, mode: pairwise, options: {{base_url: '{server_url}'}}{judge_extra}}}"]
    Path("suite.yaml").write_text("\n".join(lines) + "\n")
    return Path("suite.yaml")


def test_a_suite_judges_every_pair_in_both_orders_and_the_leaderboard_rates_them(
        workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from llmbench.report import leaderboard, text

    app = judge_app()
    with ServerThread(app) as server:
        suite = _suite(server.url, ["baseline:copy", "baseline:lead"])
        code, out, err = run_cli(["run", "--suite", str(suite)], capsys)
        assert code == 0, err
        assert app.state.calls == 10  # 5 samples x both orders
        db = ResultStore("db.sqlite")
        (pair,) = db.runs(task="judged_demo@pairwise")
        sources = {r.model: r for r in db.runs(task="judged_demo")}
        assert pair.model == "baseline:lead" and pair.batch_id == sources["baseline:lead"].batch_id
        values = {m.value.name: m.value.value for m in db.metrics(pair.id)}
        # lead (B) is shorter on good/bad/plain -> wins both orders; single: same text -> tie; ramble: invalid
        assert values["win_rate"] == pytest.approx((1 + 1 + 1 + 0.5) / 4)
        assert values["consistency"] == 1.0 and values["judge_valid"] == pytest.approx(4 / 5)
        assert "Bradley–Terry ratings over 4 comparisons" in out
        code, shown, err = run_cli(["show", sources["baseline:copy"].id], capsys)  # either side lists the pair
        assert code == 0, err
        assert f"judged: judged_demo@pairwise (baseline:lead vs baseline:copy) win_rate=0.8750 by openai:judge-1 " \
               f"(run {pair.id})" in shown
        lb = leaderboard.build(db, n_resamples=7)  # the view uses the judgement's own resamples (40)
        (view,) = lb.ratings
        assert view["runs"] == [pair.id] and view["n_resamples"] == 40

        # One truth: `llmbench judge pairwise` on the same runs prints the leaderboard's numbers.
        code, cli_out, err = run_cli(["judge", "pairwise", sources["baseline:copy"].id, sources["baseline:lead"].id,
                                      "--judge", "openai:judge-1", "--base-url", server.url, "--max-new-tokens", "8",
                                      "--resamples", "40", "--json"], capsys)
        assert code == 0, err
    assert view["task"] == "judged_demo" and view["n_comparisons"] == 4
    rows = {m["model"]: m for m in view["models"]}
    assert rows["baseline:lead"]["win_rate"] == pytest.approx(3.5 / 4)
    assert rows["baseline:copy"]["win_rate"] == pytest.approx(0.5 / 4)
    assert rows["baseline:lead"]["consistency"] == 1.0 and rows["baseline:lead"]["n_comparisons"] == 4
    # two players: the Bradley–Terry MLE is sigmoid(r_lead - r_copy) = lead's win rate
    gap = rows["baseline:lead"]["rating"] - rows["baseline:copy"]["rating"]
    assert gap == pytest.approx(np.log(3.5 / 0.5), abs=1e-6)
    assert json.loads(cli_out)["models"] == view["models"]
    assert "### Ratings: judged\\_demo" in text.to_markdown(lb)


def test_a_pairwise_judge_with_one_model_says_so(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with ServerThread(judge_app()) as server:
        code, out, err = run_cli(["run", "--suite", str(_suite(server.url, ["baseline:lead"]))], capsys)
    assert code == 0, err
    assert "pairwise judging compares two models or more" in out
    assert ResultStore("db.sqlite").runs(task="judged_demo@pairwise") == []


@pytest.mark.parametrize(("where", "block", "expected"), [
    ("task", "{model: openai:j, scael: [1, 5]}", "unknown key 'judge.scael'"),
    ("task", "{model: openai:j, mode: elo}", "judge.mode"),
    ("task", "{model: openai:j, scale: [5, 1]}", "scale [5, 1] is empty"),
    ("task", "{model: 'nosuch:model'}", "nosuch"),
    ("task", "{model: openai:j, template: '{{ input '}", "judge template"),
    ("suite", "{model: openai:j, criteria: x, temprature: 0}", "judge.temprature: unknown key"),
])
def test_a_bad_judge_block_is_one_line_exit_2_before_any_run(workdir: Path, capsys: pytest.CaptureFixture[str],
                                                            where: str, block: str, expected: str) -> None:
    if where == "task":
        _task(block)
        args = ["run", "-m", "baseline:lead", "-t", "task.yaml"]
    else:
        Path("task.yaml").write_text(TASK)
        Path("suite.yaml").write_text(f"name: s\nmodels: [baseline:lead]\ntasks: [task.yaml]\njudge: {block}\n")
        args = ["run", "--suite", "suite.yaml"]
    code, _, err = run_cli(args, capsys)
    assert code == 2, err
    assert expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not Path("db.sqlite").exists() or ResultStore("db.sqlite").runs() == []


CLS = ("name: c\nkind: classification\nlabels: [a, b]\ndataset: {path: cls.jsonl}\n"
       "fields: {id: id, input: document, target: label}\n")


def test_a_judge_on_a_classification_task_is_refused(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("cls.jsonl").write_text('{"id": "x", "document": "d", "label": "a"}\n')
    Path("task.yaml").write_text(CLS + "judge: {model: openai:j}\n")
    code, _, err = run_cli(["run", "-m", "baseline:majority", "-t", "task.yaml"], capsys)
    assert code == 2 and "judge: a judge grades free-text answers" in err and "not a classification task" in err
    assert len(err.strip().splitlines()) == 1
    Path("task.yaml").write_text(CLS)  # a suite's judge: checked against the task's kind as the plan loads
    Path("suite.yaml").write_text("name: s\nmodels: [baseline:majority]\ntasks: [task.yaml]\n"
                                  "judge: {model: openai:j}\n")
    code, _, err = run_cli(["run", "--suite", "suite.yaml"], capsys)
    assert code == 2 and "task 'c' is a classification task" in err and len(err.strip().splitlines()) == 1
    assert not Path("db.sqlite").exists() or ResultStore("db.sqlite").runs() == []


def test_the_gate_between_two_judged_batches_gates_the_judged_metric(workdir: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    with ServerThread(judge_app()) as server:
        _task(f"{{model: openai:judge-1, options: {{base_url: '{server.url}'}}}}")
        for _ in range(2):
            code, _, err = run_cli(["run", "-m", "baseline:lead", "-t", "task.yaml", "--tag", "nightly",
                                    "--resamples", "50"], capsys)
            assert code == 0, err
    code, out, err = run_cli(["gate", "--baseline", "prev:nightly", "--candidate", "last:nightly", "--resamples",
                              "50"], capsys)
    assert code == 0, out + err
    assert "judged_demo@judge" in out and "judge_score" in out  # the judged runs are in each nightly batch
