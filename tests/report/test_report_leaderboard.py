"""The leaderboard data, its Markdown/JSON forms and the static site's files (no browser needed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from report_fixtures import (
    T_LATER,
    XSS_INPUT,
    XSS_PREDICTION,
    build_demo_store,
    classifier,
    run,
    set_created,
    write_cls_task,
)

from llmbench.report import leaderboard, text
from llmbench.report.html import csv_slug, json_for_script, sample_slug, task_slug, write_site
from llmbench.store import ResultStore


@pytest.fixture(scope="module")
def lb(demo_store: ResultStore) -> leaderboard.Leaderboard:
    return leaderboard.build(demo_store, n_resamples=300)


@pytest.fixture(scope="module")
def evil_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evil")
    build_demo_store(root, xss_model_name=True)
    return root


def _cell(lb: leaderboard.Leaderboard, model: str, task: str) -> leaderboard.Cell:
    row = next(r for r in lb.rows if r.model == model)
    return row.cells[task]


def test_best_and_not_significantly_worse_are_marked(lb: leaderboard.Leaderboard) -> None:
    assert [c.task for c in lb.columns] == ["sentiment_mini", "qa_mini"]  # classification before qa
    sentiment = next(c for c in lb.columns if c.task == "sentiment_mini")
    assert sorted(sentiment.best) == ["gpt-4o-mini", "minilm-l6-finetuned"]  # both 0.85 on the last night
    slm = _cell(lb, "smollm2-135m-instruct", "sentiment_mini")
    assert slm.value == pytest.approx(0.70) and slm.tied and not slm.best
    assert slm.p_vs_best is not None and slm.p_vs_best >= 0.05
    majority = _cell(lb, "baseline:majority", "sentiment_mini")
    assert not majority.tied and majority.p_vs_best is not None and majority.p_vs_best < 0.05
    qa_best = _cell(lb, "gpt-4o-mini", "qa_mini")
    assert qa_best.best and qa_best.ci_low is not None and qa_best.ci_low < qa_best.value < qa_best.ci_high


def test_rows_say_what_each_model_is(lb: leaderboard.Leaderboard) -> None:
    rows = {r.model: r for r in lb.rows}
    assert rows["gpt-4o-mini"].kind == "api" and rows["gpt-4o-mini"].cost == pytest.approx(40 * 0.0004 + 30 * 0.0009)
    ft = rows["minilm-l6-finetuned"]
    assert ft.kind == "fine-tuned" and ft.finetuned_from == "sentence-transformers/all-MiniLM-L6-v2"
    assert ft.detail == "BertForSequenceClassification · float32 · tuned on sentiment_mini"
    assert rows["smollm2-135m-instruct"].kind == "local" and "LlamaForCausalLM" in rows["smollm2-135m-instruct"].detail
    assert rows["baseline:random"].kind == "baseline" and rows["baseline:random"].cost is None
    assert lb.rows[0].mean_rank == 1.0 and lb.rows[-1].model == "baseline:random"


def test_history_holds_every_complete_run(lb: leaderboard.Leaderboard) -> None:
    hist = lb.tasks["sentiment_mini"].history
    assert len(hist["gpt-4o-mini"]) == 4 and len(hist["baseline:majority"]) == 1
    assert [p["created_at"][:10] for p in hist["minilm-l6-finetuned"]] == [
        "2025-06-01", "2025-06-02", "2025-06-03", "2025-06-04"]


def test_model_card_alone_names_the_base(tmp_path: Path) -> None:
    """What ``HFAdapter.describe()`` reads from a folder at run time (never at report time)."""
    from llmbench.models.hf.adapter import _folder_facts

    (tmp_path / "README.md").write_text("---\nlicense: mit\nbase_model:\n  - org/base-model\n---\n# card\n")
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "quantization_config":
                                                      {"quant_method": "bitsandbytes", "load_in_4bit": True}}))
    assert _folder_facts(tmp_path) == {"model_class": "LlamaForCausalLM", "quantization": "bitsandbytes 4-bit",
                                       "finetuned_from": "org/base-model"}
    assert _folder_facts(tmp_path / "missing") == {}


def test_report_reads_what_the_run_stored_not_the_folder(demo_root: Path) -> None:
    """The fine-tuned row's description comes from the run's config, even with the folder gone."""
    store = ResultStore(demo_root / "demo.sqlite")
    ft_runs = [r for r in store.runs() if r.model == "minilm-l6-finetuned"]
    assert ft_runs and all(r.config["model_info"]["finetuned_on"] == "sentiment_mini" for r in ft_runs)


def test_other_prompt_is_a_system_property_not_a_mismatch(tmp_path: Path) -> None:
    """Across models the prompt belongs to the system under test: both are ranked, the best is the
    better one whichever ran last, and the other prompt is written in the cell."""
    store = ResultStore(tmp_path / "db.sqlite")
    old = run(store, write_cls_task(tmp_path / "a"), classifier("x", set()), "hf:/x", label="old-prompt")
    new = run(store, write_cls_task(tmp_path / "b", template="New: {{ input }}"), classifier("y", {"s01"}),
              "hf:/y", label="new-prompt")
    set_created(store, new, T_LATER)
    board = leaderboard.build(store, n_resamples=0)
    cell = _cell(board, "old-prompt", "sentiment_mini")
    other = _cell(board, "new-prompt", "sentiment_mini")
    assert cell.comparable and cell.best and not other.best and other.rank == 2
    assert any("prompt" in s for s in cell.system + other.system)
    assert old != new


def test_only_complete_runs_make_cells(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "db.sqlite")
    task = write_cls_task(tmp_path / "t")
    done = run(store, task, classifier("x", set()), "hf:/x", label="x")
    broken = run(store, task, classifier("x", {"s01"}), "hf:/x", label="x")
    failed = run(store, task, classifier("y", set(), fail=["s02"]), "hf:/y", label="y")
    store.mark(broken, "running")  # interrupted
    set_created(store, broken, T_LATER)
    board = leaderboard.build(store, n_resamples=0)
    assert [r.model for r in board.rows] == ["x"] and _cell(board, "x", "sentiment_mini").run_id == done
    assert store.run(failed).status == "incomplete"


def test_markdown_escapes_and_marks(evil_root: Path) -> None:
    board = leaderboard.build(ResultStore(evil_root / "demo.sqlite"), n_resamples=200)
    md = text.to_markdown(board)
    assert "<img" not in md and "&lt;img src=x onerror=\"window.\\_\\_xss = 4\"&gt;" in md
    assert "**0.850** ★" in md and " ≈ " in md
    header = md.splitlines()[2]
    assert header.startswith("| model | kind | sentiment\\_mini (accuracy ↑) | qa\\_mini (f1 ↑) |")


def test_json_is_strict_and_complete(lb: leaderboard.Leaderboard) -> None:
    data = json.loads(text.to_json(lb))  # strict: no NaN
    assert {c["task"] for c in data["columns"]} == {"sentiment_mini", "qa_mini"}
    assert "samples" not in data["tasks"]["qa_mini"]
    row = next(r for r in data["rows"] if r["model"] == "gpt-4o-mini")
    assert row["cells"]["qa_mini"]["best"] is True
    full = json.loads(text.to_json(lb, with_samples=True))
    assert full["tasks"]["qa_mini"]["samples"]["q00"]["input"] == XSS_INPUT


def test_json_for_script_cannot_close_the_element() -> None:
    payload = {"p": "</script><script>alert(1)</script><!-- \u2028 & >"}
    out = str(json_for_script(payload))
    assert "</" not in out and "<!--" not in out and "<" not in out and "\u2028" not in out
    assert json.loads(out) == payload


def test_site_files_escape_everything_and_need_no_network(evil_root: Path, tmp_path: Path) -> None:
    board = leaderboard.build(ResultStore(evil_root / "demo.sqlite"), n_resamples=200)
    index = write_site(board, tmp_path / "site")
    files = sorted(p.name for p in index.parent.rglob("*") if p.is_file())
    tasks = ("qa_mini", "sentiment_mini")
    assert files == sorted(["index.html", "charts.html", *map(task_slug, tasks), *map(sample_slug, tasks),
                            "overview.csv", *(csv_slug(t, k) for t in tasks for k in ("metrics", "samples")),
                            "style.css", "app.js"])
    for path in index.parent.rglob("*"):
        if not path.is_file():
            continue
        body = path.read_text(encoding="utf-8")
        assert not re.search(r"https?://|//cdn|@import", body), path
        assert "__xss" not in body or path.suffix in (".html", ".csv")  # CSV: data to download, never rendered
        if path.suffix == ".html":
            assert "Content-Security-Policy" in body
            assert "<img" not in body and "<script>window" not in body, path
            assert len(re.findall(r"<script\b", body)) == (2 if path.name.startswith(("task-", "samples-")) else 1)
    qa = (index.parent / task_slug("qa_mini")).read_text(encoding="utf-8")
    blob = re.search(r'<script type="application/json" id="task-data">(.*?)</script>', qa, re.S)
    assert blob is not None
    data = json.loads(blob.group(1))
    assert data["predictions"]["smollm2-135m-instruct"]["q01"]["p"] == XSS_PREDICTION
    assert data["samples"]["q00"]["input"] == XSS_INPUT
    script = (index.parent / "assets" / "app.js").read_text(encoding="utf-8")
    assert not re.search(r"\.(inner|outer)HTML\s*[+]?=|insertAdjacentHTML|document\.write|eval\(", script)


def test_report_cli_formats(invoke, demo_root: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = str(demo_root / "demo.sqlite")
    md = invoke("report", "--store", db, "--format", "markdown", "--out", "-", "--resamples", "100")
    assert md.exit_code == 0 and md.stdout.startswith("## llmbench leaderboard")
    js = invoke("report", "--store", db, "--format", "json", "--out", tmp_path / "lb", "--resamples", "100")
    assert js.exit_code == 0 and json.loads((tmp_path / "lb" / "leaderboard.json").read_text())["rows"]
    site = invoke("report", "--store", db, "--out", tmp_path / "site", "--resamples", "100")
    assert site.exit_code == 0 and (tmp_path / "site" / "index.html").exists()
    bad = invoke("report", "--store", db, "--out", "-")
    assert bad.exit_code == 2 and "needs a folder" in bad.stderr
    missing = invoke("report", "--store", tmp_path / "typo.sqlite", "--out", tmp_path / "x")
    assert missing.exit_code == 2 and "no results store at" in missing.stderr
    assert not (tmp_path / "typo.sqlite").exists()
    ResultStore(tmp_path / "empty.sqlite")
    empty = invoke("report", "--store", tmp_path / "empty.sqlite", "--out", tmp_path / "empty")
    assert empty.exit_code == 0 and "no complete run" in (tmp_path / "empty" / "index.html").read_text()
