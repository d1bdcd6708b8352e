"""A run's scoring notes: a model whose KV cache cannot be shared row-wise (a Mistral with
sliding-window attention) is scored and generated through the fallbacks, and the stored
run says so; ``llmbench run``, ``show``, ``show --json`` and the Markdown report print it.
A GPT-2, whose plain cache is shared, gets no note."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_inprocess import run_cli
from markupsafe import escape

from llmbench.report.text import md_escape
from llmbench.store import ResultStore

ROWS = [{"id": f"r{i}", "text": f"the movie was great {i}", "label": ["negative", "positive"][i % 2]}
        for i in range(6)]
TASK = ("name: notes_demo\nkind: classification\ndataset: {path: rows.jsonl}\n"
        "fields: {id: id, input: text, target: label}\nlabels: [negative, positive]\n"
        "scoring: [loglikelihood, generate]\ngeneration: {max_new_tokens: 3}\n")
#: What the sliding-window cache is, as ``score.cache_problem`` says it.
WHY = "this model's KV cache cannot be shared row-wise (its cache has DynamicSlidingWindowLayer layers)"
LL_NOTE = (f"loglikelihood: {WHY}; every choice ran as a full forward of context and continuation instead "
           "— no shared contexts, no shared prefixes; log-likelihoods are unaffected (within float tolerance)")
GEN_NOTE = (f"generation: {WHY}; transformers' generate ran instead — no continuous batching, no shared "
            "prefixes; answers are unaffected")


def test_a_fallback_is_stored_with_the_run_and_shown(tiny_sliding_mistral: Path, tiny_gpt2: Path,
                                                     tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "400")
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS))
    (tmp_path / "task.yaml").write_text(TASK)
    base = ["run", "-m", f"hf:{tiny_sliding_mistral}", "-m", f"hf:{tiny_gpt2}", "-t", "task.yaml", "--store", "db",
            "--resamples", "10"]
    code, out, err = run_cli(base, capsys)
    assert code == 0, err
    assert f"note: {LL_NOTE}" in out
    code, out, err = run_cli([*base, "--scoring", "generate"], capsys)
    assert code == 0, err
    assert f"note: {GEN_NOTE}" in out

    store = ResultStore(tmp_path / "db")
    notes = {(Path(r.model.removeprefix("hf:")).name, r.scoring_mode): r.notes for r in store.runs()}
    assert notes == {("mistral", "loglikelihood"): [LL_NOTE], ("mistral", "generate"): [GEN_NOTE],
                     ("gpt2", "loglikelihood"): [], ("gpt2", "generate"): []}
    noted = next(r for r in store.runs() if r.notes == [LL_NOTE])
    store.close()

    import llmbench

    assert {r.id: r.notes for r in llmbench.load_runs(store="db")}[noted.id] == [LL_NOTE]  # the Python API
    code, out, _ = run_cli(["show", noted.id, "--store", "db"], capsys)
    assert code == 0 and f"note: {LL_NOTE}" in out
    code, out, _ = run_cli(["show", noted.id, "--store", "db", "--json"], capsys)
    assert code == 0 and json.loads(out)["run"]["notes"] == [LL_NOTE]
    code, out, _ = run_cli(["report", "--store", "db", "--format", "markdown", "--out", "-"], capsys)
    assert code == 0
    # the report ranks each model's latest run: generation's
    assert [ln for ln in out.splitlines() if ln.startswith("- note:")] == [
        f"- note: {md_escape(f'notes_demo · {noted.model}: {GEN_NOTE}')}"]
    code, _, err = run_cli(["report", "--store", "db", "--out", "site"], capsys)
    assert code == 0, err
    pages = [p.read_text(encoding="utf-8") for p in (tmp_path / "site").rglob("*.html")]
    assert sum(str(escape(f"{noted.model}: {GEN_NOTE}")) in page for page in pages) == 1  # the task's page
