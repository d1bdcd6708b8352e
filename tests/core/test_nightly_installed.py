"""docs/nightly/nightly.sh outside a checkout (issue 22, item 7): copied anywhere, it runs in the
current folder with the ``llmbench`` on PATH, and ``--suite default`` is the suite that ships in
the package (an installed package has no suites/ folder)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_nightly_runs_from_a_copy_with_llmbench_on_path(tmp_path: Path) -> None:
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "llmbench").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m llmbench "$@"\n')
    (bin_dir / "llmbench").chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    script = tmp_path / "nightly.sh"  # not in a checkout's docs/nightly/
    shutil.copy(REPO / "docs" / "nightly" / "nightly.sh", script)
    rows = "\n".join(json.dumps({"id": str(i), "text": f"t {i}", "label": ["a", "b"][i % 2]}) for i in range(6))
    (work / "d.jsonl").write_text(rows + "\n")
    (work / "t.yaml").write_text("name: nt\nkind: classification\ndataset: {path: d.jsonl}\n"
                                 "fields: {id: id, input: text, target: label}\nlabels: [a, b]\n")
    (work / "s.yaml").write_text("name: n\nmodels: [baseline:majority]\ntasks: [t.yaml]\nn_resamples: 0\n")
    env = {k: v for k, v in os.environ.items() if k not in {"BIN", "LLMBENCH_STORE"}}
    env |= {"PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", "SUITE": "s.yaml",
            "LLMBENCH_CACHE": str(tmp_path / "cache"), "GATE_ARGS": "--resamples 50", "COLUMNS": "200"}
    proc = subprocess.run(["bash", str(script)], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert json.loads((work / "results" / "gate.json").read_text())["decision"] == "no_baseline"
    assert (work / "results" / "llmbench.db").is_file() and (work / "leaderboard" / "index.html").is_file()


def test_the_default_suite_ships_in_the_package_and_loads_by_name(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from llmbench.suite import SuiteError, load_suite, packaged_suites

    monkeypatch.chdir(tmp_path)  # no suites/ folder here
    assert "default" in packaged_suites()
    suite = load_suite(Path("default"))
    assert suite.name == "default" and suite.models
    with pytest.raises(SuiteError, match="neither a file nor a packaged suite"):
        load_suite(Path("nosuch"))
    # the checkout's suites/default.yaml is the packaged file, not a copy that could drift
    assert (REPO / "suites" / "default.yaml").resolve() == packaged_suites()["default"]
