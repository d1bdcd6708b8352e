"""Local Hugging Face transformers models (causal LM, seq2seq, sequence classifier).

``HFAdapter`` loads a checkpoint folder, a Hub id or a GGUF file and answers the three
request kinds in batches:

* ``classify`` (classifier models): log-softmax of the head, keyed by ``config.id2label``;
* ``loglikelihood`` (causal / seq2seq): log P(continuation | prompt) summed over tokens and
  whether the continuation is the greedy one, tokenised like lm-evaluation-harness; the
  choices of a sample share one forward over the context (see ``hf.score``);
* ``generate`` (causal / seq2seq): greedy or seeded sampling with stop strings (see
  ``hf.generate``).

Requests are tokenised once, sorted longest first and padded per batch; batches are capped
by padded tokens (``max_batch_tokens``) and rows (``max_batch_size``). The batch size never
changes an answer beyond float noise, which the tests check at batch sizes 1, 8 and 32.

Chat prompts (a tuple of ``ChatMessage``) use the tokenizer's chat template with the
generation prompt; without a template they become ``role: content`` lines ending in
``assistant:``. For loglikelihood the continuation is appended after the rendered prompt.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, Field

from llmbench.models.base import ModelAdapter, ModelError, TokenScorer, answer_options
from llmbench.models.hf.cpu_linear import CpuLinear, pack_linears
from llmbench.models.hf.inputs import (
    BatchEncoder,
    Item,
    causal_pair_ids,
    causal_pair_texts,
    encode,
    render_prompt,
    seq2seq_pair_ids,
    truncate_left,
)
from llmbench.models.hf.library import quiet_transformers
from llmbench.models.hf.load import (
    Arch,
    Runtime,
    device_name,
    dtype_name,
    fingerprint,
    load_model,
    local_folder,
    model_arch,
    resolve_source,
)
from llmbench.types import GenerationConfig, Request, RequestKind, Response

if TYPE_CHECKING:
    import torch

_KINDS: dict[Arch, frozenset[RequestKind]] = {
    "causal": frozenset({"loglikelihood", "generate", "loglikelihood_rolling"}),
    "seq2seq": frozenset({"loglikelihood", "generate"}),
    "classifier": frozenset({"classify"}),
    "masked": frozenset({"loglikelihood_rolling"}),  # pseudo-log-likelihood (see hf.rolling)
}


# How each kind is answered; the runner stores it with every result.
_METHODS: dict[RequestKind, str] = {"classify": "head", "loglikelihood": "sum-token-logprobs",
                                    "generate": "transformers-generate",
                                    "loglikelihood_rolling": "rolling-windows"}


class HFConfig(BaseModel, frozen=True, extra="forbid"):
    """How to load and batch a Hugging Face model."""

    path: str = Field(description="local folder, .gguf file or Hub id")
    revision: str | None = None
    gguf_file: str | None = Field(
        default=None, description="GGUF file in `path` (folder or Hub repo); de-quantised once "
        "and cached, see llmbench.models.hf.gguf")
    arch: Literal["auto", "causal", "seq2seq", "classifier", "masked"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    trust_remote_code: bool = False
    max_batch_tokens: int = Field(default=8192, ge=1, description="cap on rows × padded length")
    max_batch_size: int = Field(default=64, ge=1)
    max_length: int | None = Field(
        default=None, ge=1, description="longest input; longer prompts lose their start. "
        "Default: the model's own limit")
    cpu_linear: CpuLinear = Field(
        default="auto", description="float32 on CPU: linear layers through oneDNN with weights packed "
        "once (onednn; auto: when a second copy of them takes at most 2 GiB) or torch.nn.Linear "
        "(torch); see llmbench.models.hf.cpu_linear")

    #: How each option bears on the answers (see ``answer_options``): recorded by identity()
    #: in resolved form, or unable to change an answer (batching changes float noise only,
    #: checked at batch sizes 1, 8 and 32; the CPU's linear kernel likewise). Every other option — max_length,
    #: trust_remote_code, any new one — enters the identity and the cache key.
    IN_IDENTITY: ClassVar[frozenset[str]] = frozenset(
        {"path", "revision", "gguf_file", "arch", "dtype", "device"})
    NEUTRAL: ClassVar[frozenset[str]] = frozenset({"max_batch_tokens", "max_batch_size", "cpu_linear"})


class HFAdapter(ModelAdapter):
    """A ``ModelAdapter`` over a local transformers model."""

    #: ``run`` yields batch by batch (and generation row by row as each ends), so it takes
    #: whole chunks: a long generation keeps its batch full across what used to be
    #: checkpoint pieces (a piece of 16 long answers drained alone, at batch 16 every
    #: piece took as many steps as its longest answer).
    streams_answers = True

    def __init__(self, config: HFConfig) -> None:
        self.config = config
        # Names, not torch objects: a rerun answered from the cache never imports torch.
        self.device_name = device_name(config.device)
        self.dtype_name = dtype_name(config.dtype, self.device_name)
        source, is_local = resolve_source(config.path, config.revision, config.gguf_file)
        revision = None if is_local else config.revision
        arch: Arch = (model_arch(source, revision, config.trust_remote_code, config.path, is_local)
                      if config.arch == "auto" else config.arch)
        # The weights load on first use (``prepare``/``run``): a rerun answered entirely from
        # the response cache never loads them. The path and config are checked here, up front.
        self._load_args = (source, revision, arch)
        self._rt: Runtime | None = None
        self._closed = False
        self.arch = arch
        self.name = f"hf:{_display_name(config, is_local)}"
        self.supports: frozenset[RequestKind] = _KINDS[arch]
        self._folder = local_folder(source, is_local, revision)
        self._is_local = is_local
        self._weights: str | None = None

    @property
    def device(self) -> torch.device:
        import torch

        return torch.device(self.device_name)

    @property
    def dtype(self) -> torch.dtype:
        import torch

        return getattr(torch, self.dtype_name)

    def identity(self) -> dict[str, Any]:
        """Path, revision, a content hash of the files (memoised; milliseconds even for
        large checkpoints), arch, dtype, device and every other option that is not declared
        neutral (``HFConfig.NEUTRAL``), e.g. ``max_length``: everything that changes the
        answers, so the response cache keys on all of it."""
        if self._weights is None:
            self._weights = fingerprint(self._folder) if self._folder is not None else "unknown"
        ident: dict[str, Any] = {
            "backend": "hf", "path": self.config.path, "revision": self.config.revision,
            "weights": self._weights, "arch": self.arch, "dtype": self.dtype_name,
            "device": self.device_name.split(":")[0],
        }
        if self.config.gguf_file is not None:
            ident["gguf_file"] = self.config.gguf_file
        options = answer_options(self.config, in_identity=HFConfig.IN_IDENTITY, neutral=HFConfig.NEUTRAL)
        if options:  # absent at the defaults: identities stored before stay equal
            ident["options"] = options
        return ident

    def describe(self) -> dict[str, Any]:
        """Architecture class, dtype, quantisation and what a fine-tuned folder was tuned from,
        read from the folder now (``config.json``, ``llmbench_finetune.json``, the model card's
        ``base_model``), so a report never has to open the folder again."""
        info: dict[str, Any] = {"arch": self.arch, "dtype": self.dtype_name}
        if self.config.gguf_file is not None or self.config.path.endswith(".gguf"):
            info["quantization"] = f"gguf:{Path(self.config.gguf_file or self.config.path).name}"
        if self._folder is not None:
            info |= _folder_facts(self._folder)
        return info

    def cache_identity(self) -> dict[str, Any]:
        """``identity`` without the folder path of a local model: its content hash already
        says what it is, and the path only says where this checkout or venv put it. So the
        same checkpoint answers from the cache from another clone, venv or copied folder."""
        ident = self.identity()
        if self._is_local and ident["weights"] != "unknown":
            ident.pop("path")
        return ident

    def run(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        """Yield ``(index into requests, Response)`` batch by batch, longest requests first."""
        rt = self._runtime()
        unsupported = sorted({r.kind for r in requests} - self.supports)
        if unsupported:
            raise ModelError(
                f"{self.name} ({self.arch}) cannot serve {', '.join(unsupported)} requests — "
                f"it supports {', '.join(sorted(self.supports))}; pick a matching model"
            )
        return self._run(rt, requests)

    def _run(self, rt: Runtime, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        from llmbench.models.hf import generate, score

        by_kind: dict[RequestKind, list[Item]] = {"classify": [], "loglikelihood": [],
                                                  "generate": [], "loglikelihood_rolling": []}
        configs: dict[int, GenerationConfig] = {}
        rendered = [render_prompt(rt.tokenizer, req.prompt) for req in requests]
        tok_rt = self._with_batch_encoder(rt, requests, rendered)
        for i, req in enumerate(requests):
            by_kind[req.kind].append(self._tokenise(tok_rt, i, req, rendered[i]))
            configs[i] = req.config
        if by_kind["classify"]:
            yield from score.classify(rt, by_kind["classify"])
        if by_kind["loglikelihood"]:
            yield from score.loglikelihood(rt, by_kind["loglikelihood"])
        if by_kind["generate"]:
            yield from generate.generate(rt, by_kind["generate"], configs)
        if by_kind["loglikelihood_rolling"]:
            from llmbench.models.hf import rolling

            docs = by_kind["loglikelihood_rolling"]
            yield from rolling.run(rt, docs, [requests[it.index].stride for it in docs])

    @staticmethod
    def _with_batch_encoder(rt: Runtime, requests: Sequence[Request],
                            rendered: Sequence[tuple[str, bool]]) -> Runtime:
        """``rt`` whose tokenizer has every text a causal model will encode without special
        tokens already encoded, in one batched call (see ``BatchEncoder``)."""
        if rt.arch != "causal":
            return rt
        texts: list[str] = []
        for req, (text, _) in zip(requests, rendered, strict=True):
            if req.kind == "generate":
                texts.append(text)
            elif req.kind == "loglikelihood" and req.continuations:
                ctx_text, moved = causal_pair_texts(text, req.continuations)
                texts.append(ctx_text)
                texts.extend(ctx_text + cont for cont in moved)
        return replace(rt, tokenizer=BatchEncoder(rt.tokenizer, texts)) if texts else rt

    def _tokenise(self, rt: Runtime, index: int, req: Request, rendered: tuple[str, bool]) -> Item:
        """Turn one request into token ids once, truncating from the left to fit."""
        tok = rt.tokenizer
        text, chat = rendered
        limit = rt.max_length
        if req.kind == "classify":
            enc = tok(text, truncation=limit is not None, max_length=limit)
            ids = list(enc["input_ids"])
            return Item(index, ids, length=len(ids), text=text)
        if req.kind == "loglikelihood":
            return self._tokenise_pair(rt, index, req, text, chat)
        if req.kind == "loglikelihood_rolling":
            # the document's own tokens; the windows add their prefix (see hf.rolling)
            ids = encode(tok, text, special=False)
            return Item(index, ids, length=len(ids), text=text)
        if rt.arch == "causal":
            ids = encode(tok, text, special=False) if chat else rt.prefix + encode(
                tok, text, special=False)
            budget = max(1, limit - req.config.max_new_tokens) if limit else 0
            ids = truncate_left(ids, budget, keep_prefix=0 if chat else len(rt.prefix))
            if not ids:  # no BOS to start from (GPT-2, SmolLM2): nothing to condition the first token on
                return Item(index, ids, error="the prompt encodes to no tokens and the tokenizer adds no BOS — "
                                              "a causal model needs at least one token to continue")
        else:
            ids = truncate_left(encode(tok, text, special=True), limit or 0)
        return Item(index, ids, length=len(ids) + req.config.max_new_tokens, text=text)

    def _tokenise_pair(self, rt: Runtime, index: int, req: Request, text: str,
                       chat: bool) -> Item:
        conts = list(req.continuations or ())
        if not conts:
            return Item(index, [], error="loglikelihood request has no continuations")
        if rt.arch == "causal":
            ctx, cont_ids = causal_pair_ids(rt.tokenizer, text, conts, chat=chat,
                                            prefix=rt.prefix)
        else:
            ctx, cont_ids = seq2seq_pair_ids(rt.tokenizer, text, conts)
        longest = max(len(c) for c in cont_ids)
        if any(not c for c in cont_ids):
            return Item(index, ctx, error="a continuation encodes to no tokens")
        limit = rt.max_length
        if limit is not None:
            # causal: context + continuation minus the last token is what the model sees
            budget = limit - longest + 1 if rt.arch == "causal" else limit
            if budget < 1:
                return Item(index, ctx, error=f"continuation of {longest} tokens does not fit "
                                              f"the model's {limit}-token window")
            ctx = truncate_left(ctx, budget, keep_prefix=0 if chat else len(rt.prefix))
        return Item(index, ctx, rows=len(cont_ids), length=len(ctx) + longest, conts=cont_ids,
                    text=text)

    def scoring_method(self, kind: RequestKind) -> str:
        if kind == "loglikelihood_rolling" and self.arch == "masked":
            return "pseudo-loglikelihood"
        return _METHODS[kind]

    def adapt_request(self, request: Request) -> Request:
        """A classifier head reads the sample's raw input, not the task's prompt template."""
        if request.kind == "classify" and request.input is not None:
            return request.model_copy(update={"prompt": request.input})
        return request

    def take_scoring_notes(self) -> list[str]:
        """The fallbacks the scoring and generation code took since the last call (a cache
        that cannot be shared row-wise, a model without ``position_ids``, a seq2seq model's
        generation), as ``Runtime.note`` recorded them. None before the model is loaded."""
        if self._rt is None:
            return []
        notes = list(self._rt.notes)
        self._rt.notes.clear()
        return notes

    @property
    def runtime(self) -> Runtime:
        """The loaded model and tokenizer (loads them on first use)."""
        return self._runtime()

    def token_scorer(self) -> TokenScorer | None:
        """Per-token log-probabilities for the server; loads the model (causal LMs only)."""
        from llmbench.models.hf.tokens import HFTokenScorer

        return HFTokenScorer.from_runtime(self._runtime())

    def prepare(self) -> None:
        """Load the model now; the runner calls this before a run that has uncached requests,
        so a broken checkpoint fails before anything is stored."""
        self._runtime()

    def _runtime(self) -> Runtime:
        if self._closed:
            raise ModelError(f"{self.name} was closed — create a new adapter to run it again")
        if self._rt is None:
            self._rt = self._load()
        return self._rt

    def _load(self) -> Runtime:
        quiet_transformers()
        source, revision, arch = self._load_args
        config = self.config
        model, tokenizer = load_model(source, revision, config.trust_remote_code, arch,
                                      self.dtype, self.device, config.path)
        pack_linears(model, config.cpu_linear)
        if arch == "classifier":
            tokenizer.truncation_side = "left"  # same rule as the LMs: keep the prompt's end
        rt = Runtime.build(model, tokenizer, arch, self.device, config.max_length, config.max_batch_size,
                           config.max_batch_tokens)
        if arch == "classifier" and model.config.pad_token_id is None:
            # Causal classifiers pool the last non-pad token and need to know the pad id.
            model.config.pad_token_id = rt.pad_id
        return rt

    def close(self) -> None:
        """Drop the model and free accelerator memory; the adapter cannot run afterwards."""
        self._closed = True
        if self._rt is None:
            return
        self._rt = None
        if self.device_name.startswith("cuda"):  # on CPU, dropping the references frees the weights
            import gc

            import torch

            gc.collect()  # cycles may still hold CUDA tensors; then give the blocks back
            torch.cuda.empty_cache()


_BASE_KEYS = ("base_model", "finetuned_from", "base")


def _base_of(data: Any) -> str | None:
    """The base-model name of a fine-tune record or model-card front matter, if any."""
    if not isinstance(data, dict):
        return None
    for key in _BASE_KEYS:
        value = data.get(key)
        value = value[0] if isinstance(value, list) and value else value
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _folder_facts(folder: Path) -> dict[str, Any]:
    """``model_class``, ``quantization``, ``finetuned_from``/``finetuned_on`` of a model folder
    (each only when the folder says so; unreadable files are simply not facts)."""
    import json

    import yaml

    def read_json(name: str) -> Any:
        try:
            return json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    out: dict[str, Any] = {}
    config = read_json("config.json")
    if isinstance(config, dict):
        if isinstance(config.get("architectures"), list) and config["architectures"]:
            out["model_class"] = str(config["architectures"][0])
        quant = config.get("quantization_config")
        if isinstance(quant, dict) and quant.get("quant_method"):
            bits = quant.get("bits") or ("4" if quant.get("load_in_4bit")
                                         else "8" if quant.get("load_in_8bit") else None)
            out["quantization"] = f"{quant['quant_method']}" + (f" {bits}-bit" if bits else "")
    for name in ("llmbench_finetune.json", "finetune.json", "training_config.json"):
        record = read_json(name)
        if _base_of(record):
            out["finetuned_from"] = _base_of(record)
            if isinstance(record.get("task"), str):
                out["finetuned_on"] = record["task"]
            return out
    try:
        card = (folder / "README.md").read_text(encoding="utf-8", errors="replace")
        end = card.find("\n---", 3) if card.startswith("---") else -1
        front = yaml.safe_load(card[3:end]) if end > 0 else None
    except (OSError, yaml.YAMLError):
        front = None
    if _base_of(front):
        out["finetuned_from"] = _base_of(front)
    return out


def _display_name(config: HFConfig, is_local: bool) -> str:
    if config.gguf_file is not None:
        return Path(config.gguf_file).stem
    if config.path.endswith(".gguf"):
        return Path(config.path).stem
    if is_local:
        return Path(config.path).expanduser().resolve().name
    return config.path
