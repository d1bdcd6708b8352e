"""Continuous batching with shared prefixes: llmbench's decoding loop for causal models.

One loop (``decode``) runs all the generation requests of a call, each with its own decoding
setting (greedy or sampled, token limit, stop strings):

* **Continuous batching.** A row that ends (EOS, a stop string, ``max_new_tokens``) leaves the
  batch at once (its cache rows are dropped), and once half the rows are free (``refill_at``)
  the next waiting prompts are admitted into the freed rows: their prompts are prefilled in one
  forward and their key/value rows spliced into the batch cache, so every decode step runs at
  least half a batch, and a full one after each admission, until the queue is empty. The rows of a cache differ in
  length; each row is right-aligned, the columns before its first token are masked out, and
  every row carries its own position ids (real tokens counted, as ``inputs.positions`` does for
  a left-padded batch), so a row sees exactly the tokens and positions it would see alone.
  Leading columns that no remaining row uses are trimmed when rows leave.
* **Shared prefixes.** Requests are ordered by token prefix (``score._prefix_groups``, the same
  rule as log-likelihood scoring); a group whose prompts share ``MIN_SHARED_PREFIX`` tokens or
  more runs that prefix once, as one row, and keeps its cache while the group's prompts are
  admitted: each admission expands it to the admitted rows and prefills only the remainders
  (``[prefix | masked padding | remainder]``, positions continuing after the prefix).
* **Per-request randomness.** A sampled row draws from its own ``torch.Generator`` seeded from
  the request's seed and prompt (``row_seed``) with ``_RowSampler``'s rule, so its answer does
  not depend on which requests share its steps, nor on when it was admitted.

Out of memory: the rows in flight go back to the front of the queue and the row cap halves;
a single row that still does not fit ends as an error response (``with_oom_backoff``'s rule).
Tokens already streamed to ``on_tokens`` are not streamed again when a row is recomputed.

Why not transformers' own continuous batching (``generate_batch`` / ``ContinuousBatchingManager``,
evaluated on transformers 5.25): sampling there draws every row from one global RNG
(``torch.multinomial`` over the whole step in ``model_runner``), so a sampled answer depends on
the batch's composition and llmbench's per-request seeds cannot be kept; requests end on EOS or
``max_new_tokens`` only (no stop strings, which most generation tasks need); and it packs each
step's rows into one ragged sequence over a paged cache with its own attention kernels, run in
a background thread: other reductions than the plain forward, and no per-token hook for
``on_tokens`` on the calling thread. This loop uses the model's ordinary forward and
``DynamicCache``, so answers are those of the plain path (tests compare token by token); the
batch's cache layers only grow in place (``kvcache.SlackLayer``) instead of being copied at
every step.

``decode`` raises ``CacheNotShared`` before yielding anything when the model's cache cannot be
cut and spliced row-wise (sliding-window or recurrent layers); the caller then falls back to
``model.generate``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from llmbench.errors import one_line
from llmbench.models.hf.inputs import Item, is_oom, pad, positions, row_seed
from llmbench.models.hf.kvcache import with_room
from llmbench.models.hf.load import Runtime
from llmbench.models.hf.score import (
    MIN_SHARED_PREFIX,
    _cache_of,
    _common_prefix,
    _prefix_groups,
    _select_rows,
    cache_problem,
    reusable_cache,
)

log = logging.getLogger(__name__)


class CacheNotShared(Exception):
    """The model's cache cannot be cut or spliced row-wise: use ``model.generate``. The
    message says what the cache is (``score.cache_problem``), for the run's notes."""


@dataclass(frozen=True)
class Decoding:
    """A request's decoding setting: what ends its row and how its next token is chosen.
    Per row, so requests with different settings (token limits, stop strings, sampling)
    share the batch and the prefixes."""

    max_new: int
    eos: frozenset[int]
    greedy: bool = True
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    stop_hit: Callable[[Sequence[int]], bool] | None = None  # a stop string in a row's tail


