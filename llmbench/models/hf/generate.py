"""Text generation with a Hugging Face model, batched and batch-size independent.

On the ``model.generate`` path, requests are grouped by their ``GenerationConfig`` (one
``generate`` call needs one set of decoding settings), sorted longest first and left-padded
(causal) or right-padded (encoder input of seq2seq); llmbench's own loop takes every request
with its own settings. Two pieces make the answers independent of how requests are
batched:

* greedy decoding is plain argmax over the model's logits, with the model's own
  ``generation_config`` sampling/penalty defaults switched off;
* sampling draws each row from its own ``torch.Generator`` seeded from the request's seed
  and prompt (``_RowSampler``), instead of one global RNG whose draws depend on the batch.

A causal LM with a plain growing KV cache, greedy or sampled, runs llmbench's own loop
(``batching.decode``) instead of ``model.generate``: a row that hit EOS, a stop string or its
token limit leaves the batch (its cache rows are dropped) and the next waiting prompt takes
its place (continuous batching), and prompts sharing a long token prefix (few-shot examples,
a system prompt) run that prefix once. ``generate`` keeps feeding finished rows pad tokens
until the slowest row ends; on short answers that is most of the work (SmolLM2, 200
short-answer prompts, batch 16: 4,360 rows computed over 274 decode steps, where the answers
needed 984). ``model.generate`` remains the fallback for seq2seq models, models without
``position_ids`` and caches that cannot be cut row-wise (sliding-window or recurrent layers;
found on the first forward, then logged and remembered in ``Runtime.kv_reuse``).

``on_tokens`` lets a caller (``llmbench serve``'s streaming) see each token as it is produced:
within the block, generation on the calling thread reports ``(item index, token id)`` per row
and step, from ``batching.decode`` (once per token, even if an out-of-memory makes it recompute
a row) and from ``model.generate`` (a streamer). A thread-local
rather than a parameter, so the adapter's and token scorer's signatures stay as they are.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any, cast

import torch
from transformers import GenerationConfig as HFGenerationConfig
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
)
from transformers.generation.streamers import BaseStreamer

from llmbench.models.hf.batching import CacheNotShared, Decoding, Stats, decode, sample
from llmbench.models.hf.inputs import Item, pad, plan_batches, row_seed, with_oom_backoff
from llmbench.models.hf.load import Runtime
from llmbench.models.stop import cut_at_stop
from llmbench.types import GenerationConfig, Response, Usage

Generated = tuple[int, Response]
TokenListener = Callable[[int, int], None]
_listening = threading.local()
log = logging.getLogger(__name__)


@contextmanager
def on_tokens(listener: TokenListener) -> Iterator[None]:
    """Within the block, ``listener(item_index, token_id)`` is called on this thread for each
    token a row generates, as it is generated (a row's tokens end with its EOS, if any; tokens
    after a stop string may follow, the caller cuts at the stop string as ``generate`` does)."""
    previous = getattr(_listening, "listener", None)
    _listening.listener = listener
    try:
        yield
    finally:
        _listening.listener = previous


def _row_listener(batch: Sequence[Item]) -> Callable[[int, int], None] | None:
    """The current listener, addressed by batch row instead of item index."""
    listener: TokenListener | None = getattr(_listening, "listener", None)
    if listener is None:
        return None
    return lambda row, token: listener(batch[row].index, token)


class _RowStreamer(BaseStreamer):
    """``model.generate``'s streamer: passes each step's token of every row still writing to
    ``emit`` (the first ``put`` is the prompt, or the decoder start token, and is skipped)."""

    def __init__(self, emit: Callable[[int, int], None], rows: int, eos: set[int]) -> None:
        self.emit, self.eos = emit, eos
        self.done = [False] * rows
        self.started = False

    def put(self, value: torch.Tensor) -> None:
        if not self.started:
            self.started = True
            return
        for row, token in enumerate(value.reshape(-1).tolist()):
            if not self.done[row]:
                self.emit(row, int(token))
                self.done[row] = token in self.eos

    def end(self) -> None:
        pass


class _StopOnStrings(StoppingCriteria):
    """Marks a row finished once its generated text contains a stop string, so the batch
    ends as soon as every row has hit a stop string or EOS instead of running to
    ``max_new_tokens``. Only a tail of each row is decoded per step, wide enough to hold
    any stop string, which keeps the check O(1) per token."""

    def __init__(self, tokenizer: Any, stops: Sequence[str], start: int, rows: int) -> None:
        self.tokenizer = tokenizer
        self.stops = tuple(s for s in stops if s)
        self.start = start
        self.window = 4 * max((len(s) for s in self.stops), default=1) + 8
        self.stopped_at: list[int | None] = [None] * rows

    def hit(self, tokens: Sequence[int]) -> bool:
        """Whether the tail of one row's generated tokens holds a stop string."""
        tail = self.tokenizer.decode(tokens[-self.window :], skip_special_tokens=True)
        return any(s in tail for s in self.stops)

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        generated = input_ids[:, self.start :]
        for i, at in enumerate(self.stopped_at):
            if at is None and self.hit(generated[i, -self.window :].tolist()):
                self.stopped_at[i] = generated.shape[1]
        done = [at is not None for at in self.stopped_at]
        # transformers' signature says BoolTensor; torch types every tensor it makes as Tensor.
        return cast(torch.BoolTensor, torch.tensor(done, dtype=torch.bool, device=input_ids.device))


