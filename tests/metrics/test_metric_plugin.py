"""A metric plugin as a third party ships one: a distribution on the path whose entry point in the
group ``llmbench.metrics`` names a ``Metric`` class with its own declaration. Driven through real
``llmbench`` processes (the plugin is installed for them, not patched into this one): it is listed
by ``llmbench tasks``, checked as a task's ``primary_metric``, scored by ``llmbench run``, shown
by the report with its direction, and gated in its declared direction — a lower-is-better value
that rises is a regression, one that falls is not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # five short llmbench processes

ROOT = Path(__file__).resolve().parents[2]
DIST = "llmbench_missrate_plugin"

PLUGIN = '''
"""Share of answers that are not exactly the reference: a loss, lower is better."""
import numpy as np

from llmbench.metrics import Declaration, Metric


class MissRate(Metric):
    declaration = Declaration(values=("miss_rate",), scale="unit", direction="lower",
                              indicators={"miss_rate": "miss"}, stats_version=1)

    def sample_stats(self, *, prediction, references):
        return {"miss": int(prediction.strip() not in [r.strip() for r in references])}

    def score(self, stats, weights=None):
        miss = np.array([s["miss"] for s in stats], dtype=np.float64)
        w = np.ones((1, len(stats))) if weights is None else weights
        return {"miss_rate": (w @ miss) / w.sum(axis=1)}

    def primary(self):
        return "miss_rate"
'''

N = 30


def _install_plugin(site: Path) -> None:
    """What ``pip install`` leaves behind: the module and a dist-info with the entry point."""
    (site / f"{DIST}.py").write_text(PLUGIN, encoding="utf-8")
    info = site / f"{DIST}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {DIST.replace('_', '-')}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[llmbench.metrics]\nmiss_rate = {DIST}:MissRate\n")


def _write_task(folder: Path) -> None:
    """Each row's reference is its whole two-sentence input: ``baseline:copy`` answers every
    row right, ``baseline:lead`` (the first sentence) every row wrong."""
    rows = [{"id": f"r{i:02d}", "text": f"Item {i} is here. It has a second sentence."} for i in range(N)]
    (folder / "echo_miss.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    (folder / "echo_miss.yaml").write_text(
        "name: echo_miss\nkind: summarization\ndataset: {path: echo_miss.jsonl}\n"
        "fields: {id: id, input: text, target: text}\nmetrics: [miss_rate]\nprimary_metric: miss_rate\n",
        encoding="utf-8")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("metric_plugin")
    (root / "site").mkdir()
    (root / "tasks").mkdir()
    _install_plugin(root / "site")
    _write_task(root / "tasks")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "site"), str(ROOT)]),
            "LLMBENCH_STORE": str(root / "llmbench.db"), "LLMBENCH_CACHE": str(root / "cache"),
            "LLMBENCH_TASKS_PATH": str(root / "tasks"), "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}


def llmbench(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmbench", *args], env=env, capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def test_a_plugin_metric_is_listed_run_reported_and_gated_in_its_direction(env: dict[str, str]) -> None:
    listed = llmbench(env, "tasks")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if "echo_miss" in line)
    assert "miss_rate" in row and "error" not in row  # loaded, primary_metric checked through the registry

    for model, tag in (("baseline:copy", "good"), ("baseline:lead", "bad")):
        ran = llmbench(env, "run", "-m", model, "-t", "echo_miss", "--tag", tag, "--resamples", "200")
        assert ran.returncode == 0, ran.stderr
        assert "miss_rate" in ran.stdout

    report = llmbench(env, "report", "--format", "json", "--out", "-")
    assert report.returncode == 0, report.stderr
    assert '"miss_rate"' in report.stdout and '"higher_is_better": false' in report.stdout

    worse = llmbench(env, "gate", "--baseline", "last:good", "--candidate", "last:bad", "--json")
    assert worse.returncode == 1, worse.stdout + worse.stderr
    decision = json.loads(worse.stdout)
    (found,) = decision["regressions"]
    assert (found["name"], found["a"], found["b"], found["higher_is_better"]) == ("miss_rate", 0.0, 1.0, False)
    # the declared indicator (1 = a miss, for this loss) tested exactly; every sample went right -> wrong
    assert found["test"] == "mcnemar-exact" and len(found["right_to_wrong"]) == N and found["wrong_to_right"] == []

    better = llmbench(env, "gate", "--baseline", "last:bad", "--candidate", "last:good", "--json")
    assert better.returncode == 0, better.stdout + better.stderr
    assert json.loads(better.stdout)["decision"] == "pass"
