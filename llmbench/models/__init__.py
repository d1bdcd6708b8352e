"""Model specs (``hf:PATH``, ``openai:MODEL``, ``baseline:NAME``, plugins) -> adapters.

A spec names a backend and a model; options (dtype, base_url, concurrency, ...) come
from the CLI or the suite file. Backends are looked up in ``registry.models`` so a
plugin adds one through the ``llmbench.models`` entry-point group. Nothing heavy is
imported until an adapter is actually built.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from llmbench import registry
from llmbench.errors import validation_problem
from llmbench.models.base import ModelAdapter, ModelError
from llmbench.models.packaged import model_aliases

__all__ = ["MODEL_ALIASES", "ModelAdapter", "ModelError", "load_adapter", "model_kind"]

registry.models.register("hf", "llmbench.models.factory:hf")
registry.models.register("openai", "llmbench.models.factory:openai")
registry.models.register("baseline", "llmbench.models.baselines:from_spec")

# Short names for the real models that ship inside PyPI packages (see README, "Models").
MODEL_ALIASES: dict[str, str] = model_aliases()


def split_spec(spec: str) -> tuple[str, str]:
    spec = MODEL_ALIASES.get(spec, spec)
    backend, sep, name = spec.partition(":")
    if not sep or not name:
        raise ModelError(f"model spec '{spec}' must look like BACKEND:NAME "
                         f"(backends: {', '.join(registry.models.names())}), e.g. hf:path/to/model")
    return backend, name


def model_kind(spec: str) -> str:
    """'local', 'api' or 'baseline' — shown on leaderboard rows."""
    backend, _ = split_spec(spec)
    return {"hf": "local", "openai": "api", "baseline": "baseline"}.get(backend, backend)


def load_adapter(spec: str, options: dict[str, Any] | None = None) -> ModelAdapter:
    backend, name = split_spec(spec)
    if backend not in registry.models:
        raise ModelError(f"unknown model backend '{backend}' in '{spec}' "
                         f"(known: {', '.join(registry.models.names())})")
    factory = registry.models.get(backend)
    try:
        adapter = factory(name, dict(options or {}))
    except ValidationError as err:
        loc, kind, text = validation_problem(err)
        if kind == "extra_forbidden":
            raise ModelError(f"model '{spec}': unknown option '{loc}' (from --model-arg or the suite's "
                             "options:) — remove it or check its spelling") from None
        raise ModelError(f"model '{spec}': option '{loc}': {text} — fix --model-arg {loc}=...") from None
    if not isinstance(adapter, ModelAdapter):  # a plugin's factory is typed by nothing but this
        raise ModelError(f"model backend '{backend}' built a {type(adapter).__name__}, not a ModelAdapter "
                         "— its factory must return a subclass of llmbench.models.base.ModelAdapter")
    return adapter