class _RowSampler(LogitsProcessor):
    """Temperature / top-p sampling with one RNG per row.

    It replaces the scores by a one-hot of the sampled token, so ``generate`` runs in its
    greedy mode and simply takes that token. A row's draws then depend only on its own
    seed and logits, not on which other requests share the batch.
    """

    def __init__(self, temperature: float, top_p: float, seeds: Sequence[int],
                 device: torch.device) -> None:
        self.temperature = temperature
        self.top_p = top_p
        self.generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        picks = sample(scores, self.generators, self.temperature, self.top_p)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(-1, torch.tensor(picks, device=scores.device).view(-1, 1), 0.0)
        return cast(torch.FloatTensor, out)  # a float tensor; torch types it as plain Tensor


def eos_ids(rt: Runtime) -> set[int]:
    """The ids that end a generation (the checkpoint's generation config, else the tokenizer's)."""
    eos = rt.model.generation_config.eos_token_id
    if eos is None:
        eos = rt.tokenizer.eos_token_id
    if eos is None:
        return set()
    return {int(e) for e in (eos if isinstance(eos, list | tuple) else [eos])}


def _hf_config(rt: Runtime, cfg: GenerationConfig, eos: set[int]) -> HFGenerationConfig:
    """Decoding exactly as requested: whatever sampling, beam or penalty defaults the
    checkpoint's generation_config carries are overridden (they would make 'greedy' mean
    different things for different models)."""
    return HFGenerationConfig(
        max_new_tokens=cfg.max_new_tokens, min_new_tokens=0, min_length=0, do_sample=False,
        num_beams=1, num_return_sequences=1, repetition_penalty=1.0, no_repeat_ngram_size=0,
        encoder_no_repeat_ngram_size=0, pad_token_id=rt.pad_id,
        eos_token_id=sorted(eos) if eos else None, return_dict_in_generate=False,
    )


def generate(rt: Runtime, items: Sequence[Item], configs: dict[int, GenerationConfig]) -> Iterator[Generated]:
    """Yield ``(index, Response)`` with ``text``, ``usage`` and ``latency_s``."""
    ready: dict[int, GenerationConfig] = {}
    for item in items:
        cfg = _within_window(rt, configs[item.index], len(item.ids))
        if item.error:
            yield item.index, Response(error=item.error)
        elif cfg is None:
            yield item.index, Response(error=f"the prompt fills the model's window ({rt.max_length} tokens): no "
                                             "room to generate — shorten the prompt or raise max_length")
        else:
            ready[item.index] = cfg
    todo = [item for item in items if item.index in ready]
    if todo and rt.arch == "causal" and rt.kv_reuse and rt.position_ids:
        answered: set[int] = set()
        try:
            for index, response in _continuous(rt, todo, ready):
                answered.add(index)
                yield index, response
            return
        except CacheNotShared as err:
            rt.cache_not_shared(str(err))  # e.g. sliding-window layers: a cut cache would change answers
            log.info("generation: the model's cache cannot be shared row-wise; transformers' generate runs "
                     "instead (no continuous batching, no shared prefixes)")
            todo = [it for it in todo if it.index not in answered]
    if todo:
        rt.note(_fallback_note(rt))
    groups: dict[GenerationConfig, list[Item]] = defaultdict(list)
    for item in todo:
        groups[ready[item.index]].append(item)
    for cfg, group in groups.items():
        group.sort(key=lambda it: (-it.length, it.index))
        for batch in plan_batches(group, lambda it: (1, it.length), rt.max_rows, rt.max_tokens):
            yield from with_oom_backoff(
                batch, partial(_generate_batch, rt, cfg=cfg),
                lambda it, msg: (it.index, Response(error=msg)),
            )


def _fallback_note(rt: Runtime) -> str:
    """The run's note when transformers' generate answers instead of llmbench's own loop, and why."""
    if rt.arch != "causal":
        why = "an encoder-decoder model has no continuous path"
    elif not rt.position_ids:
        why = "this model's forward takes no position_ids, which rows admitted mid-batch need"
    else:
        why = f"this model's KV cache cannot be shared row-wise ({rt.kv_reuse_why or 'reason not recorded'})"
    return (f"generation: {why}; transformers' generate ran instead — no continuous batching, no shared "
            "prefixes; answers are unaffected")


