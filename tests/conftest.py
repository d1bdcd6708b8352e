"""Shared fixtures: tiny random-init models built once per test session, offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from llmbench.testing import build_tiny_gpt2

    return build_tiny_gpt2(tmp_path_factory.mktemp("models") / "gpt2")


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from llmbench.testing import build_tiny_t5

    return build_tiny_t5(tmp_path_factory.mktemp("models") / "t5")


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from llmbench.testing import build_tiny_bert_classifier

    return build_tiny_bert_classifier(tmp_path_factory.mktemp("models") / "bert")


@pytest.fixture(scope="session")
def tiny_sliding_mistral(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A causal LM whose KV cache has sliding-window layers: it cannot be shared row-wise."""
    from llmbench.testing import build_tiny_mistral

    return build_tiny_mistral(tmp_path_factory.mktemp("models") / "mistral", sliding_window=8)
