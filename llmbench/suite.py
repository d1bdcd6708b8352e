"""Suite files: models x tasks x options in one YAML file (the nightly job's input)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from llmbench.errors import UserError, validation_problem
from llmbench.executors import ExecutorName
from llmbench.finetune import FinetuneConfig
from llmbench.models.base import ModelError
from llmbench.paths import expand_cache
from llmbench.runner import ModelEntry
from llmbench.tasks.spec import JudgeConfig
from llmbench.types import Frozen
from llmbench.yamlfile import read_mapping

# A suite's fine-tuning step is a FinetuneConfig (same keys as `llmbench finetune`); it runs
# before the evaluation when its output folder holds no model yet.
FinetuneStep = FinetuneConfig


class SuiteError(UserError):
    """A malformed suite file; one line naming the file and the key."""


def _check_perturbations(value: tuple[str, ...]) -> tuple[str, ...]:
    """Refuse an unknown perturbation when the suite loads, not after the first model ran."""
    from llmbench.tasks.perturb import parse

    for spec in value:
        parse(spec)  # PerturbationError is a ValueError: reported with the suite file and the key
    return value


class SuiteTask(Frozen):
    task: str
    limit: int | None = Field(default=None, ge=1)
    data: str | None = None
    #: The drop the owner wants the gate to catch (primary value's units); the runner warns when
    #: the task's sample count cannot (``llmbench plan``). Overrides the suite's ``detect``.
    detect: float | None = Field(default=None, gt=0)
    #: Perturbed variants of this task to run beside it (``tasks.perturb``: "typo:rate=0.05", ...).
    perturb: tuple[str, ...] = ()
    #: Draws per sample for a model that samples (``--repeats``); overrides the suite's ``repeats``.
    repeats: int | None = Field(default=None, ge=1, le=100)
    #: A judge of this task's answers (the task file's ``judge:`` keys); overrides the suite's
    #: ``judge`` and the task file's own.
    judge: JudgeConfig | None = None

    _perturb = field_validator("perturb")(_check_perturbations)


class SuiteModel(ModelEntry):
    tasks: tuple[str, ...] | None = None  # restrict this model to these tasks


#: Seeds are numpy's (0 .. 2**32-1); bootstrap resamples above this would run for minutes per
#: metric while a run row says "running" (1,000 is the default, 10,000 plenty).
MAX_SEED = 2**32 - 1
MAX_RESAMPLES = 100_000


class Suite(Frozen):
    name: str
    description: str = ""
    limit: int | None = Field(default=None, ge=1)
    detect: float | None = Field(default=None, gt=0)  # per-task default of SuiteTask.detect
    perturb: tuple[str, ...] = ()  # perturbations of every task (added to each task's perturb:)
    repeats: int = Field(default=1, ge=1, le=100)  # draws per sample (report.noise)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    n_resamples: int = Field(default=1000, ge=0, le=MAX_RESAMPLES)
    tags: tuple[str, ...] = ()
    finetune: tuple[FinetuneStep, ...] = ()
    models: tuple[SuiteModel, ...]
    tasks: tuple[SuiteTask, ...]
    # Where the models answer (see the README, "Scale-out on Ray"); --executor/--ray-address
    # on the command line win over these.
    executor: ExecutorName = "local"
    ray_address: str | None = None
    #: A judge of every task's answers (``tasks.spec.JudgeConfig``), unless the task entry sets
    #: its own; replaces a task file's ``judge:``. ``mode: pairwise`` judges every two models.
    judge: JudgeConfig | None = None

    _perturb = field_validator("perturb")(_check_perturbations)

    @field_validator("tasks", "models", mode="before")
    @classmethod
    def _short_forms(cls, value: Any, info: ValidationInfo) -> Any:
        """A bare string in ``tasks:`` or ``models:`` is the task reference or the model spec."""
        key = {"tasks": "task", "models": "spec"}[str(info.field_name)]
        if isinstance(value, list):
            return [{key: v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: tuple[str, ...]) -> tuple[str, ...]:
        for tag in tags:
            if not tag.strip() or "," in tag:
                raise ValueError(f"{tag!r} is not a tag: give non-empty words without commas, e.g. [nightly, gpu]")
        return tags

    @model_validator(mode="after")
    def _each_once(self) -> Suite:
        """The same model (spec, label and options) or task (and data) twice would evaluate
        twice and store two runs that look like one; a user who wants that reruns."""
        for what, items in (("models", [(m.label or m.spec, m.spec, repr(m.options), m.scoring) for m in self.models]),
                            ("tasks", [(t.task, t.task, t.data, t.limit) for t in self.tasks])):
            seen: dict[tuple[Any, ...], int] = {}
            for i, item in enumerate(items):
                if item in seen:
                    raise ValueError(f"{what}[{i}] '{item[0]}' repeats {what}[{seen[item]}] — list it once")
                seen[item] = i
        return self


def packaged_suites() -> dict[str, Path]:
    """Suites that ship inside the package (``llmbench/catalog/suites``), by name."""
    folder = Path(__file__).resolve().parent / "catalog" / "suites"
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def find_suite(path: Path) -> Path:
    """``--suite`` as given, or the packaged suite of that name (``--suite default``) when no
    such file exists: an installed package has no checkout's suites/ folder."""
    if not path.exists() and not path.suffix and len(path.parts) == 1:
        found = packaged_suites().get(path.name)
        if found is None:
            raise SuiteError(f"suite '{path}' is neither a file nor a packaged suite — give a .yaml file or one of: "
                             f"{', '.join(packaged_suites()) or 'none'}")
        return found
    return path


def load_suite(path: Path) -> Suite:
    path = find_suite(path)
    if path.is_dir():
        raise SuiteError(f"suite file '{path}' is a folder — give a .yaml suite file (see suites/)")
    raw = read_mapping(path, what="suite", keys="name:, models:, tasks:", error=SuiteError)
    try:
        return Suite.model_validate(raw)
    except ValidationError as err:
        loc, kind, text = validation_problem(err)
        if kind == "value_error" and loc == "(top level)":  # a whole-suite rule: says its own fix
            raise SuiteError(f"{path}: {text}") from None
        if kind == "extra_forbidden":
            msg = "unknown key — remove it or check its spelling"
        elif kind == "missing":
            msg = f"{text}: a missing key — add it (see suites/default.yaml)"
        else:
            msg = f"{text} — fix this value"
        raise SuiteError(f"{path}: {loc}: {msg}") from None
    except ModelError as err:  # a fine-tuning step's own validation
        raise SuiteError(f"{path}: finetune: {err}") from None


def resolve_path(base: Path, value: str) -> str:
    """Relative paths in a suite file are relative to the file; ``~`` and a leading
    ``$LLMBENCH_CACHE`` (the cache root, default ``~/.cache/llmbench``) are expanded."""
    expanded = Path(expand_cache(value)).expanduser()
    if expanded.is_absolute() or value.startswith(("hf:", "openai:", "baseline:")):
        return str(expanded)
    return str((base / expanded).resolve())
