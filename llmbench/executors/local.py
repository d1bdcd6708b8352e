"""The default executor: every model answers in this process, as it always has."""

from __future__ import annotations

from typing import Any

from llmbench.executors import Executor, ExecutorName, split_options
from llmbench.models import load_adapter
from llmbench.models.base import ModelAdapter


class LocalExecutor(Executor):
    """Adapters built in the driver; placement options are checked, then ignored, so a suite
    written for Ray runs unchanged on a laptop."""

    name: ExecutorName = "local"

    def adapter(self, spec: str, options: dict[str, Any]) -> ModelAdapter:
        adapter_options, _ = split_options(spec, options)
        return load_adapter(spec, adapter_options)
