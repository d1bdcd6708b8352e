"""``llmbench.types.Frozen``: the one base for closed, immutable configuration and value types."""

from __future__ import annotations

import pydantic
import pytest

from llmbench.types import Frozen


class _Point(Frozen):
    x: int


def test_frozen_forbids_unknown_keys_and_mutation() -> None:
    with pytest.raises(pydantic.ValidationError, match="Extra inputs are not permitted"):
        _Point(x=1, y=2)  # type: ignore[call-arg]
    point = _Point(x=1)
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        point.x = 2


def test_task_suite_run_and_finetune_configs_share_it() -> None:
    from llmbench.finetune import FinetuneConfig
    from llmbench.models.openai.prices import Price
    from llmbench.runner import ModelEntry, RunConfig
    from llmbench.suite import Suite, SuiteTask
    from llmbench.tasks.spec import DatasetSpec, FewShot, FieldMap, MetricRef, PromptSpec, TaskSpec

    for cls in (TaskSpec, DatasetSpec, FieldMap, FewShot, PromptSpec, MetricRef, Suite, SuiteTask, ModelEntry,
                RunConfig, FinetuneConfig, Price):
        assert issubclass(cls, Frozen), cls.__name__
        assert "model_config" not in cls.__dict__ or cls.model_config == Frozen.model_config, cls.__name__
