"""The installed transformers library: its version and how loud it is.

A leaf of ``models/hf``: both the loader (``load``) and the GGUF converter (``gguf``) need
these, and the loader calls the converter, so they live below both rather than in either
(which made ``load`` and ``gguf`` import each other).
"""

from __future__ import annotations


def transformers_version() -> str:
    """The installed transformers version: part of the GGUF conversion and architecture cache
    keys, because a new release may convert or detect the same files differently."""
    from importlib.metadata import version

    return version("transformers")


def quiet_transformers() -> None:
    """Silence transformers' info/warning logs and progress bars: an eval run prints its
    own progress, and per-batch generation warnings would drown it."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    except ImportError:  # pragma: no cover - huggingface_hub always ships with transformers
        pass
