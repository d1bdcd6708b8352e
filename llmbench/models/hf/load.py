"""Finding, loading and fingerprinting a Hugging Face model for the HF adapter.

Every failure a user can fix (missing folder, no ``config.json``, a Hub id that is not
cached while offline, a broken checkpoint) becomes a one-line ``ModelError`` that says
what failed, where, and what to do, because the CLI prints exactly that line.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from llmbench.errors import one_line
from llmbench.models.base import ModelError
from llmbench.models.hf.library import transformers_version
from llmbench.paths import cache_root, looks_local

if TYPE_CHECKING:
    import torch

Arch = Literal["causal", "seq2seq", "classifier", "masked"]
_ARCHS: frozenset[str] = frozenset(get_args(Arch))

_MIB = 1 << 20
_SKIP_FILES = {".gitattributes", "README.md", "LICENSE", "LICENSE.txt"}


def device_name(device: str) -> str:
    """The device a model runs on, as a name (``cpu``, ``cuda``, ``cuda:1``).

    ``auto`` is ``cuda`` when torch can see a GPU. A CPU-only torch build (its version ends
    in ``+cpu``) cannot, so that is answered from the package metadata without importing
    torch (~0.8 s, which a rerun answered entirely from the cache would spend to learn "cpu").
    """
    if device == "cpu" or (device == "auto" and _cpu_only_torch()):
        return "cpu"
    return str(resolve_device(device))


def dtype_name(dtype: str, device: str) -> str:
    """``auto`` is float32 off CUDA (bf16 matmuls are slow and lossy on CPU) and bfloat16 on
    CUDA (float16 on cards without bf16)."""
    if dtype != "auto":
        return dtype
    if not device.startswith("cuda"):
        return "float32"
    import torch

    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


def _cpu_only_torch() -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch").endswith("+cpu")
    except PackageNotFoundError:
        return False


def resolve_device(device: str) -> torch.device:
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError) as err:
        raise ModelError(
            f"unknown device {device!r} — use 'auto', 'cpu', 'cuda' or 'cuda:N' ({one_line(err, 300)})"
        ) from err
    # Said here, not at load: the load error blamed the model folder ("check the folder holds
    # config.json ...") for a machine without a GPU.
    if resolved.type == "cuda" and not torch.cuda.is_available():
        why = "this torch is a CPU-only build" if _cpu_only_torch() else "torch sees no CUDA GPU"
        raise ModelError(f"device={device}: {why} — use device=cpu (or auto), or run on a machine with a GPU")
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise ModelError(f"device={device}: torch sees {torch.cuda.device_count()} GPU(s) — use cuda:0 .. "
                         f"cuda:{torch.cuda.device_count() - 1}, or auto")
    return resolved


def resolve_source(path: str, revision: str | None, gguf_file: str | None) -> tuple[str, bool]:
    """What to hand ``from_pretrained``: ``(local folder or Hub id, is_local)``.

    A GGUF checkpoint (``gguf_file`` set or ``path`` ending in ``.gguf``) is de-quantised
    once into a cached HF folder (see ``llmbench.models.hf.gguf``) and loaded from there.
    """
    if gguf_file is not None or path.endswith(".gguf"):
        from llmbench.models.hf.gguf import dequantized_dir

        return str(dequantized_dir(_find_gguf(path, revision, gguf_file))), True
    if not looks_local(path):
        return path, False
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelError(
            f"model path {path!r} does not exist — give a folder with config.json or a Hub id"
        )
    if not p.is_dir():
        raise ModelError(
            f"model path {path!r} is a file, not a folder — give the folder that holds "
            "config.json (or a .gguf file)"
        )
    if not (p / "config.json").is_file():
        raise ModelError(
            f"model folder {path!r} has no config.json — point at the folder that "
            "from_pretrained/save_pretrained uses"
        )
    if not any((p / name).is_file() for name in TOKENIZER_FILES):
        # transformers then builds an *empty* tokenizer without complaint: every prompt
        # encodes to nothing and the run fails sample by sample, after the model loaded
        raise ModelError(
            f"model folder {path!r} has no tokenizer files (none of {', '.join(TOKENIZER_FILES)}) "
            "— save the tokenizer into it too (tokenizer.save_pretrained(folder))"
        )
    return str(p), True


#: A local folder holds at least one of these when its tokenizer was saved with it.
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "vocab.txt", "spiece.model", "tokenizer.model",
                   "sentencepiece.bpe.model", "vocab.model")


def _find_gguf(path: str, revision: str | None, gguf_file: str | None) -> Path:
    if gguf_file is None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise ModelError(f"GGUF file {path!r} does not exist — check the path")
        return p
    g = Path(gguf_file).expanduser()
    if g.is_absolute():
        if not g.is_file():
            raise ModelError(f"GGUF file {gguf_file!r} does not exist — check the path")
        return g
    if looks_local(path):
        p = Path(path).expanduser() / gguf_file
        if not p.is_file():
            raise ModelError(
                f"GGUF file {gguf_file!r} not found in {path!r} — check the folder and file name"
            )
        return p
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(path, gguf_file, revision=revision))
    except Exception as err:
        raise ModelError(
            f"cannot fetch {gguf_file!r} from Hub repo {path!r}: {one_line(err, 300)} — download it "
            "while online or give a local .gguf path"
        ) from err


def detect_arch(config: Any) -> Arch:
    """Encoder-decoder → seq2seq; a ``*ForSequenceClassification`` architecture →
    classifier; a ``*ForMaskedLM`` one → masked (pseudo-perplexity only); anything else is
    treated as a causal LM."""
    if getattr(config, "is_encoder_decoder", False):
        return "seq2seq"
    if any(a.endswith("ForSequenceClassification") for a in (config.architectures or [])):
        return "classifier"
    if any(a.endswith("ForMaskedLM") for a in (config.architectures or [])):
        return "masked"
    return "causal"


def model_arch(source: str, revision: str | None, trust_remote_code: bool, shown: str, is_local: bool) -> Arch:
    """``detect_arch`` of the model's config, memoised per local ``config.json``.

    Why: ``AutoConfig`` imports the model family's modules (for Llama-style models that pulls
    in torch.distributed and more: about a second), and an adapter needs the architecture
    before the runner knows whether the cache can answer everything. The memo is keyed by
    the exact bytes of ``config.json``, the transformers version and ``trust_remote_code``,
    so a changed config is read again. A config is only memoised after it loaded once, so
    the memo never hides a broken one from a run that has to load the model.
    """
    memo: Path | None = None
    if is_local:
        blob = (Path(source) / "config.json").read_bytes()
        key = hashlib.sha256(blob + f"\x00{transformers_version()}\x00{trust_remote_code}".encode())
        memo = cache_root() / "arch" / f"{key.hexdigest()[:32]}.txt"
        with contextlib.suppress(OSError):
            known = memo.read_text(encoding="utf-8").strip()
            if known in _ARCHS:
                return known  # type: ignore[return-value]
    arch = detect_arch(load_config(source, revision, trust_remote_code, shown))
    if memo is not None:
        with contextlib.suppress(OSError):  # a read-only cache only costs the next run a second
            memo.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(arch, encoding="utf-8")
            os.replace(tmp, memo)
    return arch


def load_config(source: str, revision: str | None, trust_remote_code: bool, shown: str) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(
            source, revision=revision, trust_remote_code=trust_remote_code
        )
    except Exception as err:
        raise ModelError(_load_hint(shown, err)) from err


def load_model(source: str, revision: str | None, trust_remote_code: bool, arch: Arch,
               dtype: torch.dtype, device: torch.device, shown: str) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` in eval mode on ``device``."""
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForMaskedLM,
        AutoModelForSeq2SeqLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    auto = {
        "causal": AutoModelForCausalLM,
        "seq2seq": AutoModelForSeq2SeqLM,
        "classifier": AutoModelForSequenceClassification,
        "masked": AutoModelForMaskedLM,
    }[arch]
    # Keywords spelled out rather than a shared ``**dict``: transformers types each one, and a
    # dict of mixed value types matches none of them (mypy's arg-type since transformers 5.25).
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, revision=revision, trust_remote_code=trust_remote_code)
    except Exception as err:
        raise ModelError(_load_hint(shown, err, what="tokenizer")) from err
    if len(tokenizer) <= 1:  # an empty vocabulary: the folder's tokenizer files are incomplete
        raise ModelError(f"cannot load tokenizer {shown!r}: its vocabulary is empty — save the complete "
                         "tokenizer into the folder (tokenizer.save_pretrained(folder))")
    try:
        model = auto.from_pretrained(source, dtype=dtype, revision=revision,
                                     trust_remote_code=trust_remote_code)
        model.to(device)
    except Exception as err:
        raise ModelError(_load_hint(shown, err)) from err
    model.eval()
    return model, tokenizer


