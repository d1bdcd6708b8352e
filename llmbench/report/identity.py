"""What a leaderboard row *is*: local model, fine-tuned from what, API model, or baseline.

The store keeps each run's ``model_kind`` and the adapter's ``model_identity``. A fine-tuned
model says what it was tuned from in one of these places (first hit wins):

1. ``model_identity`` keys ``base_model`` / ``finetuned_from`` / ``base``;
2. a JSON record in the model folder with one of those keys: ``llmbench_finetune.json``
   (written by ``llmbench finetune``, which also names the task it was tuned on), then
   ``finetune.json`` / ``training_config.json``;
3. the folder's model card: YAML front matter ``base_model:`` in ``README.md`` (the
   Hugging Face model-card convention).

The folder is read only if it still exists where the run found it; nothing else is touched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from llmbench.store import RunInfo

BASE_KEYS = ("base_model", "finetuned_from", "base")
CARD_JSON = ("llmbench_finetune.json", "finetune.json", "training_config.json")


@dataclass(frozen=True)
class ModelDescription:
    kind: str  # "local" | "fine-tuned" | "api" | "baseline" | plugin backend name
    detail: str  # one short line: arch/dtype, API model and host, baseline kind
    finetuned_from: str | None = None


def _first_base(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    for key in BASE_KEYS:
        value = data.get(key)
        if isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _card_front_matter(readme: Path) -> dict[str, Any] | None:
    try:
        text = readme.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if not text.startswith("---"):
        return None
    end = text.find("\n---", 3)
    if end < 0:
        return None
    try:
        data = yaml.safe_load(text[3:end])
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def folder_record(path: str | None) -> dict[str, Any] | None:
    """The fine-tune record of a local model folder (JSON record, else model card), if any."""
    if not path:
        return None
    folder = Path(path).expanduser()
    try:
        if not folder.is_dir():
            return None
    except OSError:
        return None
    for name in CARD_JSON:
        try:
            data = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if _first_base(data):
            return data
    card = _card_front_matter(folder / "README.md")
    return card if _first_base(card) else None


def describe(run: RunInfo) -> ModelDescription:
    ident = run.model_identity or {}
    kind = run.model_kind
    if kind == "baseline":
        return ModelDescription("baseline", f"baseline: {ident.get('kind') or run.model.removeprefix('baseline:')}")
    if kind == "api":
        host = urlsplit(str(ident.get("base_url") or "")).hostname
        model = ident.get("model") or run.model
        return ModelDescription("api", f"API: {model}" + (f" @ {host}" if host else ""))
    parts = [str(ident[k]) for k in ("arch", "dtype") if ident.get(k)]
    if ident.get("gguf_file"):
        parts.append(f"gguf {ident['gguf_file']}")
    record = None if _first_base(ident) else folder_record(ident.get("path"))
    base = _first_base(ident) or _first_base(record)
    if base:
        if record and isinstance(record.get("task"), str):
            parts.append(f"tuned on {record['task']}")
        return ModelDescription("fine-tuned", " · ".join(parts) or "local", finetuned_from=base)
    return ModelDescription(kind, " · ".join(parts) or kind)