def _within_window(rt: Runtime, cfg: GenerationConfig, prompt_tokens: int) -> GenerationConfig | None:
    """lm-evaluation-harness's rule: a causal model writes at most ``max_length - prompt``
    new tokens (it has no positions beyond its window; asking for more was an IndexError in
    the embedding, e.g. ``max_new_tokens: 100000000``). Per request, so the batch it lands
    in never changes its answer. ``None``: the prompt leaves no room at all."""
    if rt.arch != "causal" or rt.max_length is None or cfg.max_new_tokens + prompt_tokens <= rt.max_length:
        return cfg
    room = rt.max_length - prompt_tokens
    return cfg.model_copy(update={"max_new_tokens": room}) if room > 0 else None


#: What llmbench's own loop computed in this process (prompt tokens prefilled, prefix tokens run
#: once, decode-step rows): benchmarks and tests read it to see the saving.
STATS = Stats()


@torch.inference_mode()
def _continuous(rt: Runtime, items: list[Item], configs: dict[int, GenerationConfig]) -> Iterator[Generated]:
    """``batching.decode`` over the requests, each with its own decoding setting. A request's
    latency is its share of the wall time between two steps that ended rows (the rows ending
    at once split it), so the latencies add up to the generation time, as with fixed batches."""
    eos = eos_ids(rt)
    settings: dict[int, Decoding] = {}
    hows: dict[GenerationConfig, Decoding] = {}
    for item in items:
        cfg = configs[item.index]
        if cfg not in hows:
            stopper = _StopOnStrings(rt.tokenizer, cfg.stop, 0, 0) if cfg.stop else None
            hows[cfg] = Decoding(max_new=cfg.max_new_tokens, eos=frozenset(eos), greedy=cfg.greedy,
                                 temperature=cfg.temperature, top_p=cfg.top_p, seed=cfg.seed,
                                 stop_hit=stopper.hit if stopper is not None else None)
        settings[item.index] = hows[cfg]
    listener: TokenListener | None = getattr(_listening, "listener", None)
    mark = time.perf_counter()
    for ended in decode(rt, items, settings, listener, STATS):
        now = time.perf_counter()
        latency, mark = (now - mark) / len(ended), now
        for fin in ended:
            yield fin.item.index, (Response(error=fin.error) if fin.error else _row_response(
                rt, fin.item, fin.tokens, eos, configs[fin.item.index].stop, latency, fin.stopped_at))


@torch.inference_mode()
def _generate_batch(rt: Runtime, batch: list[Item], cfg: GenerationConfig) -> list[Generated]:
    start = time.perf_counter()
    causal = rt.arch == "causal"
    ids, mask = pad([it.ids for it in batch], rt.pad_id, left=causal, device=rt.device)
    eos = eos_ids(rt)
    offset = ids.shape[1] if causal else 1  # seq2seq output starts with the decoder start token
    stopper = _StopOnStrings(rt.tokenizer, cfg.stop, offset, len(batch)) if cfg.stop else None
    emit = _row_listener(batch)
    processors = LogitsProcessorList()
    if not cfg.greedy:
        seeds = [row_seed(cfg.seed, it.text) for it in batch]
        processors.append(_RowSampler(cfg.temperature, cfg.top_p, seeds, rt.device))
    out = rt.model.generate(
        input_ids=ids, attention_mask=mask, generation_config=_hf_config(rt, cfg, eos),
        logits_processor=processors, stopping_criteria=StoppingCriteriaList([stopper] if stopper else []),
        streamer=_RowStreamer(emit, len(batch), eos) if emit is not None else None,
    )
    generated = out[:, offset:].tolist()
    latency = (time.perf_counter() - start) / len(batch)
    return [(item.index, _row_response(rt, item, generated[k], eos, cfg.stop, latency,
                                       stopper.stopped_at[k] if stopper is not None else None))
            for k, item in enumerate(batch)]


def _row_response(rt: Runtime, item: Item, row: list[int], eos: set[int], stops: Sequence[str],
                  latency: float, stopped_at: int | None) -> Response:
    """One row's answer: its ids up to the first EOS (kept) or where a stop string ended it,
    the text cut before the stop string."""
    n = len(row)
    for j, tok in enumerate(row):
        if tok in eos:
            n = j + 1
            break
    if stopped_at is not None:
        n = min(n, stopped_at)
    text = rt.tokenizer.decode(row[:n], skip_special_tokens=True)
    final = cut_at_stop(text, stops)
    # "stop" when the model ended on EOS or a stop string ended it; else it ran out of
    # tokens. The ids (EOS kept) let the server score what was generated, not re-encoded text.
    ended = (n > 0 and row[n - 1] in eos) or stopped_at is not None or final != text
    return Response(
        text=final, latency_s=latency,
        usage=Usage(prompt_tokens=len(item.ids), completion_tokens=n),
        finish_reason="stop" if ended else "length", token_ids=tuple(row[:n]),
    )
