"""Importing lm-eval and inspect_ai results, gating them against native runs, exporting ours.

The lm-eval output (``tests/fixtures/lmeval/lmeval_output``) and the inspect_ai logs
(``tests/fixtures/inspect``) were written by the real tools (``bench/lmeval_fixtures.py``,
``bench/inspect_fixture.py``); lm-eval recorded the absolute path of the rows it read, so the
tests relocate that path to this checkout's fixtures, as if lm-eval had run here.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from llmbench.store import ResultStore
from tests.cli_inprocess import run_cli

FIX = Path(__file__).resolve().parents[1] / "fixtures"
LMEVAL_OUT = FIX / "lmeval" / "lmeval_output" / "tiny-gpt2"
RECORDED_FIX = "/work/wt/bridge/tests/fixtures/lmeval"  # where bench/lmeval_fixtures.py ran
TASKS = ("arc_challenge", "arc_easy", "babi", "boolq", "hellaswag", "mmlu_anatomy", "piqa")
ROLLING = "pile_enron"  # lm-eval logs no token count per document: imported aggregate-only


@pytest.fixture()
def lmeval_out(tmp_path: Path) -> Path:
    out = tmp_path / "lmeval_out"
    shutil.copytree(LMEVAL_OUT, out)
    (results,) = out.glob("results_*.json")
    results.write_text(results.read_text(encoding="utf-8").replace(RECORDED_FIX, str(FIX / "lmeval")),
                       encoding="utf-8")
    return out


def _expected(task: str) -> dict[str, dict]:
    return {str(e["doc_id"]): e for e in json.loads((FIX / "lmeval" / "expected" / f"{task}.json").read_text())}


def test_lmeval_import_keeps_every_sample_and_value(lmeval_out: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "db.sqlite")
    code, out, err = run_cli(["import", "lm-eval", str(lmeval_out), "--store", db, "--label", "tiny"], capsys)
    assert code == 0, err
    store = ResultStore(db)
    runs = {r.task: r for r in store.runs()}
    assert sorted(runs) == sorted((*TASKS, ROLLING))
    rolling = runs.pop(ROLLING)
    assert "aggregate-only" in rolling.tags and store.samples(rolling.id) == []
    for task, info in runs.items():
        assert info.model == "tiny" and info.status == "complete"
        assert info.model_identity["harness"] == "lm-eval" and info.model_identity["harness_version"] == "0.4.13"
        assert "lm-eval-0.4.13" in info.tags
        expected = _expected(task)
        records = store.samples(info.id)
        assert sorted(r.sample_id for r in records) == sorted(expected)  # paired by lm-eval's doc_id
        for rec in records:
            exp = expected[rec.sample_id]
            assert rec.prompt == exp["prompt"]
            for name in ("acc", "acc_norm"):
                if name in exp:
                    assert rec.stats["acc"][name] == exp[name]
            if "exact_match" in exp:  # lm-eval's own exact_match (raw strings), its default filter "none"
                assert rec.stats["lmeval_exact_match"]["exact_match"] == exp["exact_match"]
                assert rec.prediction == exp["generation"].strip()
    code, out, _ = run_cli(["runs", "--store", db], capsys)
    assert code == 0 and out.count("tiny") == len(TASKS) + 1
    code, out, err = run_cli(["report", "--format", "json", "--out", "-", "--store", db], capsys)
    assert code == 0, err
    board = json.loads(out)
    assert [row["model"] for row in board["rows"]] == ["tiny"]
    assert set(board["tasks"]) >= set(TASKS)  # every imported task is a leaderboard column


def test_gate_imported_against_native_run(lmeval_out: Path, tmp_path: Path, tiny_gpt2: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "db.sqlite")
    assert run_cli(["import", "lm-eval", str(lmeval_out), "--store", db], capsys)[0] == 0
    (results,) = lmeval_out.glob("results_*.json")
    task_file = tmp_path / "arc_easy.yaml"  # the task exactly as lm-eval ran it (its results' config)
    task_file.write_text(json.dumps(json.loads(results.read_text())["configs"]["arc_easy"]), encoding="utf-8")
    code, out, err = run_cli(["run", "-t", f"lm-eval:{task_file}", "-m", f"hf:{tiny_gpt2}", "--store", db,
                              "--no-cache"], capsys)
    assert code == 0, err
    store = ResultStore(db)
    imported = next(r for r in store.runs(task="arc_easy") if "imported" in r.tags)
    native = next(r for r in store.runs(task="arc_easy") if "imported" not in r.tags)
    assert imported.task_fingerprint == native.task_fingerprint
    a = {r.sample_id: (r.prompt, r.prediction, r.stats) for r in store.samples(imported.id)}
    b = {r.sample_id: (r.prompt, r.prediction, r.stats) for r in store.samples(native.id)}
    assert a == b  # the same prompt, answer and per-sample values for every document
    code, out, err = run_cli(["gate", "--baseline", imported.id, "--candidate", native.id, "--store", db], capsys)
    assert code == 0, out + err
    assert "PASS" in out


def test_without_samples_import_is_aggregate_only(lmeval_out: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    for f in lmeval_out.glob("samples_*.jsonl"):
        f.unlink()
    db = str(tmp_path / "db.sqlite")
    code, out, _ = run_cli(["import", "lm-eval", str(lmeval_out), "--store", db], capsys)
    assert code == 0 and out.count("aggregate-only") == len(TASKS) + 1
    store = ResultStore(db)
    arc = next(r for r in store.runs(task="arc_easy"))
    assert "aggregate-only" in arc.tags and store.samples(arc.id) == []
    assert {m.value.name: m.value.value for m in store.metrics(arc.id)} == {"acc": 0.2, "acc_norm": 0.0}
    assert arc.n_samples == 5


def test_export_then_import_gives_the_same_samples(lmeval_out: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "db.sqlite")
    assert run_cli(["import", "lm-eval", str(lmeval_out), "--store", db], capsys)[0] == 0
    store = ResultStore(db)
    first = {r.task: r for r in store.runs()}
    out = tmp_path / "export"
    for info in first.values():
        code, _, err = run_cli(["show", info.id, "--format", "lm-eval", "--out", str(out), "--store", db], capsys)
        assert code == 0, err
    results = json.loads(next(out.glob("results_*.json")).read_text())
    assert set(results) >= {"results", "configs", "versions", "n-samples", "config"}  # lm-eval's keys
    line = json.loads(next(out.glob("samples_boolq_*.jsonl")).read_text().splitlines()[0])
    assert {"doc_id", "arguments", "resps", "filtered_resps", "acc"} <= set(line)
    assert run_cli(["import", "lm-eval", str(out), "--store", db], capsys)[0] == 0
    again = {r.task: r for r in ResultStore(db).runs() if "llmbench-export" in r.tags}
    assert sorted(again) == sorted(first) == sorted((*TASKS, ROLLING))
    for task, info in first.items():
        old = [(r.sample_id, r.prompt, r.prediction, r.stats) for r in store.samples(info.id)]
        new = [(r.sample_id, r.prompt, r.prediction, r.stats) for r in store.samples(again[task].id)]
        assert old == new
        assert [m.value for m in store.metrics(info.id)] == [m.value for m in store.metrics(again[task].id)]


@pytest.mark.parametrize("log", ["tiny_qa.json", "tiny_qa_deflate.eval"])
def test_inspect_log_import(log: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "db.sqlite")
    code, out, err = run_cli(["import", "inspect", str(FIX / "inspect" / log), "--store", db], capsys)
    assert code == 0, err
    (info,) = ResultStore(db).runs()
    assert (info.task, info.model, info.status) == ("tiny_qa", "inspect:mockllm/model", "complete")
    assert info.model_identity["harness"] == "inspect_ai" and info.model_identity["harness_version"] == "0.3.285"
    records = ResultStore(db).samples(info.id)
    # the mock model answered 4, Kuala Lumpur, green, 8, oxygen; inspect's match() scored C C I C I
    assert [(r.sample_id, r.stats["accuracy"]["correct"]) for r in records] == \
        [("q0", 1.0), ("q1", 1.0), ("q2", 0.0), ("q3", 1.0), ("q4", 0.0)]
    values = {m.value.name: m.value.value for m in ResultStore(db).metrics(info.id)}
    assert values["accuracy"] == pytest.approx(0.6)  # inspect's own headline accuracy
    code, out, _ = run_cli(["runs", "--store", db], capsys)
    assert "inspect:mockllm/model" in out


def test_inspect_gate_pairs_two_imports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "db.sqlite")
    # the same log twice (the two formats come from two runs, whose mock outputs carry other ids)
    for log in ("tiny_qa.json", "tiny_qa.json"):
        assert run_cli(["import", "inspect", str(FIX / "inspect" / log), "--store", db], capsys)[0] == 0
    a, b = ResultStore(db).runs()
    assert a.task_fingerprint == b.task_fingerprint
    code, out, err = run_cli(["gate", "--baseline", a.id, "--candidate", b.id, "--store", db], capsys)
    assert code == 0 and "PASS" in out, out + err


def test_inspect_zstd_without_support_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        import zipfile_zstd  # type: ignore[import-not-found]  # noqa: F401
        pytest.skip("zipfile_zstd is installed: the .eval reads")
    except ImportError:
        pass
    code, _, err = run_cli(["import", "inspect", str(FIX / "inspect" / "tiny_qa.eval"),
                            "--store", str(tmp_path / "db.sqlite")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "zstd" in err


def test_inspect_credentials_never_reach_the_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = json.loads((FIX / "inspect" / "tiny_qa.json").read_text())
    log["eval"]["model_args"] = {"api_key": "sk-SECRET-123", "base_url": "http://x"}
    path = tmp_path / "log.json"
    path.write_text(json.dumps(log))
    db = tmp_path / "db.sqlite"
    assert run_cli(["import", "inspect", str(path), "--store", str(db)], capsys)[0] == 0
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
    assert "sk-SECRET-123" not in dump and "http://x" in dump


def test_lmeval_import_of_loglikelihood_and_regex_filter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """lambada_openai (loglikelihood), gsm8k_style (a regex filter) and arc_easy_3shot (lm-eval's
    default few-shot sampler) import with lm-eval's own prompts and per-sample values: the
    replayed raw generation goes through the translated ``extract``."""
    out = tmp_path / "extra"
    shutil.copytree(FIX / "lmeval" / "lmeval_output_extra" / "tiny-gpt2", out)
    (results,) = out.glob("results_*.json")
    results.write_text(results.read_text(encoding="utf-8").replace(
        "/work/wt/bridge2/tests/fixtures/lmeval", str(FIX / "lmeval")), encoding="utf-8")
    db = str(tmp_path / "db.sqlite")
    code, _out, err = run_cli(["import", "lm-eval", str(out), "--store", db], capsys)
    assert code == 0, err
    store = ResultStore(db)
    runs = {r.task: r for r in store.runs()}
    assert sorted(runs) == ["arc_easy_3shot", "gsm8k_style", "lambada_openai"]
    for task, info in runs.items():
        assert "aggregate-only" not in info.tags
        expected = _expected(task)
        records = store.samples(info.id)
        assert sorted(r.sample_id for r in records) == sorted(expected)
        for rec in records:
            exp = expected[rec.sample_id]
            assert rec.prompt == exp["prompt"]
            if task == "arc_easy_3shot":
                assert (rec.stats["acc"]["acc"], rec.stats["acc"]["acc_norm"]) == (exp["acc"], exp["acc_norm"])
            elif task == "lambada_openai":
                assert rec.stats["continuation"] == {"loglikelihood": exp["loglikelihood"], "acc": exp["acc"]}
            else:
                assert rec.prediction == exp["filtered"]
                assert rec.stats["lmeval_exact_match"]["exact_match,strict-match"] == exp["exact_match"]


def test_replay_answers_the_raw_generation_for_llmbench_to_filter() -> None:
    """gsm8k's "#### 72" filtered to "72" by lm-eval: the replay answers the raw text (filtering
    "72" again with gsm8k's pattern would give "[invalid]")."""
    from llmbench.bridge.lmeval import ReplayAdapter
    from llmbench.types import Request

    row = {"arguments": {"gen_args_0": {"arg_0": "Q:", "arg_1": {"until": ["\n"]}}},
           "resps": [["so #### 72"]], "filtered_resps": ["72"]}
    adapter = ReplayAdapter("m", {}, {"0": row}, "generate")
    ((_, response),) = list(adapter.run([Request(sample_id="0", kind="generate", prompt="Q:")]))
    assert response.text == "so #### 72"


