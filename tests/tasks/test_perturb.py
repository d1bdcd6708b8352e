"""tasks.perturb: each transform against hand-written expectations, label preservation, the
fingerprint, one-line errors, and byte-identical perturbed prompts across two processes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmbench.tasks import load_task
from llmbench.tasks.perturb import CONFUSABLES, NEIGHBOURS, PerturbationError, parse
from llmbench.tasks.perturbed import PerturbedTask, variants

TEXT = "I do not think the Movie is good, but it is NOT bad; we are told so!"


def write_task(folder: Path, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"s{i}", "text": f"Review {i}: I do not think it is bad, we are sure. Great fun #{i}!",
             "label": ["negative", "positive"][i % 2]} for i in range(12)]
    (folder / "rev.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    path = folder / "rev.yaml"
    path.write_text("name: rev\nkind: classification\ndataset: {path: rev.jsonl}\n"
                    "fields: {id: id, input: text, target: label}\nlabels: [negative, positive]\n"
                    "prompt: {template: 'Review: {{ input }}\\nSentiment:'}\n" + extra, encoding="utf-8")
    return path


def test_typo_replaces_only_letters_with_keyboard_neighbours() -> None:
    out = parse("typo:rate=1").text(TEXT, "x")
    assert len(out) == len(TEXT)
    for before, after in zip(TEXT, out, strict=True):
        if before.isalpha():
            assert after.lower() in NEIGHBOURS[before.lower()] and after.isupper() == before.isupper()
        else:
            assert after == before
    assert parse("typo:rate=0").text(TEXT, "x") == TEXT
    some = parse("typo:rate=0.1").text(TEXT, "x")
    assert 0 < sum(a != b for a, b in zip(TEXT, some, strict=True)) < 15


def test_case_contractions_and_confusables_by_hand() -> None:
    assert parse("case").text("Good Film", "x") == "good film"
    assert parse("case:mode=upper").text("Good Film", "x") == "GOOD FILM"
    assert parse("case:mode=title").text("good film", "x") == "Good Film"
    assert parse("contraction").text(TEXT, "x") == "I don't think the Movie is good, but it's NOT bad; we're told so!"
    assert parse("expansion").text("Don't go, it's late and we're tired; he's here.", "x") == (
        "Do not go, it is late and we are tired; he's here.")  # "he's" is ambiguous: left alone
    assert parse("confusables:rate=1").text("scope", "x") == "ѕсоре"
    assert all(CONFUSABLES[c] in parse("confusables:rate=1").text(c, "x") for c in "aeopcxy")
    ws = parse("whitespace:rate=1").text("a b c", "x")
    assert ws.replace("\t", " ").replace("\n", " ").split() == ["a", "b", "c"] and ws != "a b c"
    assert parse("punctuation:rate=1").text("a, b.", "x") in {"a b", "a,, b", "a b..", "a,, b.."}


def test_seeded_by_sample_id_name_parameters_and_seed() -> None:
    p = parse("typo:rate=0.3")
    assert p.text(TEXT, "s1") == p.text(TEXT, "s1")
    assert p.text(TEXT, "s1") != p.text(TEXT, "s2")
    assert p.text(TEXT, "s1") != parse("typo:rate=0.3", seed=1).text(TEXT, "s1")
    assert parse({"name": "typo", "rate": 0.3, "seed": 1}) == parse("typo:rate=0.3", seed=1)
    assert parse("typo").label == "typo" and parse("typo:rate=0.2").label == "typo(rate=0.2)"


@pytest.mark.parametrize(("spec", "words"), [
    ("swap", "unknown perturbation 'swap'"), ("typo:rate=2", "between 0 and 1"), ("typo:rat=0.1", "unknown parameter"),
    ("case:mode=camel", "give one of lower"), ("typo:0.1", "not key=value")])
def test_bad_specs_are_one_line(spec: str, words: str) -> None:
    with pytest.raises(PerturbationError, match=words) as err:
        parse(spec)
    assert "\n" not in str(err.value)


def test_label_preserving_and_fingerprinted(tmp_path: Path) -> None:
    task = load_task(str(write_task(tmp_path)))
    (typo,) = variants(task, ["typo:rate=0.5"])
    clean, noisy = task.samples(), typo.samples()
    assert [s.id for s in clean] == [s.id for s in noisy]
    assert [s.references for s in clean] == [s.references for s in noisy]  # never the reference
    assert all(a.input != b.input for a, b in zip(clean, noisy, strict=True))
    assert typo.name == "rev~typo(rate=0.5)" and typo.primary_metric == task.primary_metric
    fp = typo.config_fingerprint()["perturbation"]
    assert fp == {"name": "typo", "params": {"rate": 0.5}, "seed": 0, "version": 1, "clean_task": "rev",
                  "clean_fingerprint": task.fingerprint()}
    fingerprints = {PerturbedTask(task, parse(s, seed=k)).fingerprint()
                    for s in ("typo:rate=0.5", "typo:rate=0.4") for k in (0, 1)}
    assert len(fingerprints) == 4 and task.fingerprint() not in fingerprints
    # Declaring perturbations in the task file leaves the clean task's fingerprint alone.
    declared = load_task(str(write_task(tmp_path / "d", "perturbations: ['case:mode=upper', {name: typo}]\n")))
    assert declared.fingerprint() == load_task(str(write_task(tmp_path / "e"))).fingerprint()
    assert [v.name for v in variants(declared, ["typo", "whitespace"])] == [
        "rev~case(mode=upper)", "rev~typo", "rev~whitespace"]


def test_unknown_perturbation_in_a_task_file_is_one_line(tmp_path: Path) -> None:
    from llmbench.tasks.base import TaskError

    with pytest.raises(TaskError, match="unknown perturbation 'typos'") as err:
        load_task(str(write_task(tmp_path, "perturbations: [typos]\n")))
    assert "\n" not in str(err.value)


_PROMPTS = """
import hashlib, sys
from llmbench.tasks import load_task
from llmbench.tasks.perturbed import variants
task = load_task(sys.argv[1])
blob = []
for v in variants(task, ["typo:rate=0.2", "case:mode=random", "whitespace", "punctuation", "confusables"]):
    for r in v.build_requests(v.samples(), "generate"):
        blob.append(v.name + "\\x00" + r.sample_id + "\\x00" + str(r.prompt))
