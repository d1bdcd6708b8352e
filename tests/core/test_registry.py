"""Registries: lazy targets, decorators, and third-party plugins through entry points."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llmbench.registry import MetricClass, Registry, RegistryError
from llmbench.tasks import Task, load_task, register_task


def test_lazy_target_and_unknown_name() -> None:
    reg: Registry[object] = Registry("widget")
    reg.register("path", "pathlib:Path")
    assert reg.get("path") is Path
    with pytest.raises(RegistryError, match=r"unknown widget 'nope' \(known: path\)"):
        reg.get("nope")


def test_entry_point_plugin_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist = tmp_path / "llmbench_demo_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: llmbench-demo-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[llmbench.widgets]\nhello = llmbench_demo_plugin:VALUE\n")
    (tmp_path / "llmbench_demo_plugin.py").write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg: Registry[int] = Registry("widget")
    assert reg.get("hello") == 42
    assert reg.origin("hello") == "plugin:llmbench-demo-plugin"
    sys.modules.pop("llmbench_demo_plugin", None)


def test_python_task_by_decorator() -> None:
    from llmbench.types import Response, Sample

    @register_task("py_echo_demo")
    class Echo(Task):
        name = "py_echo_demo"
        kind = "summarization"

        def load_split(self, split: str) -> list[Sample]:
            return [Sample(id="0", input="a. b.", references=("a.",))]

        def build_requests(self, samples, mode, *, chat=False):  # type: ignore[no-untyped-def]
            from llmbench.types import Request

            return [Request(sample_id=s.id, kind=mode, prompt=s.input, input=s.input) for s in samples]

        def predict(self, sample: Sample, response: Response, mode: str) -> str:  # type: ignore[override]
            return response.text or ""

    task = load_task("py_echo_demo")
    assert isinstance(task, Echo) and task.samples()[0].input == "a. b."


def _plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, source: str, entry: str) -> None:
    """A distribution as ``pip install`` leaves it: ``module``.py and a dist-info naming ``entry``."""
    dist = tmp_path / f"{module}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[llmbench.metrics]\n{entry}\n")
    (tmp_path / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module, raising=False)


METRIC_SOURCE = """
from llmbench.metrics import Declaration, Metric

class Lengthy(Metric):
    declaration = Declaration(values=("chars",), scale="unit", direction="higher", indicators={}, stats_version=1)
    def sample_stats(self, *, prediction, references):
        return {"chars": len(prediction)}
    def score(self, stats, weights=None):
        raise NotImplementedError
    def primary(self):
        return "chars"

class Undeclared(Metric):
    pass
"""


def test_entry_point_plugin_metric(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = METRIC_SOURCE.replace("class Undeclared(Metric):\n    pass\n", "")
    _plugin(tmp_path, monkeypatch, "llmbench_demo_metric", source, "lengthy = llmbench_demo_metric:Lengthy")
    reg: Registry[MetricClass] = Registry("metric", protocol=MetricClass)
    assert reg.get("lengthy").value_names({}, None) == {"chars"}
    assert reg.origin("lengthy") == "plugin:llmbench-demo-metric"


@pytest.mark.parametrize(("source", "entry", "why"), [
    (METRIC_SOURCE, "broken = llmbench_bad_metric:Undeclared",  # the module itself fails at class definition
     "TypeError: metric class llmbench_bad_metric.Undeclared declares no `declaration = Declaration("),
    ("import no_such_module_xyz\n", "broken = llmbench_bad_metric:Anything",
     "ModuleNotFoundError: No module named 'no_such_module_xyz'"),
    ("X = 3\n", "broken = llmbench_bad_metric:Y", "AttributeError: module 'llmbench_bad_metric' has no attribute 'Y'"),
])
def test_a_plugin_that_cannot_load_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str,
                                               entry: str, why: str) -> None:
    _plugin(tmp_path, monkeypatch, "llmbench_bad_metric", source, entry)
    reg: Registry[MetricClass] = Registry("metric", protocol=MetricClass)
    with pytest.raises(RegistryError) as err:
        reg.get("broken")
    message = str(err.value)
    assert message.startswith("metric 'broken' (plugin:llmbench-bad-metric) could not be loaded from "), message
    assert why in message and message.endswith("— fix or uninstall the plugin") and "\n" not in message


def test_a_plugin_that_is_no_metric_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _plugin(tmp_path, monkeypatch, "llmbench_odd_metric", "VALUE = 42\n", "odd = llmbench_odd_metric:VALUE")
    reg: Registry[MetricClass] = Registry("metric", protocol=MetricClass)
    with pytest.raises(RegistryError, match=r"^metric 'odd' \(plugin:llmbench-odd-metric\) is 42, not a metric"):
        reg.get("odd")
    with pytest.raises(RegistryError, match=r"^metric 'direct' \(test\) is 42, not a metric"):  # checked at once
        reg.register("direct", 42, origin="test")  # type: ignore[arg-type]
    assert "direct" not in reg


def test_builtin_metrics_are_registered_lazily() -> None:
    """Listing metrics and checking a task's ``primary_metric`` import no scoring library: the
    registry holds ``module:Class`` strings, and the value names come from the class alone."""
    code = ("import sys\n"
            "from llmbench import registry\n"
            "assert 'rouge' in registry.metrics.names() and 'calibration' in registry.metrics\n"
            "assert not [m for m in sys.modules if m.startswith('llmbench.metrics')]\n"
            "from llmbench.tasks.kinds import metric_value_names\n"
            "assert metric_value_names('rouge', {}, None) == {'rouge1', 'rouge2', 'rougeL', 'rougeLsum'}\n"
            "assert metric_value_names('f1', {}, ['a']) >= {'f1/a', 'invalid_rate'}\n"
            "heavy = [m for m in ('rouge_score', 'nltk', 'sklearn', 'scipy') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