def _load_hint(shown: str, err: BaseException, what: str = "model") -> str:
    return (
        f"cannot load {what} {shown!r}: {one_line(err, 300)} — check the folder holds config.json, "
        "tokenizer and weights, or use a Hub id already in the local cache (offline)"
    )


def model_max_length(config: Any, tokenizer: Any) -> int | None:
    """The longest input the model takes, from its config, else a sane tokenizer value."""
    cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length",
                 "n_ctx"):
        value = getattr(cfg, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    if isinstance(value, int) and 0 < value < 1_000_000:
        return value
    return None


def local_folder(source: str, is_local: bool, revision: str | None) -> Path | None:
    """The folder whose files a Hub model was loaded from (its snapshot in the HF cache)."""
    if is_local:
        return Path(source)
    try:
        from transformers.utils import cached_file

        found = cached_file(source, "config.json", revision=revision)
        return Path(found).parent if found else None
    except Exception:
        return None


def fingerprint(folder: Path) -> str:
    """A cheap content hash of a model folder for cache keys and run records.

    Small files (configs, tokenizer, chat template) are hashed whole; big ones (weights)
    by name, size, first and last MiB. That tells checkpoints apart (a fine-tune changes
    every tensor) in milliseconds even for multi-GB models, where a full hash would take
    seconds to minutes on every run.
    """
    h = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        if not f.is_file() or f.name.startswith(".") or f.name in _SKIP_FILES:
            continue
        size = f.stat().st_size
        h.update(f"{f.name}\x00{size}\x00".encode())
        with f.open("rb") as fh:
            if size <= 4 * _MIB:
                h.update(fh.read())
            else:
                h.update(fh.read(_MIB))
                fh.seek(size - _MIB)
                h.update(fh.read(_MIB))
    return "sha256:" + h.hexdigest()[:32]


def accepts(fn: Any, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params


@dataclass
class Runtime:
    """What the scoring and generation code needs from a loaded model."""

    model: Any
    tokenizer: Any
    arch: Arch
    device: torch.device
    pad_id: int
    max_length: int | None
    prefix: list[int]
    max_rows: int
    max_tokens: int
    cache_kw: str
    position_ids: bool
    logits_to_keep: bool
    #: Whether the model's KV cache can be cut and shared row-wise (shared contexts and
    #: prefixes, continuous batching); turned off, for good, the first time it cannot.
    kv_reuse: bool = True
    #: Why ``kv_reuse`` went off (what the model's cache is), for the run's notes.
    kv_reuse_why: str = ""
    #: The fallbacks taken since the adapter last handed its notes over
    #: (``ModelAdapter.take_scoring_notes``): one sentence each, without repeats.
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        """Record that a fallback ran (once per distinct sentence until the notes are taken)."""
        if text not in self.notes:
            self.notes.append(text)

    def cache_not_shared(self, why: str) -> None:
        """The model's cache cannot be shared row-wise (``why``: what it is); stop trying."""
        self.kv_reuse, self.kv_reuse_why = False, why

    @classmethod
    def build(cls, model: Any, tokenizer: Any, arch: Arch, device: torch.device,
              max_length: int | None, max_rows: int, max_tokens: int) -> Runtime:
        from llmbench.models.hf.inputs import special_prefix

        pad_id = tokenizer.pad_token_id
        if pad_id is None:
            pad_id = tokenizer.eos_token_id
        if pad_id is None:
            pad_id = 0
        # An explicit max_length wins over the config's: it can cap memory, or extend a
        # model whose positions are relative (T5) or rescaled.
        limit = max_length if max_length is not None else model_max_length(model.config, tokenizer)
        forward = model.forward
        return cls(
            model=model, tokenizer=tokenizer, arch=arch, device=device, pad_id=int(pad_id),
            max_length=limit, prefix=special_prefix(tokenizer) if arch == "causal" else [],
            max_rows=max_rows, max_tokens=max_tokens,
            cache_kw="cache" if accepts(forward, "cache") else "past_key_values",
            position_ids=accepts(forward, "position_ids"),
            logits_to_keep=accepts(forward, "logits_to_keep"),
        )