sys.stdout.write(hashlib.sha256("\\x01".join(blob).encode()).hexdigest())
"""


def test_same_seed_gives_byte_identical_prompts_in_two_processes(tmp_path: Path) -> None:
    path = str(write_task(tmp_path))
    digests = []
    for hash_seed in ("1", "2"):  # a different str-hash salt per process: nothing may depend on it
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": os.pathsep.join(sys.path)}
        done = subprocess.run([sys.executable, "-c", _PROMPTS, path], capture_output=True, text=True, env=env,
                              timeout=120, check=True)
        digests.append(done.stdout.strip())
    task = load_task(path)
    blob = [v.name + "\x00" + r.sample_id + "\x00" + str(r.prompt)
            for v in variants(task, ["typo:rate=0.2", "case:mode=random", "whitespace", "punctuation", "confusables"])
            for r in v.build_requests(v.samples(), "generate")]
    here = hashlib.sha256("\x01".join(blob).encode()).hexdigest()
    assert digests[0] == digests[1] == here
    assert len(digests[0]) == 64


def test_language_modelling_is_not_perturbed(tmp_path: Path) -> None:
    (tmp_path / "lm.jsonl").write_text(json.dumps({"text": "Some text to score."}), encoding="utf-8")
    path = tmp_path / "lm.yaml"
    path.write_text("name: lm\nkind: language_modeling\ndataset: {path: lm.jsonl}\nfields: {input: text}\n",
                    encoding="utf-8")
    with pytest.raises(PerturbationError, match="not label-preserving"):
        list(variants(load_task(str(path)), ["typo"]))
    assert list(variants(load_task(str(path)))) == []  # nothing asked: nothing refused
