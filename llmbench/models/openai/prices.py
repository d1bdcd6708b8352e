"""The price table behind ``Response.cost_usd``.

Prices live in data (``prices.json``, USD per million tokens) rather than code
because they change more often than the client does; a user's own file (the
``prices_file`` config field, or ``$LLMBENCH_PRICES``) overrides or extends the
built-in one without a release. An unknown model costs ``None`` — "unknown" is
honest, ``0.0`` would not be.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from pydantic import Field, ValidationError

from llmbench.models.base import ModelError
from llmbench.types import Frozen, Usage

BUILTIN_PRICES = Path(__file__).with_name("prices.json")
PRICES_ENV = "LLMBENCH_PRICES"
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


class Price(Frozen):
    """USD per million tokens. ``cached_input`` is the price of prompt tokens the API
    served from its prompt cache (``usage.prompt_tokens_details.cached_tokens``); where a
    model has none listed they cost ``input``, which over-states rather than hides cost."""

    input: float = Field(ge=0.0)
    output: float = Field(ge=0.0)
    cached_input: float | None = Field(default=None, ge=0.0)

    def cost(self, usage: Usage) -> float:
        cached = min(usage.cached_prompt_tokens, usage.prompt_tokens)
        cached_price = self.input if self.cached_input is None else self.cached_input
        return ((usage.prompt_tokens - cached) * self.input + cached * cached_price
                + usage.completion_tokens * self.output) / 1e6


def _read(path: Path) -> dict[str, Price]:
    """One price file: ``{"models": {name: {"input": x, "output": y}}}`` or the bare
    ``{name: {...}}`` mapping; keys starting with ``_`` are comments."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"price file {path} does not exist") from None
    except (OSError, json.JSONDecodeError) as err:
        raise ModelError(f"price file {path} is not readable JSON: {err}") from None
    table = raw.get("models", raw) if isinstance(raw, dict) else None
    if not isinstance(table, dict):
        raise ModelError(f"price file {path}: expected an object of model -> prices")
    out: dict[str, Price] = {}
    for name, entry in table.items():
        if name.startswith("_"):
            continue
        try:
            out[name] = Price.model_validate(entry)
        except ValidationError:
            raise ModelError(
                f"price file {path}: '{name}' must be {{\"input\": <USD/1M>, \"output\": <USD/1M>"
                "[, \"cached_input\": <USD/1M>]}"
            ) from None
    return out


def load_prices(prices_file: Path | None = None) -> dict[str, Price]:
    """Built-in table, then ``$LLMBENCH_PRICES``, then ``prices_file``; later wins."""
    table: dict[str, Price] = {}
    if BUILTIN_PRICES.exists():  # absent only in a broken install; costs become None
        table.update(_read(BUILTIN_PRICES))
    if env := os.environ.get(PRICES_ENV):
        table.update(_read(Path(env)))
    if prices_file is not None:
        table.update(_read(Path(prices_file)))
    return table


def price_for(model: str, table: dict[str, Price]) -> Price | None:
    """Exact name first, then the undated name of a dated snapshot
    (``gpt-4o-mini-2024-07-18`` -> ``gpt-4o-mini``). No looser prefix matching:
    ``gpt-4o-mini`` must never be billed as ``gpt-4o``."""
    if model in table:
        return table[model]
    return table.get(_SNAPSHOT.sub("", model))


def cost_usd(usage: Usage | None, price: Price | None) -> float | None:
    if usage is None or price is None:
        return None
    return price.cost(usage)
