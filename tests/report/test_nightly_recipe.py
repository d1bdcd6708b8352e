"""docs/nightly/nightly.sh over three nights: first night, a clean night, a night with a model missing.

The recipe must gate and build the leaderboard every night, tell the first night apart by the
gate's JSON decision (not by a message's wording), and say with its exit code which case happened.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from report_fixtures import write_cls_task

REPO = Path(__file__).resolve().parents[2]


def _night(root: Path, suite: Path, name: str) -> tuple[int, str]:
    env = {**os.environ, "BIN": str(root / "bin"), "SUITE": str(suite), "LLMBENCH_STORE": str(root / "db.sqlite"),
           "LLMBENCH_CACHE": str(root / "cache"), "LEADERBOARD": str(root / f"lb-{name}"),
           "GATE_JSON": str(root / f"gate-{name}.json"), "NIGHT": f"night-{name}", "GATE_ARGS": "--resamples 50",
           "COLUMNS": "200"}
    proc = subprocess.run(["bash", str(root / "docs" / "nightly" / "nightly.sh")], env=env, capture_output=True,
                          text=True, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_three_nights(tmp_path: Path) -> None:
    (tmp_path / "docs" / "nightly").mkdir(parents=True)
    shutil.copy(REPO / "docs" / "nightly" / "nightly.sh", tmp_path / "docs" / "nightly" / "nightly.sh")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "llmbench").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m llmbench "$@"\n')
    (bin_dir / "llmbench").chmod(0o755)
    (bin_dir / "python").symlink_to(sys.executable)
    task = write_cls_task(tmp_path / "tasks", n=12, metrics=["accuracy"])
    both, one = tmp_path / "both.yaml", tmp_path / "one.yaml"
    both.write_text(f"name: n\nmodels: [{{spec: 'baseline:majority'}}, {{spec: 'baseline:random'}}]\n"
                    f"tasks: ['{task}']\n")
    one.write_text(f"name: n\nmodels: [{{spec: 'baseline:majority'}}]\ntasks: ['{task}']\n")

    code, out = _night(tmp_path, both, "1")
    assert code == 0, out
    assert json.loads((tmp_path / "gate-1.json").read_text())["decision"] == "no_baseline"
    assert (tmp_path / "lb-1" / "index.html").is_file()

    code, out = _night(tmp_path, both, "2")
    assert code == 0, out
    assert json.loads((tmp_path / "gate-2.json").read_text())["decision"] == "pass"

    code, out = _night(tmp_path, one, "3")  # baseline:random did not run tonight
    assert code == 2, out
    decision = json.loads((tmp_path / "gate-3.json").read_text())
    assert decision["decision"] == "cannot_decide"
    assert any("baseline:random" in r and "not in the candidate" in r for r in decision["reasons"])
    assert (tmp_path / "lb-3" / "index.html").is_file()  # the leaderboard is built anyway


def test_github_workflow_caches_answers_installs_cpu_torch_and_reads_the_gate_json() -> None:
    """The Actions recipe on a stock runner: the llmbench cache survives between nights (keyed on
    the suite and task files), ``make setup`` installs from the locks with torch's CPU build from
    PyTorch's CPU index (the workflow installs nothing by hand), and the job's exit follows the
    gate's JSON decision."""
    import yaml

    flow = yaml.safe_load((REPO / "docs" / "nightly" / "github-actions-nightly.yml").read_text())
    steps = flow["jobs"]["nightly"]["steps"]
    names = [s.get("name", s.get("uses", "")) for s in steps]
    cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache@"))
    assert cache["with"]["path"] == "~/.cache/llmbench"
    assert "hashFiles('suites/default.yaml', 'tasks/**')" in cache["with"]["key"]
    assert not [s for s in steps if "pip install" in s.get("run", "")]  # nothing outside the locks
    assert steps[names.index("Install")]["run"].strip() == "make setup"
    makefile = (REPO / "Makefile").read_text()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in makefile  # a stock runner's torch
    assert (REPO / "requirements" / "torch-cpu.lock").read_text().count("torch==2.13.0+cpu") == 1
    assert names.index("Cache llmbench answers") < names.index("Run the suite")
    gate = next(s for s in steps if s.get("id") == "gate")
    assert "--json-out gate.json" in gate["run"] and '["decision"]' in gate["run"]
