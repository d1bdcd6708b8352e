"""What a leaderboard row *is*: local model, fine-tuned from what, API model, or baseline.

Read from the store alone: the run's ``model_kind``, the adapter's ``model_identity`` and
the ``model_info`` the runner captured from ``ModelAdapter.describe()`` when the run was
made (``config["model_info"]``: architecture class, dtype, quantisation, fine-tuned from
and on). A report never opens a model folder, so it is the same whether the folder still
exists, moved, or was deleted, and it describes the model as it was when it answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from llmbench.store import RunInfo

#: Keys of ``model_identity`` that an adapter may use to say what it was fine-tuned from.
BASE_KEYS = ("base_model", "finetuned_from", "base")


@dataclass(frozen=True)
class ModelDescription:
    kind: str  # "local" | "fine-tuned" | "api" | "baseline" | plugin backend name
    detail: str  # one short line: arch/dtype, API model and host, baseline kind
    finetuned_from: str | None = None


def _first_str(data: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = data.get(key)
        if isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def model_info(run: RunInfo) -> dict[str, Any]:
    """What the runner stored about the model (empty for runs made before it did)."""
    info = run.run_config.model_info
    return info if isinstance(info, dict) else {}


def describe(run: RunInfo) -> ModelDescription:
    ident = run.model_identity or {}
    info = model_info(run)
    kind = run.model_kind
    if kind == "baseline":
        return ModelDescription("baseline", f"baseline: {ident.get('kind') or run.model.removeprefix('baseline:')}")
    if kind == "api":
        host = urlsplit(str(ident.get("base_url") or "")).hostname
        model = ident.get("model") or run.model
        return ModelDescription("api", f"API: {model}" + (f" @ {host}" if host else ""))
    arch = info.get("model_class") or info.get("arch") or ident.get("arch")
    dtype = info.get("dtype") or ident.get("dtype")
    parts = [str(x) for x in (arch, dtype) if x]
    if info.get("quantization"):
        parts.append(str(info["quantization"]))
    elif ident.get("gguf_file"):
        parts.append(f"gguf {ident['gguf_file']}")
    base = _first_str(info, ("finetuned_from",)) or _first_str(ident, BASE_KEYS)
    if base:
        if isinstance(info.get("finetuned_on"), str):
            parts.append(f"tuned on {info['finetuned_on']}")
        return ModelDescription("fine-tuned", " · ".join(parts) or "local", finetuned_from=base)
    return ModelDescription(kind, " · ".join(parts) or kind)