@dataclass
class Finished:
    """A row's outcome: its generated ids (EOS kept), where a stop string ended it, or an error."""

    item: Item
    tokens: list[int]
    stopped_at: int | None = None
    error: str | None = None


@dataclass
class Stats:
    """What the loop computed, for the debug log and tests: prompt tokens prefilled (after any
    shared prefix), shared prefixes run and their tokens, decode-step rows, forward passes."""

    prefill_tokens: int = 0
    prefix_runs: int = 0
    prefix_tokens: int = 0
    decode_rows: int = 0
    forwards: int = 0


@dataclass
class _Row:
    item: Item
    how: Decoding
    group: int  # prefix group, -1 when it shares none
    tokens: list[int] = field(default_factory=list)
    generator: torch.Generator | None = None


@dataclass
class _Prefix:
    length: int
    cache: Any = None  # one row; computed on first admission, dropped after the group's last
    waiting: int = 0


def sample(scores: torch.Tensor, generators: Sequence[torch.Generator], temperature: float,
           top_p: float) -> list[int]:
    """Temperature / top-p sampling, one draw per row from that row's generator. A row whose
    probabilities are all zero (NaN logits) takes the argmax, as ``_RowSampler`` always did."""
    probs = (scores.float() / temperature).softmax(-1)
    probs = torch.nan_to_num(probs, nan=0.0)
    if top_p < 1.0:
        sorted_p, order = probs.sort(-1, descending=True)
        # drop a token once the ones before it already cover top_p (the first always stays)
        drop = (sorted_p.cumsum(-1) - sorted_p) > top_p
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p.masked_fill(drop, 0.0))
    return [int(torch.multinomial(probs[i], 1, generator=g)) if probs[i].sum() > 0 else int(probs[i].argmax())
            for i, g in enumerate(generators)]


def order(items: Sequence[Item]) -> tuple[list[Item], list[int]]:
    """The admission order and each item's prefix group (-1: none worth sharing): requests
    sharing long prefixes in token order, else longest first (less padding)."""
    groups = _prefix_groups(list(items))
    if groups is None:
        ordered = sorted(items, key=lambda it: (-len(it.ids), it.index))
        return ordered, [-1] * len(ordered)
    out: list[Item] = []
    tags: list[int] = []
    for g, members in enumerate(groups):
        out += members
        tags += [g if len(members) > 1 else -1] * len(members)
    return out, tags


def _prefixes(ordered: list[Item], tags: list[int]) -> dict[int, _Prefix]:
    """Each group's shared prefix length (every prompt keeps at least one token of its own,
    whose logits give its first answer token); groups sharing too little are dropped."""
    found: dict[int, _Prefix] = {}
    firsts: dict[int, list[int]] = {}
    for item, g in zip(ordered, tags, strict=True):
        if g < 0:
            continue
        if g not in found:
            firsts[g] = item.ids
            found[g] = _Prefix(length=len(item.ids) - 1)
        p = found[g]
        p.length = min(p.length, len(item.ids) - 1, _common_prefix(firsts[g], item.ids))
        p.waiting += 1
    return {g: p for g, p in found.items() if p.length >= MIN_SHARED_PREFIX}


class _Batch:
    """The rows being decoded: a cache whose rows are right-aligned (its layers given room to
    grow in place, ``kvcache.with_room``), their masks and positions."""

    def __init__(self, cache: Any, mask: torch.Tensor, logits: torch.Tensor, rows: list[_Row]) -> None:
        self.cache, self.mask, self.logits, self.rows = with_room(cache), mask, logits, rows
        self.pos = mask.sum(-1)  # the next token's position: the real tokens so far

    def splice(self, other: _Batch) -> None:
        """Append ``other``'s rows (left-padding the narrower cache with masked columns)."""
        width = max(self.mask.shape[1], other.mask.shape[1])
        for mine, theirs in zip(self.cache.layers, other.cache.layers, strict=True):
            mine.keys = torch.cat([_widen(mine.keys, width), _widen(theirs.keys, width)])
            mine.values = torch.cat([_widen(mine.values, width), _widen(theirs.values, width)])
        self.mask = torch.cat([_widen(self.mask, width), _widen(other.mask, width)])
        self.pos = torch.cat([self.pos, other.pos])
        self.logits = torch.cat([self.logits, other.logits])
        self.rows += other.rows

    def keep(self, index: list[int]) -> None:
        """Keep these rows; drop leading columns that no kept row uses any more."""
        if len(index) < len(self.rows):
            at = torch.tensor(index, device=self.mask.device)
            self.cache.batch_select_indices(at)
            self.mask, self.pos, self.logits = self.mask[at], self.pos[at], self.logits[at]
            self.rows = [self.rows[k] for k in index]
        used = self.mask.any(0).nonzero()
        first = int(used[0]) if len(used) else 0
        if first > 0:
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[..., first:, :], layer.values[..., first:, :]
            self.mask = self.mask[:, first:]


