"""Suite files: the default suite loads, paths resolve against the file, mistakes are one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmbench.plan import plan_from_suite
from llmbench.suite import SuiteError, load_suite

ROOT = Path(__file__).resolve().parents[2]


def _plan(path: Path, **kw: object):  # type: ignore[no-untyped-def]
    args = {"limit": None, "full": False, "seed": None, "tags": (), "resamples": None, "extra_options": {}}
    return plan_from_suite(path, **{**args, **kw})  # type: ignore[arg-type]


def test_default_suite_plan() -> None:
    plan = _plan(ROOT / "suites" / "default.yaml")
    assert {pt.ref for pt in plan.tasks} == {"rotten_tomatoes", "flores_en_ms", "flores_ms_en", "flores_qa",
                                             "stdlib_docstrings", "flores_en_ppl"}
    assert next(pt.limit for pt in plan.tasks if pt.ref == "flores_en_ppl") == 50  # a short demo
    assert plan.cap_note and "--full" in plan.cap_note
    step = plan.finetune[0]
    assert step.base == "minilm" and step.out.is_absolute() and step.learning_rate == 2e-4
    full = _plan(ROOT / "suites" / "default.yaml", full=True)
    assert all(pt.limit is None for pt in full.tasks) and full.cap_note is None


def test_relative_paths_resolve_against_the_suite_file(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        "name: s\nmodels: [{spec: 'hf:models/m', scoring: loglikelihood}]\ntasks: [{task: t.yaml, data: d.jsonl}]\n"
        "finetune: [{task: t.yaml, base: minilm, out: out/m}]\n")
    plan = _plan(tmp_path / "s.yaml")
    entry, _ = plan.models[0]
    assert entry.spec == f"hf:{tmp_path / 'models' / 'm'}" and entry.scoring == "loglikelihood"
    assert plan.tasks[0].ref == str(tmp_path / "t.yaml") and plan.tasks[0].data == str(tmp_path / "d.jsonl")
    assert plan.finetune[0].out == tmp_path / "out" / "m"


def test_python_and_lm_eval_task_files_resolve_against_the_suite_file(tmp_path: Path) -> None:
    (tmp_path / "lm").mkdir()
    for name in ("a", "b"):
        (tmp_path / "lm" / f"{name}.yaml").write_text(f"task: {name}\ndataset_path: x\n")
    (tmp_path / "s.yaml").write_text(
        "name: s\nmodels: [baseline:majority]\n"
        "tasks: [t.py, 'u.py:mine', 'lm-eval:lm/a.yaml', 'lm-eval:lm', rotten_tomatoes]\n")
    refs = [pt.ref for pt in _plan(tmp_path / "s.yaml").tasks]
    lm = tmp_path / "lm"
    assert refs == [str(tmp_path / "t.py"), f"{tmp_path / 'u.py'}:mine", f"lm-eval:{lm / 'a.yaml'}",
                    f"lm-eval:{lm / 'a.yaml'}", f"lm-eval:{lm / 'b.yaml'}", "rotten_tomatoes"]


@pytest.mark.parametrize(("body", "message"), [
    ("name: s\nmodels: [x]\ntasks: [t]\nlimt: 3\n", "limt: unknown key"),
    ("name: s\nmodels: [x]\ntasks: [t]\nfinetune: [{task: t, base: b, out: o, epoch: 1}]\n",
     "finetune.0.epoch: unknown key"),
    ("name: s\nmodels: [x]\ntasks: [t]\nfinetune: [{task: t, base: b, out: o, batch_size: 0}]\n",
     "finetune: batch-size must be at least 1"),
    ("name: s\nmodels: [x]\n", "tasks: Field required"),
    ("name: [s\n", "invalid YAML"),
])
def test_mistakes_name_the_file_and_key(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(body)
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    assert str(err.value).startswith(f"{path}:") and message in str(err.value)
