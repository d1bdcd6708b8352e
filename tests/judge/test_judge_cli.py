"""``llmbench judge`` end to end against a scripted judge on a local OpenAI-compatible server:
rubric scores, invalid verdicts counted, pairwise verdicts in both orders, a judge with pure
position bias found out, cache hits on a rerun, judged runs read by compare and gate, and
agreement with human labels."""

from __future__ import annotations

import json
from pathlib import Path

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
    (tmp_path / "task.yaml").write_text(TASK)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")
    monkeypatch.setenv("LLMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LLMBENCH_STORE", str(tmp_path / "db.sqlite"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def _run(model: str, capsys: pytest.CaptureFixture[str]) -> str:
    code, _out, err = run_cli(["run", "-m", model, "-t", "task.yaml", "--resamples", "0"], capsys)
    assert code == 0, err
    return ResultStore("db.sqlite").runs(model=model)[-1].id


def _judge(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict, str]:
    code, out, err = run_cli(["judge", *args, "--json", "--resamples", "50"], capsys)
    return code, (json.loads(out) if code == 0 else {}), err


def test_rubric_scores_counts_invalid_and_reruns_from_cache(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_id = _run("baseline:lead", capsys)
    app = judge_app()
    with ServerThread(app) as server:
        code, body, err = _judge(capsys, "rubric", run_id, "--judge", "openai:judge-1", "--base-url", server.url)
        assert code == 0, err
        assert app.state.calls == 5
        values = {v["name"]: v["value"] for v in body["values"]}
        # good -> 5 (lead == reference), bad -> 1, ramble -> invalid, plain -> 3, single -> 3
        assert values["judge_mean"] == pytest.approx((5 + 1 + 3 + 3) / 4)
        assert values["judge_score"] == pytest.approx(((5 + 1 + 3 + 3) / 4 - 1) / 4)
        assert values["judge_valid"] == pytest.approx(4 / 5)
        assert body["usage"]["invalid_verdicts"] == 1 and body["usage"]["self_judged"] == []
        judge_tokens = body["usage"]["judge"]["prompt_tokens"]
        assert judge_tokens > 0 and body["usage"]["prompt_tokens"] >= judge_tokens  # the judge's cost counts
        db = ResultStore("db.sqlite")
        stored = db.run(body["run_id"])
        assert stored.task == "judged_demo@judge" and stored.model == "baseline:lead"
        samples = {s.sample_id: s for s in db.samples(stored.id)}
        assert samples["ramble"].stats["judge_score"] == {"score": 0, "valid": 0}
        assert samples["good"].stats["judge_score"] == {"score": 5, "valid": 1}
        assert samples["good"].prediction == "Good summary here."

        code, again, err = _judge(capsys, "rubric", run_id, "--judge", "openai:judge-1", "--base-url", server.url)
        assert code == 0, err
        assert app.state.calls == 5  # every verdict from the cache
        assert again["usage"]["judge"]["cache_hits"] == 5
        assert again["values"] == body["values"]


def test_a_changed_judge_prompt_is_not_comparable(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_id = _run("baseline:lead", capsys)
    template = workdir / "judge.j2"
    template.write_text("Grade it.\nTask input:\n{{ input }}\n\nReference answer:\n{{ reference }}\n\n"
                        "Answer to grade:\n{{ prediction }}\n\nScore (1-5):")
    with ServerThread(judge_app()) as server:
        _, first, _ = _judge(capsys, "rubric", run_id, "--judge", "openai:judge-1", "--base-url", server.url)
        _, second, _ = _judge(capsys, "rubric", run_id, "--judge", "openai:judge-1", "--base-url", server.url,
                              "--template", str(template))
    assert [v["value"] for v in first["values"]] == [v["value"] for v in second["values"]]
    assert first["values"][0]["signature"] != second["values"][0]["signature"]
    code, out, _ = run_cli(["compare", first["run_id"], second["run_id"]], capsys)
    assert code == 0
    assert "judge_score" in out and "fingerprint" in out  # the metric arguments differ: flagged
    code, out, err = run_cli(["gate", "--baseline", first["run_id"], "--candidate", second["run_id"]], capsys)
    assert code == 2 and "different benchmark" in out + err  # the gate refuses to compare them


def test_judged_runs_go_through_compare_and_gate(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lead, copy = _run("baseline:lead", capsys), _run("baseline:copy", capsys)
    with ServerThread(judge_app()) as server:
        _, a, _ = _judge(capsys, "rubric", lead, "--judge", "openai:judge-1", "--base-url", server.url)
        _, b, _ = _judge(capsys, "rubric", copy, "--judge", "openai:judge-1", "--base-url", server.url)
        # the same judgement again (answered from the cache)
        _, again, _ = _judge(capsys, "rubric", lead, "--judge", "openai:judge-1", "--base-url", server.url)
    code, out, err = run_cli(["compare", a["run_id"], b["run_id"], "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    text = json.dumps(report)
    assert "judge_score" in text
    # copy loses the exact match on "good" (5 -> 3): mean 3.0 -> 2.5 over the 4 valid verdicts
    code, out, err = run_cli(["gate", "--baseline", a["run_id"], "--candidate", b["run_id"], "--metric",
                              "judge_mean", "--json"], capsys)
    checked = json.loads(out)["checked"]
    assert [(v["name"], v["a"], v["b"]) for v in checked] == [("judge_mean", 3.0, 2.5)], out
    assert checked[0]["largest_drops"] == [{"sample_id": "good", "a": 5.0, "b": 3.0}]  # paired by sample id
    code, out, err = run_cli(["gate", "--baseline", a["run_id"], "--candidate", again["run_id"]], capsys)
    assert code == 0, out + err
    # select reads the judged task like any other: the best model by the judge's score
    code, out, err = run_cli(["select", "--task", "judged_demo@judge", "--json", "--resamples", "50"], capsys)
    assert code == 0, err
    answer = json.loads(out)
    assert answer["best"]["model"] == "baseline:lead" and answer["best"]["score"] == pytest.approx(0.5)
    assert answer["not_significantly_different"][0]["score"] == pytest.approx(0.375)


def test_pairwise_both_orders_and_position_bias(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy, lead = _run("baseline:copy", capsys), _run("baseline:lead", capsys)
    fair = judge_app()
    with ServerThread(fair) as server:
        code, body, err = _judge(capsys, "pairwise", copy, lead, "--judge", "openai:judge-1",
                                 "--base-url", server.url)
    assert code == 0, err
    assert fair.state.calls == 10  # 5 samples x both orders
    values = {v["name"]: v["value"] for v in body["pairs"][0]["values"]}
    # lead (B) is shorter on good/bad/plain -> wins both orders; "single" is the same text -> tie;
    # "ramble" -> invalid in both orders
    assert values["judge_valid"] == pytest.approx(4 / 5)
    assert values["win_rate"] == pytest.approx((1 + 1 + 1 + 0.5) / 4)
    assert values["tie_rate"] == pytest.approx(1 / 4)
    assert values["consistency"] == pytest.approx(1.0)
    ratings = {r["player"]: r["rating"] for r in body["ratings"]["ratings"]}
    assert ratings["baseline:lead"] > ratings["baseline:copy"]

    biased = judge_app()
    biased.state.always_first = True
    with ServerThread(biased) as server:
        code, body, err = _judge(capsys, "pairwise", copy, lead, "--judge", "openai:judge-2",
                                 "--base-url", server.url)
    assert code == 0, err
    values = {v["name"]: v["value"] for v in body["pairs"][0]["values"]}
    assert values["consistency"] == 0.0  # every verdict flipped with the order
    assert values["tie_rate"] == 1.0 and values["win_rate"] == 0.5
    assert body["pairs"][0]["usage"]["position_consistency"] == 0.0
    db = ResultStore("db.sqlite")
    stored = db.samples(body["pairs"][0]["run_id"])
    assert {s.stats["_judge"]["ab"] for s in stored if s.sample_id != "ramble"} == {"A"}
    assert {s.stats["_judge"]["ba"] for s in stored if s.sample_id != "ramble"} == {"A"}


def test_agreement_with_human_labels(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from scipy.stats import spearmanr
    from sklearn.metrics import cohen_kappa_score

    items = [
        {"id": "1", "input": "x", "reference": "Same.", "prediction": "Same.", "human": 5},
        {"id": "2", "input": "x", "reference": "Ref.", "prediction": "bad one", "human": 1},
        {"id": "3", "input": "x", "reference": "Ref.", "prediction": "fine", "human": 3},
        {"id": "4", "input": "x", "reference": "Ref.", "prediction": "ok", "human": 4},
        {"id": "5", "input": "x", "reference": "Ref.", "prediction": "ramble", "human": 2},
        {"id": "6", "input": "x", "reference": "Ref.", "prediction": "bad too", "human": 2},
    ]
    path = workdir / "labels.jsonl"
    path.write_text("# comment line\n" + "\n".join(json.dumps(r) for r in items))
    with ServerThread(judge_app()) as server:
        code, body, err = _judge(capsys, "agreement", str(path), "--judge", "openai:judge-1",
                                 "--base-url", server.url)
    assert code == 0, err
    assert body["n_items"] == 6 and body["n_invalid"] == 1
    judge_scores, human = [5, 1, 3, 3, 1], [5, 1, 3, 4, 2]  # item 5 (invalid) left out
    assert body["spearman"]["value"] == pytest.approx(spearmanr(judge_scores, human).statistic, abs=1e-12)
    assert body["cohen_kappa"]["value"] == pytest.approx(cohen_kappa_score(judge_scores, human), abs=1e-12)


@pytest.mark.parametrize(("args", "needle"), [
    (["rubric", "nope", "--judge", "baseline:lead"], "nope"),
    (["rubric", "RUN", "--judge", "baseline:lead", "--scale", "5-1"], "--scale"),
    (["rubric", "RUN", "--judge", "baseline:lead", "--template", "missing.j2"], "missing.j2"),
    (["rubric", "RUN", "--judge", "nosuch:thing"], "nosuch"),
    (["pairwise", "RUN", "--judge", "baseline:lead"], "two runs"),
    (["agreement", "missing.jsonl", "--judge", "baseline:lead"], "missing.jsonl"),
])
def test_user_errors_are_one_line_exit_2(workdir: Path, capsys: pytest.CaptureFixture[str],
                                         args: list[str], needle: str) -> None:
    run_id = _run("baseline:lead", capsys)
    code, _out, err = run_cli(["judge", *[run_id if a == "RUN" else a for a in args]], capsys)
    assert code == 2, err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_a_template_that_escapes_the_sandbox_is_refused(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_id = _run("baseline:lead", capsys)
    (workdir / "evil.j2").write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    code, _out, err = run_cli(["judge", "rubric", run_id, "--judge", "baseline:lead", "--template", "evil.j2"], capsys)
    assert code == 2 and "sandbox" in err


def test_the_baseline_as_judge_gives_only_invalid_verdicts(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A judge whose answers are never verdicts (the lead baseline copies the prompt's first
    sentence) scores nothing: every sample is invalid, none guessed."""
    run_id = _run("baseline:lead", capsys)
    code, body, err = _judge(capsys, "rubric", run_id, "--judge", "baseline:lead")
    assert code == 0, err
    values = {v["name"]: v["value"] for v in body["values"]}
    assert values == {"judge_valid": 0.0}  # no score is made up for an invalid verdict
    assert body["usage"]["invalid_verdicts"] == 5
    assert body["usage"]["undefined_values"] == ["judge_score", "judge_mean"]
    assert body["usage"]["self_judged"] == ["baseline:lead"]  # the judge graded its own answers
    code, out, _ = run_cli(["judge", "rubric", run_id, "--judge", "baseline:lead"], capsys)
    assert code == 0 and "prefer their own answers" in out


def test_the_shipped_label_set_reads_and_matches_the_dataset() -> None:
    """30 hand-labelled items; every id is a stdlib_docstrings test sample of this interpreter
    whose summary line is the item's reference (ids hash the docstring text)."""
    from llmbench.data.stdlib_docstrings import load
    from llmbench.judge.labels import read_labels, resolve_labels

    items = read_labels(resolve_labels("stdlib_docstrings"))
    assert len(items) == 30 and {lab.human for lab in items} == {1, 2, 3, 4, 5}
    rows = {r["id"]: r for r in load("test")}
    present = [lab for lab in items if lab.item.id in rows]  # another Python may have changed a docstring
    assert len(present) >= 25
    for lab in present:
        assert lab.item.references == (rows[lab.item.id]["summary"],)


def test_pairwise_agreement_with_human_preferences(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sklearn.metrics import cohen_kappa_score

    items = [  # the scripted judge prefers the shorter answer
        {"id": "1", "input": "x", "answer_a": "short", "answer_b": "much longer answer", "human": "A"},
        {"id": "2", "input": "x", "answer_a": "a long answer here", "answer_b": "brief", "human": "B"},
        {"id": "3", "input": "x", "answer_a": "same", "answer_b": "same", "human": "tie"},
        {"id": "4", "input": "x", "answer_a": "tiny", "answer_b": "a verbose answer", "human": "B"},
        {"id": "5", "input": "ramble", "answer_a": "a", "answer_b": "b", "human": "A"},
    ]
    path = workdir / "prefs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in items))
    with ServerThread(judge_app()) as server:
        code, body, err = _judge(capsys, "agreement", str(path), "--judge", "openai:judge-1",
                                 "--base-url", server.url)
    assert code == 0, err
    assert body["n_items"] == 5 and body["n_invalid"] == 1
    assert [i["judge"] for i in body["items"]] == ["A", "B", "tie", "A", None]
    assert body["cohen_kappa"]["value"] == pytest.approx(
        cohen_kappa_score(["A", "B", "tie", "A"], ["A", "B", "tie", "B"]), abs=1e-12)


def test_rubric_with_human_scores_and_the_console_output(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from scipy.stats import spearmanr

    lead, copy = _run("baseline:lead", capsys), _run("baseline:copy", capsys)
    human = workdir / "human.jsonl"
    human.write_text("\n".join(json.dumps({"id": i, "human": h}) for i, h in
                               [("good", 5), ("bad", 2), ("ramble", 1), ("plain", 3), ("nope", 4)]))
    with ServerThread(judge_app()) as server:
        code, body, err = _judge(capsys, "rubric", lead, "--judge", "openai:judge-1", "--base-url", server.url,
                                 "--human", str(human))
        assert code == 0, err
        # shared ids: good, bad, ramble (invalid verdict, left out), plain; "nope" is not in the run
        assert body["agreement"]["n_items"] == 4 and body["agreement"]["n_invalid"] == 1
        assert body["agreement"]["spearman"]["value"] == pytest.approx(spearmanr([5, 1, 3], [5, 2, 3]).statistic)
        code, out, err = run_cli(["judge", "rubric", lead, "--judge", "openai:judge-1", "--base-url", server.url,
                                  "--human", str(human)], capsys)
        assert code == 0, err
        assert "judge_score" in out and "1 invalid verdicts" in out and "spearman" in out
        code, out, err = run_cli(["judge", "pairwise", copy, lead, "--judge", "openai:judge-1", "--base-url",
                                  server.url], capsys)
        assert code == 0, err
        assert "win_rate" in out and "lc_win_rate" in out and "Bradley–Terry" in out


def test_pairwise_with_no_valid_verdict_says_so(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy, lead = _run("baseline:copy", capsys), _run("baseline:lead", capsys)
    code, out, err = run_cli(["judge", "pairwise", copy, lead, "--judge", "baseline:lead", "--resamples", "20"],
                             capsys)
    assert code == 0, err
    assert "no valid verdicts: no Bradley–Terry ratings" in out and "Warning" not in err


def test_verdict_by_loglikelihood_is_the_most_likely_option(workdir: Path, capsys: pytest.CaptureFixture[str],
                                                            tiny_gpt2: Path) -> None:
    """A local judge that cannot write a verdict still gives one per sample by log-likelihood:
    the most likely of " 1" .. " 5" after the prompt, checked here against the adapter's own
    scores of the stored judge prompts."""
    from llmbench.models import load_adapter
    from llmbench.types import Request

    run_id = _run("baseline:lead", capsys)
    code, body, err = _judge(capsys, "rubric", run_id, "--judge", f"hf:{tiny_gpt2}", "--no-chat",
                             "--verdict-by", "loglikelihood")
    assert code == 0, err
    assert {v["name"]: v["value"] for v in body["values"]}["judge_valid"] == 1.0
    db = ResultStore("db.sqlite")
    samples = db.samples(body["run_id"])
    adapter = load_adapter(f"hf:{tiny_gpt2}")
    options = tuple(f" {k}" for k in range(1, 6))
    requests = [Request(sample_id=s.sample_id, kind="loglikelihood", prompt=s.prompt, continuations=options)
                for s in samples]
    scores = dict(adapter.run(requests))
    for k, s in enumerate(samples):
        logprobs = scores[k].logprobs
        assert logprobs is not None
        assert s.stats["judge_score"]["score"] == 1 + max(range(5), key=lambda j: logprobs[j])
    assert "loglikelihood" in json.dumps(db.run(body["run_id"]).config["judge"])  # part of the fingerprint


def test_agreement_by_loglikelihood_ranks_the_expected_score(workdir: Path, capsys: pytest.CaptureFixture[str],
                                                             tiny_gpt2: Path) -> None:
    import math

    from scipy.stats import spearmanr

    from llmbench.judge.rubric import expected_score

    assert expected_score([math.log(0.2), math.log(0.3), math.log(0.5)], 1) == pytest.approx(2.3)
    items = [{"id": str(k), "input": f"text {k}", "reference": "Ref.", "prediction": f"answer {k} " * k,
              "human": 1 + k % 5} for k in range(8)]
    path = workdir / "labels.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in items))
    code, body, err = _judge(capsys, "agreement", str(path), "--judge", f"hf:{tiny_gpt2}", "--no-chat",
                             "--verdict-by", "loglikelihood")
    assert code == 0, err
    assert body["n_invalid"] == 0 and body["spearman_of"] == "expected score"
    expected = [i["expected"] for i in body["items"]]
    assert all(1 <= e <= 5 for e in expected)
    assert body["spearman"]["value"] == pytest.approx(
        spearmanr(expected, [i["human"] for i in items]).statistic, abs=1e-12)