def refill_at(cap: int) -> int:
    """Free rows the batch waits for before admitting prompts: half the row cap.

    Every admission is a forward pass of its own (the prefill of the admitted prompts), whose
    cost on a CPU is partly fixed (the weights are read once whatever the rows). Waiting for
    half the batch keeps it at least half full while prompts wait and prefills them together;
    answers are the same either way (each row sees only its own tokens). Measured on SmolLM2,
    64 answers of up to 128 tokens, batch 16, the whole queue in one call, one thread, idle
    machine (``bench/peer_lmeval.py --tasks longgen``, 2026-12-05): 514 forwards and a 68.3 s
    model phase here; admitting each freed row at once, 499 forwards but 72.1 s (a prefill of
    one prompt uses the CPU less well than one of eight; lm-eval's static batches: 512
    forwards). An earlier measurement that blamed per-row
    admission for 640 forwards was the runner's checkpoint pieces: each piece of 16 prompts
    drained alone (fixed: local models now get whole chunks, ``streams_answers``).
    """
    return max(1, cap // 2)


def _widen(t: torch.Tensor, width: int) -> torch.Tensor:
    """Left-pad the sequence dimension (last for a mask, second to last for keys/values)."""
    if t.dim() == 2:
        return F.pad(t, (width - t.shape[1], 0))
    return F.pad(t, (0, 0, width - t.shape[-2], 0))


class _Loop:
    """State of one ``decode`` call (see the module docstring)."""

    def __init__(self, rt: Runtime, items: Sequence[Item], settings: dict[int, Decoding],
                 emit: Callable[[int, int], None] | None) -> None:
        self.rt, self.settings, self.emit = rt, settings, emit
        ordered, tags = order(items)
        self.prefixes = _prefixes(ordered, tags)
        tags = [g if g in self.prefixes else -1 for g in tags]
        self.queue: deque[tuple[Item, int]] = deque(zip(ordered, tags, strict=True))
        self.batch: _Batch | None = None
        self.cap = max(1, rt.max_rows)
        self.streamed: dict[int, int] = {}  # tokens of each item already given to ``emit``
        self.stats = Stats()
        self.keep_kw: dict[str, Any] = {"logits_to_keep": 1} if rt.logits_to_keep else {}

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, pos: torch.Tensor, cache: Any = None) -> Any:
        self.stats.forwards += 1
        extra = {self.rt.cache_kw: cache} if cache is not None else {}
        out = self.rt.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                            **extra, **self.keep_kw)
        new = _cache_of(out)
        if new is None or not reusable_cache(new):
            raise CacheNotShared(cache_problem(new) or "its cache cannot be cut row-wise")
        return out

    def _prefix_cache(self, group: int, item: Item) -> tuple[int, Any] | None:
        prefix = self.prefixes.get(group)
        if prefix is None:
            return None
        if prefix.cache is None:
            ids = torch.tensor([item.ids[: prefix.length]], device=self.rt.device)
            ones = torch.ones_like(ids)
            prefix.cache = _cache_of(self._forward(ids, ones, positions(ones)))
            self.stats.prefix_runs += 1
            self.stats.prefix_tokens += prefix.length
        return prefix.length, prefix.cache

    def _row(self, item: Item, group: int) -> _Row:
        how = self.settings[item.index]
        generator = None if how.greedy else torch.Generator(device=self.rt.device).manual_seed(
            row_seed(how.seed, item.text))
        return _Row(item, how, group, generator=generator)

    def _prefill(self, admitted: list[tuple[Item, int]]) -> _Batch:
        """Prefill prompts of one prefix group (or of none): a ``_Batch`` of the new rows."""
        rt, group = self.rt, admitted[0][1]
        shared = self._prefix_cache(group, admitted[0][0])
        rows = [self._row(item, g) for item, g in admitted]
        if shared is None:
            ids, mask = pad([it.ids for it, _ in admitted], rt.pad_id, left=True, device=rt.device)
            out = self._forward(ids, mask, positions(mask))
            self.stats.prefill_tokens += int(mask.sum())
            return _Batch(_cache_of(out), mask, out.logits[:, -1], rows)
        length, cache = shared
        n = len(admitted)
        rest, rest_mask = pad([it.ids[length:] for it, _ in admitted], rt.pad_id, left=True, device=rt.device)
        mask = torch.cat([torch.ones((n, length), dtype=rest_mask.dtype, device=rt.device), rest_mask], -1)
        offset = torch.full((n,), length, dtype=torch.long, device=rt.device)
        expanded = _select_rows(cache, torch.zeros(n, dtype=torch.long, device=rt.device))
        out = self._forward(rest, mask, positions(rest_mask, offset), expanded)
        self.stats.prefill_tokens += int(rest_mask.sum())
        return _Batch(_cache_of(out), mask, out.logits[:, -1], rows)

    def _admit(self) -> None:
        """Fill the free rows from the queue, within the row cap and ``max_tokens`` (rows ×
        widest prompt-plus-answer); one prefill per prefix group among the admitted. On an
        error the prompts not yet in the batch go back to the front of the queue."""
        batch = self.batch
        active = len(batch.rows) if batch is not None else 0
        if batch is not None and self.cap - active < min(refill_at(self.cap), len(self.queue)):
            return  # too few free rows yet: one prefill forward for several prompts is cheaper
        # The widest the cache can grow to: its columns now (rows are right-aligned) plus the
        # most tokens a row may still add (rows that have written part of their answer add
        # only the rest: counting their whole ``max_new`` again refused rows a batch had room for)
        base = int(batch.mask.shape[1]) if batch is not None else 0
        rest = max((r.how.max_new - len(r.tokens) for r in batch.rows), default=0) if batch is not None else 0
        taken: list[tuple[Item, int]] = []
        while self.queue and active + len(taken) < self.cap:
            item = self.queue[0][0]
            wider = (max(base, len(item.ids)), max(rest, self.settings[item.index].max_new))
            if (active or taken) and (active + len(taken) + 1) * sum(wider) > self.rt.max_tokens:
                break
            taken.append(self.queue.popleft())
            base, rest = wider
        start = 0
        try:
            for k in range(1, len(taken) + 1):
                if k == len(taken) or taken[k][1] != taken[start][1]:
                    new = self._prefill(taken[start:k])
                    if self.batch is None:
                        self.batch = new
                    else:
                        self.batch.splice(new)
                    self._release(taken[start:k])
                    start = k
        except BaseException:
            self.queue.extendleft(reversed(taken[start:]))
            raise

    def _release(self, admitted: list[tuple[Item, int]]) -> None:
        prefix = self.prefixes.get(admitted[0][1])
        if prefix is not None:
            prefix.waiting -= len(admitted)
            if prefix.waiting <= 0:
                prefix.cache = None

    @staticmethod
    def _pick(batch: _Batch) -> list[int]:
        """Greedy rows take the argmax of the float32 logits (as ``generate`` does); sampled
        rows draw from their own generator."""
        picks: list[int] = batch.logits.float().argmax(-1).tolist()
        for k, row in enumerate(batch.rows):
            if row.generator is not None:
                picks[k] = sample(batch.logits[k : k + 1], [row.generator], row.how.temperature, row.how.top_p)[0]
        return picks

    def _advance(self, batch: _Batch) -> tuple[list[Finished], list[int]]:
        """Give every row its next token; the rows that ended, and the indices of those that go on."""
        done: list[Finished] = []
        going: list[int] = []
        for k, (row, tok) in enumerate(zip(batch.rows, self._pick(batch), strict=True)):
            row.tokens.append(tok)
            n = len(row.tokens)
            if self.emit is not None and n > self.streamed.get(row.item.index, 0):
                self.streamed[row.item.index] = n
                self.emit(row.item.index, tok)
            how = row.how
            if tok in how.eos:
                done.append(Finished(row.item, row.tokens))
            elif how.stop_hit is not None and how.stop_hit(row.tokens):
                done.append(Finished(row.item, row.tokens, stopped_at=n))
            elif n >= how.max_new:
                done.append(Finished(row.item, row.tokens))
            else:
                going.append(k)
        return done, going

    def _step(self, batch: _Batch) -> None:
        """One decode step over every row of the batch (its tokens are the rows' last)."""
        ids = torch.tensor([[r.tokens[-1]] for r in batch.rows], device=self.rt.device)
        batch.mask = torch.cat([batch.mask, batch.mask.new_ones((len(batch.rows), 1))], dim=-1)
        out = self._forward(ids, batch.mask, batch.pos[:, None], batch.cache)
        self.stats.decode_rows += len(batch.rows)
        batch.pos = batch.pos + 1
        batch.logits = out.logits[:, -1]

    def run(self) -> Iterator[list[Finished]]:
        while self.queue or self.batch is not None:
            try:
                self._admit()
                batch = self.batch
                assert batch is not None
                done, going = self._advance(batch)
                if done:
                    yield done
                if not going:
                    self.batch = None
                    continue
                batch.keep(going)
                self._step(batch)
            except Exception as err:  # only OOM is handled here; anything else is re-raised
                if not is_oom(err):
                    raise
                failed = self._back_off(f"out of memory: {one_line(err, 300)}")
                if failed is not None:
                    yield [failed]

    def _back_off(self, message: str) -> Finished | None:
        """Requeue the rows in flight (recomputed from scratch: same answers, seeds restart)
        with half the row cap; a lone row that does not fit is an error."""
        rows = self.batch.rows if self.batch is not None else []
        self.batch = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if len(rows) <= 1 and self.cap == 1:
            if rows:
                return Finished(rows[0].item, [], error=message)
            item, _ = self.queue.popleft()  # the prefill of this one prompt did not fit
            return Finished(item, [], error=message)
        self.cap = max(1, min(self.cap, len(rows) or self.cap) // 2)
        for prefix in self.prefixes.values():
            prefix.cache = None
        for row in reversed(rows):
            self.queue.appendleft((row.item, row.group))
            if row.group in self.prefixes:
                self.prefixes[row.group].waiting += 1
        return None


def decode(rt: Runtime, items: Sequence[Item], settings: dict[int, Decoding],
           emit: Callable[[int, int], None] | None = None,
           stats: Stats | None = None) -> Iterator[list[Finished]]:
    """Generate for ``items`` (prompts already within the model's window; ``settings`` by item
    index), yielding the rows that end at each step; ``emit(item index, token)`` sees every
    token once. Raises ``CacheNotShared`` (before any row ends) where the model's cache
    cannot be shared."""
    loop = _Loop(rt, items, settings, emit)
    try:
        yield from loop.run()
    finally:
        if stats is not None:
            for name in ("prefill_tokens", "prefix_runs", "prefix_tokens", "decode_rows", "forwards"):
                setattr(stats, name, getattr(stats, name) + getattr(loop.stats, name))
        log.debug("decode: %d prompts, %d prompt tokens prefilled, %d prefix tokens run once, "
                  "%d decode-step rows, %d forwards", len(items), loop.stats.prefill_tokens,
                  loop.stats.prefix_tokens, loop.stats.decode_rows, loop.stats.forwards)