def _exact_output(tmp_path: Path) -> Path:
    out = tmp_path / "exact"
    shutil.copytree(FIX / "lmeval" / "lmeval_output_exact" / "tiny-gpt2", out)
    (results,) = out.glob("results_*.json")
    results.write_text(results.read_text(encoding="utf-8").replace(
        "/work/wt/bridge3/tests/fixtures/lmeval", str(FIX / "lmeval")), encoding="utf-8")
    return out


def test_lmeval_import_of_several_filters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """lm-eval's gsm8k.yaml logs each document once per filter pipeline: imported as one sample
    whose exact_match of every pipeline is lm-eval's (checked on import), as are exact_raw's and
    exact_opts' raw-string exact_match and arc_easy_selfshot's prompts."""
    out = _exact_output(tmp_path)
    db = str(tmp_path / "db.sqlite")
    code, _out, err = run_cli(["import", "lm-eval", str(out), "--store", db], capsys)
    assert code == 0, err
    store = ResultStore(db)
    runs = {r.task: r for r in store.runs()}
    assert sorted(runs) == ["arc_easy_selfshot", "exact_opts", "exact_raw", "gsm8k"]
    assert "aggregate-only" not in runs["gsm8k"].tags
    expected = _expected("gsm8k")
    records = store.samples(runs["gsm8k"].id)
    assert sorted(r.sample_id for r in records) == sorted(expected)
    for rec in records:
        exp = expected[rec.sample_id]
        assert rec.prompt == exp["prompt"]
        assert rec.stats["lmeval_exact_match"] == {f"exact_match,{f}": v["exact_match"]
                                                   for f, v in exp["filters"].items()}
    assert sum(rec.stats["lmeval_exact_match"]["exact_match,flexible-extract"] for rec in records) == 1
    export = tmp_path / "export"
    code, _, err = run_cli(["show", runs["gsm8k"].id, "--format", "lm-eval", "--out", str(export), "--store", db],
                           capsys)
    assert code == 0, err
    exported = json.loads(next(export.glob("results_*.json")).read_text())["results"]["gsm8k"]
    assert {"exact_match,strict-match", "exact_match,flexible-extract"} <= set(exported)  # lm-eval's keys
    theirs = json.loads(next(out.glob("results_*.json")).read_text())["results"]["gsm8k"]
    for key in ("exact_match,strict-match", "exact_match,flexible-extract"):  # lm-eval's values, its 0-1 scale
        assert exported[key] == pytest.approx(theirs[key], abs=1e-12), key
    assert run_cli(["import", "lm-eval", str(export), "--store", db], capsys)[0] == 0
    (again,) = [r for r in store.runs() if "llmbench-export" in r.tags]
    assert [r.stats for r in store.samples(again.id)] == [r.stats for r in records]


def test_lmeval_import_refuses_an_exact_match_that_is_not_lmevals(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = _exact_output(tmp_path)
    (samples,) = out.glob("samples_gsm8k_*.jsonl")
    lines = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines()]
    flexible = next(line for line in lines if line["filter"] == "flexible-extract" and line["exact_match"] == 1.0)
    flexible["exact_match"] = 0.0
    samples.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    for other in out.glob("samples_*.jsonl"):
        if other != samples:
            other.unlink()
    code, _out, err = run_cli(["import", "lm-eval", str(out), "--store", str(tmp_path / "db.sqlite")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "exact_match,flexible-extract" in err and "not lm-eval's 0.0" in err
