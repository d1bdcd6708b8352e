"""Fine-tune an encoder into a sequence classifier on a task's train split (``llmbench finetune``).

The package reads in the order a run happens: ``config`` (what is asked), ``data`` (train
and validation rows), ``base`` (the base model: name, display name, loading), ``trainer``
(the ``finetune()`` entry and the Hugging Face ``Trainer``), ``card`` (the facts JSON and
the model card) and ``output`` (which folder may be replaced, and replacing it atomically).

Importing this package does not import torch or transformers: a suite file validates its
fine-tuning steps with ``FinetuneConfig`` alone.
"""

from llmbench.finetune.base import MINILM_HUB_ID, base_display_name, minilm_base_path, resolve_base
from llmbench.finetune.config import FinetuneConfig, FinetuneError, FinetuneResult
from llmbench.finetune.output import FACTS_FILE, read_facts
from llmbench.finetune.trainer import finetune

__all__ = [
    "FACTS_FILE",
    "MINILM_HUB_ID",
    "FinetuneConfig",
    "FinetuneError",
    "FinetuneResult",
    "base_display_name",
    "finetune",
    "minilm_base_path",
    "read_facts",
    "resolve_base",
]
