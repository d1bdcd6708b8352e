"""GGUF checkpoints for the HF adapter: de-quantise once, then load a normal HF folder.

transformers can read a GGUF file directly, but it de-quantises every tensor on each load
(~16 s for the 135M SmolLM2), which would dominate short eval runs. ``dequantized_dir``
does that once, saves a plain float32 safetensors folder (model + tokenizer + chat
template) under a per-user cache, and returns it; later loads take well under a second.

Cache layout: ``$LLMBENCH_CACHE`` (default ``~/.cache/llmbench``) ``/gguf/<stem>-<key>``,
where the key hashes the GGUF content (size, first and last MiB) and the transformers
version that did the conversion. The folder is written under a temporary name and renamed
into place, so an interrupted conversion never leaves a half-written cache entry.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from llmbench import paths
from llmbench.errors import one_line
from llmbench.models.base import ModelError
from llmbench.models.hf.library import quiet_transformers, transformers_version

_MIB = 1 << 20
_FORMAT = 2  # bump when the conversion itself changes (2: no GGUF quantization_config left)


def gguf_key(gguf_path: Path) -> str:
    """Cheap content key: size plus first and last MiB (the header, tokenizer metadata and
    both ends of the tensor data), and the converting transformers version (read from its
    package metadata: importing transformers to ask would cost half a second)."""
    size = gguf_path.stat().st_size
    h = hashlib.sha256(f"{_FORMAT}\x00{transformers_version()}\x00{size}\x00".encode())
    with gguf_path.open("rb") as fh:
        h.update(fh.read(_MIB))
        fh.seek(max(0, size - _MIB))
        h.update(fh.read(_MIB))
    return h.hexdigest()[:16]


def dequantized_dir(gguf_path: Path, cache_root: Path | None = None) -> Path:
    """The cached HF folder for ``gguf_path``, converting it on first use."""
    gguf_path = Path(gguf_path).expanduser()
    if not gguf_path.is_file():
        raise ModelError(f"GGUF file '{gguf_path}' does not exist — check the path")
    base = _cache_dir(cache_root)
    final = base / f"{gguf_path.stem}-{gguf_key(gguf_path)}"
    if final.is_dir():
        return final
    base.mkdir(parents=True, exist_ok=True)
    with _locked(base / f".{final.name}.lock"):
        if final.is_dir():  # another process finished it while we waited
            return final
        for stale in base.glob(f".tmp-{final.name}-*"):  # left by a killed conversion
            shutil.rmtree(stale, ignore_errors=True)
        tmp = base / f".tmp-{final.name}-{os.getpid()}"
        try:
            convert(gguf_path, tmp)
            (tmp / "llmbench_gguf.json").write_text(json.dumps(
                {"source": gguf_path.name, "size": gguf_path.stat().st_size, "format": _FORMAT}
            ))
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final


def _cache_dir(root: Path | None) -> Path:
    """``root/gguf``; without ``root``, below the one cache root every llmbench cache shares."""
    return (Path(root) if root is not None else paths.cache_root()) / "gguf"


def convert(gguf_path: Path, out: Path) -> None:
    """De-quantise ``gguf_path`` into an HF folder ``out`` (float32 safetensors, tokenizer)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    quiet_transformers()
    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        import torch

        config = AutoConfig.from_pretrained(folder, gguf_file=name)
        auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
        with _no_tqdm():
            model = auto.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    except ImportError as err:
        raise ModelError(
            f"cannot read GGUF '{gguf_path}': {one_line(err, 300)} — pip install gguf accelerate"
        ) from err
    except Exception as err:
        raise ModelError(
            f"cannot de-quantise GGUF '{gguf_path}': {one_line(err, 300)} — transformers supports "
            "only some GGUF architectures and quantisation types"
        ) from err
    # The GGUF quantizer stays attached after loading; the weights are plain tensors now,
    # and save_pretrained would otherwise refuse or record a quantisation config.
    model.hf_quantizer = None
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    # transformers still writes the GGUF `quantization_config` into config.json; the folder
    # holds plain float32 tensors, and with that entry a plain `from_pretrained` elsewhere
    # would look for a GGUF file that is not there.
    config_path = out / "config.json"
    saved = json.loads(config_path.read_text(encoding="utf-8"))
    if saved.pop("quantization_config", None) is not None:
        config_path.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n", encoding="utf-8")


@contextlib.contextmanager
def _no_tqdm() -> Iterator[None]:
    """transformers' GGUF reader draws its own tqdm bar, ignoring its progress-bar switch."""
    try:
        from transformers import modeling_gguf_pytorch_utils as reader
    except ImportError:  # pragma: no cover
        yield
        return
    original = getattr(reader, "tqdm", None)
    if original is None:
        yield
        return
    reader.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        reader.tqdm = original


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """An exclusive inter-process lock (POSIX), so two runs do not convert the same file
    at once. Without fcntl (Windows) the atomic rename alone keeps the cache consistent."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover
        yield
        return
    with lock_path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
