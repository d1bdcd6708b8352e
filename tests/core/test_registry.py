"""Registries: lazy targets, decorators, and third-party plugins through entry points."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from llmbench.registry import Registry, RegistryError
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
