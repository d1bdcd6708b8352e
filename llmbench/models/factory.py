"""Backend factories named in the model registry: (name, options) -> adapter."""

from __future__ import annotations

from typing import Any

from llmbench.models.base import ModelAdapter


def hf(name: str, options: dict[str, Any]) -> ModelAdapter:
    from llmbench.models.hf.adapter import HFAdapter, HFConfig

    if name == "smollm2-135m-instruct":
        from llmbench.models.hf.gguf import smollm2_gguf_path

        gguf = smollm2_gguf_path()
        options = {"gguf_file": gguf.name, **options}
        name = str(gguf.parent)
    return HFAdapter(HFConfig(path=name, **options))


def openai(name: str, options: dict[str, Any]) -> ModelAdapter:
    from llmbench.models.openai.adapter import OpenAIAdapter, OpenAIConfig

    return OpenAIAdapter(OpenAIConfig(model=name, **options))
