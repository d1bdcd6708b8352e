"""``llmbench run`` on an ``openai:`` model against the fault server, through the real CLI in a
subprocess: retries, failure reasons and flagged answers in the console, in the store and
in the JSON export; and such a run never imports torch or transformers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fault_server import FaultInjector, ServerThread, fake_openai_app

pytestmark = pytest.mark.slow

ROWS = [{"id": f"r{i}", "text": f"review {i}", "label": ["negative", "positive"][i % 2]} for i in range(12)]
ROWS[3]["text"] = "review 3 [filtered]"
ROWS[5]["text"] = "review 5 [long]"
ROWS[8]["text"] = "review 8 [long]"
TASK = ("name: api_demo\nkind: classification\ndataset: {path: rows.jsonl}\n"
        "fields: {id: id, input: text, target: label}\nlabels: [negative, positive]\n"
        "scoring: [generate]\ngeneration: {max_new_tokens: 4}\n")
# Runs the CLI like `python -m llmbench` and, at exit, prints which heavy modules were imported.
HEAVY = ("torch", "transformers", "accelerate", "datasets")
WRAPPER = (
    "import atexit, json, sys\n"
    f"HEAVY = {HEAVY!r}\n"
    "atexit.register(lambda: print('IMPORTED ' + json.dumps(sorted({m.split('.')[0] for m in sys.modules}"
    " & set(HEAVY))), file=sys.stderr))\n"
    "sys.argv = ['llmbench', *sys.argv[1:]]\n"
    "from llmbench.cli.main import entry\n"
    "entry()\n"
)


def _setup(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS))
    (tmp_path / "task.yaml").write_text(TASK)
    return {**os.environ, "OPENAI_API_KEY": "EMPTY", "LLMBENCH_CACHE": str(tmp_path / "cache"),
            "NO_COLOR": "1", "COLUMNS": "200"}


def _cli(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", WRAPPER, *args], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)


def _imported(proc: subprocess.CompletedProcess[str]) -> list[str]:
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("IMPORTED "))
    return list(json.loads(line.removeprefix("IMPORTED ")))


def test_retries_and_reasons_in_console_and_store(tmp_path: Path) -> None:
    env = _setup(tmp_path)
    app = FaultInjector(fake_openai_app(), rate=0.5, failures=1, kinds=("500", "429"))
    with ServerThread(app) as server:
        run = _cli(tmp_path, env, "run", "-m", "openai:gpt-4o-mini", "--base-url", server.url,
                   "-t", "task.yaml", "--store", "db.sqlite", "--json-dir", "export",
                   "--model-arg", "backoff_base_s=0.05", "--resamples", "20")
    retries = sum(app.injected.values())
    assert retries >= 2, app.injected
    out = " ".join(run.stdout.split())  # the table title wraps at the table's width
    assert run.returncode == 2, (run.stdout, run.stderr)  # the filtered sample: incomplete
    assert f"{retries} retries" in out, out
    assert "1 failed samples" in out and "1 × content_filter" in out, out
    assert "2 answers cut at max_new_tokens (finish_reason=length)" in out, out
    assert _imported(run) == []  # an openai: run needs neither torch nor transformers

    export = json.loads(next((tmp_path / "export").glob("*.json")).read_text())
    usage = export["run"]["usage"]
    assert usage["retries"] == retries and usage["attempts"] == 12 + retries
    assert usage["latency_total_p50_s"] is not None and usage["latency_p50_s"] is not None
    assert usage["latency_total_p95_s"] >= usage["latency_p95_s"]
    assert usage["finish_reasons"] == {"content_filter": 1, "length": 2, "stop": 9}
    assert usage["flagged"] == {"truncated": 2}
    by_id = {s["sample_id"]: s for s in export["samples"]}
    assert by_id["r3"]["error"] == "content_filter" and by_id["r3"]["prediction"] is None
    assert by_id["r3"]["answer"]["finish_reason"] == "content_filter"
    assert by_id["r5"]["answer"] == {**by_id["r5"]["answer"], "finish_reason": "length", "flag": "truncated"}
    assert by_id["r0"]["answer"]["finish_reason"] == "stop"
    assert sum(s["answer"]["attempts"] or 1 for s in export["samples"]) == 12 + retries

    show = _cli(tmp_path, env, "show", export["run"]["id"], "--store", "db.sqlite")
    assert f"requests {12 + retries} ({retries} retries)" in show.stdout, show.stdout
    assert "finish content_filter=1, length=2, stop=9" in show.stdout, show.stdout


def test_a_down_server_says_so_in_one_line(tmp_path: Path) -> None:
    """Connection refused on every request: the run stops early, is incomplete (exit 2) and
    the console names the reason once, with the count."""
    from fault_server import refused_url

    env = _setup(tmp_path)
    run = _cli(tmp_path, env, "run", "-m", "openai:gpt-4o-mini", "--base-url", refused_url(),
               "-t", "task.yaml", "--store", "db.sqlite", "--model-arg", "breaker_min_s=0",
               "--model-arg", "backoff_base_s=0.05", "--resamples", "20")
    assert run.returncode == 2, (run.stdout, run.stderr)
    lines = [ln for ln in run.stdout.splitlines() if "circuit breaker" in ln]
    assert len(lines) == 1, run.stdout
    assert "× not answered: the circuit breaker stopped the run because" in lines[0]
    assert "connection refused" in lines[0] and "Rerun to resume" in lines[0]
    assert "12 failed samples" in " ".join(run.stdout.split())
    assert _imported(run) == []


def test_the_import_check_can_fail(tmp_path: Path) -> None:
    """The wrapper does see a heavy import when there is one (else the checks above prove
    nothing)."""
    stub = "import types; sys.modules['torch'] = types.ModuleType('torch')\nentry()\n"
    proc = subprocess.run([sys.executable, "-c", WRAPPER.replace("entry()\n", stub), "--help"],
                          capture_output=True, text=True, cwd=tmp_path, env=_setup(tmp_path), timeout=60)
    assert _imported(proc) == ["torch"]
