"""``llmbench.paths``: the one cache root and the one local-folder-or-Hub-id rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmbench.paths import cache_root, expand_cache, is_hub_id, looks_local


def test_cache_root_expands_home_and_ignores_an_empty_variable(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("LLMBENCH_CACHE", "~/somewhere")
    assert cache_root() == tmp_path / "somewhere"  # not a folder literally named "~"
    monkeypatch.setenv("LLMBENCH_CACHE", "")
    assert cache_root() == tmp_path / ".cache" / "llmbench"
    monkeypatch.delenv("LLMBENCH_CACHE")
    assert cache_root() == tmp_path / ".cache" / "llmbench"


def test_cache_and_gguf_share_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmbench.cache import default_cache_dir

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("LLMBENCH_CACHE", "~/c")
    assert default_cache_dir() == tmp_path / "c"


@pytest.mark.parametrize(("name", "hub"), [("gpt2", True), ("org/model-1.5", True), ("a/b/c", False),
                                           ("/abs/path", False), ("has space", False), ("-x", False)])
def test_is_hub_id(name: str, hub: bool) -> None:
    assert is_hub_id(name) is hub


def test_looks_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert not looks_local("org/model")  # a Hub id, nothing here by that name
    assert looks_local("./missing") and looks_local("~/missing") and looks_local("/missing")
    assert looks_local("a/b/c")  # cannot be a Hub id
    (tmp_path / "models").mkdir()
    assert looks_local("models/foo")  # ./models exists: a mistyped local path, not a Hub org
    (tmp_path / "gpt2").mkdir()
    assert looks_local("gpt2")  # an existing folder wins over the Hub id of the same name


def test_expand_cache_follows_the_variable_and_its_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LLMBENCH_CACHE", raising=False)
    default = tmp_path / "home" / ".cache" / "llmbench"
    assert expand_cache("$LLMBENCH_CACHE/finetuned/m") == str(default / "finetuned" / "m")
    monkeypatch.setenv("LLMBENCH_CACHE", str(tmp_path / "ci"))
    assert expand_cache("${LLMBENCH_CACHE}/x") == str(tmp_path / "ci" / "x")
    assert expand_cache("$LLMBENCH_CACHE") == str(tmp_path / "ci")
    for untouched in ("$LLMBENCH_CACHEX/x", "models/$LLMBENCH_CACHE", "~/m", "hf:gpt2"):
        assert expand_cache(untouched) == untouched


def test_the_default_suite_keeps_its_finetuned_model_in_the_cache(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from llmbench.plan import plan_from_suite

    monkeypatch.setenv("LLMBENCH_CACHE", str(tmp_path / "ci"))
    plan = plan_from_suite(Path(__file__).resolve().parents[2] / "suites" / "default.yaml", limit=None, full=False,
                           seed=None, tags=(), resamples=None, extra_options={})
    out = plan.finetune[0].out
    assert out == tmp_path / "ci" / "finetuned" / "minilm-rotten_tomatoes-seed0"
    assert f"hf:{out}" in [entry.spec for entry, _ in plan.models]  # evaluated from where it was written
