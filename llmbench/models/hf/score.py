"""Scoring requests with a Hugging Face model: loglikelihood and classification.

Causal loglikelihood runs in two passes so that the choices of a sample share their
context. Pass 1 runs every context of a batch once (left-padded) and keeps its key/value
cache plus the log-probabilities of the next token. Pass 2 copies each context's cache rows
once per choice and runs only the continuation tokens on top. For a 4-way multiple-choice
question with a long context that is roughly 4× less work than lm-evaluation-harness, which
runs context+continuation for every choice. Models whose cache cannot be reused this way
(sliding-window or linear-attention layers, no ``position_ids`` input, no cache at all) fall
back to one full forward per choice.

Requests that share a token prefix (few-shot examples, a system prompt, a passage asked about
several times) share more than their choices: when the requests of a task share long prefixes,
they are ordered so that those sharing one are batched together, and pass 1 runs a batch's
common prefix once, expands its cache to the batch's rows and runs only each context's
remainder on top. Every log-likelihood stays within float tolerance of the full forward (a test
compares them); a single-prompt task, whose requests share nothing, keeps the longest-first
order and the plain pass 1.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator, Sequence
from itertools import pairwise
from typing import Any

import torch

from llmbench.models.hf.inputs import Item, pad, plan_batches, positions, with_oom_backoff
from llmbench.models.hf.load import Runtime
from llmbench.types import Response, Usage

Scored = tuple[int, Response]

# A batch's common prefix is run once when it is at least this many tokens (below that, a
# separate forward costs more than it saves).
MIN_SHARED_PREFIX = 16
# Requests are reordered by shared prefix when neighbours in token order share at least this
# fraction of all context tokens; otherwise longest-first (less padding) wins.
MIN_SHARED_FRACTION = 0.25


def _error(item: Item, message: str) -> Scored:
    return item.index, Response(error=message)


def _sorted(items: Sequence[Item]) -> list[Item]:
    """Longest first: the first batch is the biggest, so memory trouble shows up at once,
    and rows of similar length share a batch, which keeps padding low."""
    return sorted(items, key=lambda it: (-it.length, it.index))


def _token_scores(logits: torch.Tensor, targets: torch.Tensor,
                  mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row sum of target log-probs and whether every target was the argmax.

    The log-softmax and the sum run in float64: in float32 their rounding alone moves a
    100-nat total by ~1e-5 depending on padding, i.e. on the batch size. Rows go in slices
    so the float64 copy stays small even for 100k+ vocabularies.
    """
    step = max(1, (1 << 25) // max(1, logits.shape[1] * logits.shape[2]))
    sums, greedy = [], []
    for lo in range(0, logits.shape[0], step):
        part, tgt, m = logits[lo : lo + step], targets[lo : lo + step], mask[lo : lo + step]
        logprobs = part.double().log_softmax(-1)
        picked = logprobs.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
        sums.append((picked * m).sum(-1))
        greedy.append(((part.argmax(-1) == tgt) | (m == 0)).all(-1))
    return torch.cat(sums), torch.cat(greedy)


def _response(item: Item, logprobs: list[float], greedy: list[bool], latency: float) -> Response:
    n_cont = sum(len(c) for c in item.conts)
    return Response(
        logprobs=tuple(logprobs), greedy_match=tuple(greedy), latency_s=latency,
        usage=_usage(len(item.ids) + n_cont, 0),
    )


def _usage(prompt: int, completion: int) -> Usage:
    return Usage(prompt_tokens=prompt, completion_tokens=completion)


def loglikelihood(rt: Runtime, items: Sequence[Item]) -> Iterator[Scored]:
    """Yield ``(index, Response)`` with ``logprobs`` and ``greedy_match`` per continuation."""
    ready = []
    for item in items:
        if item.error:
            yield _error(item, item.error)
        elif not item.conts:
            yield item.index, Response(logprobs=(), greedy_match=(), usage=_usage(len(item.ids), 0))
        else:
            ready.append(item)
    # A batch is planned by its contexts: that is what the first forward runs (causal: the
    # shared-context pass; seq2seq: the encoder). The per-choice rows that follow go in
    # chunks within the same caps (``_chunks``), so counting every choice here would only
    # halve the contexts per forward of a 2-way task without bounding anything further.
    groups = _prefix_groups(ready) if rt.arch == "causal" and rt.kv_reuse else None
    batches = [batch for group in (groups or [_sorted(ready)])
               for batch in plan_batches(group, lambda it: (1, it.length), rt.max_rows, rt.max_tokens)]
    scorer = _seq2seq_batch if rt.arch == "seq2seq" else _causal_batch
    for batch in batches:
        yield from with_oom_backoff(batch, lambda b: scorer(rt, b), _error)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _prefix_groups(items: list[Item]) -> list[list[Item]] | None:
    """Items in token order, cut into runs whose neighbours share ``MIN_SHARED_PREFIX`` tokens
    or more and no sharp drop, when that sharing is worth it (else None: keep longest-first).
    Each run is batched on its own, so a batch never straddles two few-shot headers."""
    if len(items) < 2:
        return None
    ordered = sorted(items, key=lambda it: it.ids)
    shared = [_common_prefix(a.ids, b.ids) for a, b in pairwise(ordered)]
    if sum(shared) < MIN_SHARED_FRACTION * sum(len(it.ids) for it in items):
        return None
    groups: list[list[Item]] = [[ordered[0]]]
    for i, item in enumerate(ordered[1:]):
        # A cut where the shared prefix drops to less than half its neighbours': the boundary
        # between two few-shot headers that begin alike ("...questions about X").
        around = max(shared[max(i - 1, 0)], shared[min(i + 1, len(shared) - 1)])
        if shared[i] >= MIN_SHARED_PREFIX and 2 * shared[i] >= around:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def _rows(batch: Sequence[Item]) -> list[tuple[int, list[int]]]:
    """(item position in batch, continuation ids) for every choice in the batch."""
    return [(b, cont) for b, item in enumerate(batch) for cont in item.conts]


def _chunks(rt: Runtime, rows: list[tuple[int, list[int]]], base: int) -> list[list[int]]:
    """Split choice rows so each forward stays within the batch caps (only matters when a
    single sample has more choices than a batch may hold)."""
    order = list(range(len(rows)))
    return plan_batches(order, lambda r: (1, base + len(rows[r][1])), rt.max_rows, rt.max_tokens)


def _collect(batch: Sequence[Item], rows: list[tuple[int, list[int]]], lp: list[float],
             greedy: list[bool], elapsed: float) -> list[Scored]:
    out: list[Scored] = []
    r = 0
    latency = elapsed / len(batch)
    for item in batch:
        n = len(item.conts)
        out.append((item.index, _response(item, lp[r : r + n], greedy[r : r + n], latency)))
        r += n
    assert r == len(rows)
    return out


@torch.inference_mode()
def _causal_batch(rt: Runtime, batch: list[Item]) -> list[Scored]:
    start = time.perf_counter()
    rows = _rows(batch)
    if rt.kv_reuse and rt.position_ids:
        scored = _causal_shared_context(rt, batch, rows)
        if scored is not None:
            return _collect(batch, rows, *scored, time.perf_counter() - start)
        # this model's cache cannot be shared (``_context_pass`` recorded why); stop trying
    rt.note(_fallback_note(rt))
    lp, greedy = _causal_full(rt, batch, rows)
    return _collect(batch, rows, lp, greedy, time.perf_counter() - start)


def _fallback_note(rt: Runtime) -> str:
    """The run's note when full forwards score a causal model's choices, and why."""
    why = ("this model's forward takes no position_ids, which scoring on a shared context needs"
           if not rt.position_ids else
           f"this model's KV cache cannot be shared row-wise ({rt.kv_reuse_why or 'reason not recorded'})")
    return (f"loglikelihood: {why}; every choice ran as a full forward of context and continuation instead "
            "— no shared contexts, no shared prefixes; log-likelihoods are unaffected (within float tolerance)")


def cache_problem(cache: Any) -> str | None:
    """Why ``cache`` cannot be copied row-wise and extended with explicit positions (None: it
    can). Only plain, growing per-layer caches can; sliding-window or recurrent layers would
    silently change answers."""
    from transformers.cache_utils import DynamicCache, DynamicLayer

    from llmbench.models.hf.kvcache import SlackLayer  # the decode loop's own, a DynamicLayer with room

    if cache is None:
        return "the model returns no cache"
    if not isinstance(cache, DynamicCache):
        return f"its cache is a {type(cache).__name__}, not a DynamicCache"
    odd = sorted({type(x).__name__ for x in cache.layers if type(x) not in (DynamicLayer, SlackLayer)})
    return f"its cache has {', '.join(odd)} layers" if odd else None


def reusable_cache(cache: Any) -> bool:
    """Whether ``cache`` can be copied row-wise and extended (see ``cache_problem``)."""
    return cache_problem(cache) is None


def _shareable(rt: Runtime, cache: Any) -> bool:
    """``reusable_cache``; when it is not, the runtime stops reusing caches and records why."""
    problem = cache_problem(cache)
    if problem is not None:
        rt.cache_not_shared(problem)
    return problem is None


def _select_rows(cache: Any, index: torch.Tensor) -> Any:
    """A new cache holding ``cache``'s rows ``index`` (rows may repeat). Shallow copies are
    enough: row selection and the later ``update`` both build new tensors."""
    new = copy.copy(cache)
    new.layers = [copy.copy(layer) for layer in cache.layers]
    new.batch_select_indices(index)
    return new


def _causal_shared_context(
    rt: Runtime, batch: list[Item], rows: list[tuple[int, list[int]]]
) -> tuple[list[float], list[bool]] | None:
    """Pass 1 over the contexts, pass 2 over the continuations on a copy of the cache."""
    passed = _context_pass(rt, batch)
    if passed is None:
        return None
    logits, cache, mask = passed
    first = logits.double().log_softmax(-1)  # predicts each continuation's 1st token
    ctx_len = mask.sum(-1)
    owner = torch.tensor([b for b, _ in rows], device=rt.device)
    head = torch.tensor([cont[0] for _, cont in rows], device=rt.device)
    lp: list[float] = first[owner, head].tolist()
    greedy: list[bool] = (first.argmax(-1)[owner] == head).tolist()
    for chunk in _chunks(rt, rows, mask.shape[1]):
        tails = [rows[r][1][:-1] for r in chunk]  # token j of a tail predicts token j+1
        if not any(tails):
            continue
        index = torch.tensor([rows[r][0] for r in chunk], device=rt.device)
        tail_ids, tail_mask = pad(tails, rt.pad_id, left=False, device=rt.device)
        targets, _ = pad([rows[r][1][1:] for r in chunk], 0, left=False, device=rt.device)
        out = rt.model(
            input_ids=tail_ids,
            attention_mask=torch.cat([mask[index], tail_mask], dim=-1),
            position_ids=positions(tail_mask, ctx_len[index]),
            use_cache=True,
            **{rt.cache_kw: _select_rows(cache, index)},
        )
        sums, all_greedy = _token_scores(out.logits, targets, tail_mask)
        for k, r in enumerate(chunk):
            lp[r] += float(sums[k])
            greedy[r] = greedy[r] and bool(all_greedy[k])
    return lp, greedy


def _cache_of(out: Any) -> Any:
    cache = getattr(out, "cache", None)
    return getattr(out, "past_key_values", None) if cache is None else cache


def _context_pass(rt: Runtime, batch: list[Item]) -> tuple[torch.Tensor, Any, torch.Tensor] | None:
    """Run the contexts of a batch: ``(last-position logits, reusable cache, attention mask)``,
    or None when the model's cache cannot be reused.

    With a common prefix of ``MIN_SHARED_PREFIX`` tokens or more (always leaving each context at
    least one token of its own, whose logits are needed), the prefix runs once as a single row,
    its cache is expanded to the batch, and the left-padded remainders run on top; the mask is
    then ``[prefix ones | remainder mask]`` and positions continue after the prefix, so every
    row sees exactly the tokens and positions it would see alone.
    """
    contexts = [it.ids for it in batch]
    shared = min(len(c) for c in contexts) - 1
    for c in contexts[1:]:
        shared = min(shared, _common_prefix(contexts[0], c))
    keep: dict[str, Any] = {"logits_to_keep": 1} if rt.logits_to_keep else {}
    if len(batch) < 2 or shared < MIN_SHARED_PREFIX:
        ids, mask = pad(contexts, rt.pad_id, left=True, device=rt.device)
        out = rt.model(input_ids=ids, attention_mask=mask, use_cache=True, position_ids=positions(mask), **keep)
        cache = _cache_of(out)
        return (out.logits[:, -1], cache, mask) if _shareable(rt, cache) else None
    head = torch.tensor([contexts[0][:shared]], device=rt.device)
    out = rt.model(input_ids=head, attention_mask=torch.ones_like(head), use_cache=True, **keep)
    cache = _cache_of(out)
    if not _shareable(rt, cache):
        return None
    rest, rest_mask = pad([c[shared:] for c in contexts], rt.pad_id, left=True, device=rt.device)
    mask = torch.cat([torch.ones((len(batch), shared), dtype=rest_mask.dtype, device=rt.device), rest_mask], -1)
    expanded = _select_rows(cache, torch.zeros(len(batch), dtype=torch.long, device=rt.device))
    offset = torch.full((len(batch),), shared, dtype=torch.long, device=rt.device)
    out = rt.model(input_ids=rest, attention_mask=mask, use_cache=True, position_ids=positions(rest_mask, offset),
                   **{rt.cache_kw: expanded}, **keep)
    return out.logits[:, -1], _cache_of(out), mask


def _causal_full(rt: Runtime, batch: list[Item],
                 rows: list[tuple[int, list[int]]]) -> tuple[list[float], list[bool]]:
    """Fallback: one right-padded forward of context+continuation per choice."""
    lp: list[float] = [0.0] * len(rows)
    greedy: list[bool] = [True] * len(rows)
    longest_ctx = max(len(it.ids) for it in batch)
    for chunk in _chunks(rt, rows, longest_ctx):
        seqs = [batch[rows[r][0]].ids + rows[r][1] for r in chunk]
        ids, mask = pad([s[:-1] for s in seqs], rt.pad_id, left=False, device=rt.device)
        logits = rt.model(input_ids=ids, attention_mask=mask).logits
        for k, r in enumerate(chunk):
            b, cont = rows[r]
            n_ctx = len(batch[b].ids)
            span = logits[k, n_ctx - 1 : n_ctx - 1 + len(cont)]
            target = torch.tensor(cont, device=rt.device)
            ones = torch.ones_like(target)
            s, g = _token_scores(span[None], target[None], ones[None])
            lp[r], greedy[r] = float(s[0]), bool(g[0])
    return lp, greedy


def decoder_start_id(rt: Runtime) -> int:
    for source in (rt.model.generation_config, rt.model.config):
        value = getattr(source, "decoder_start_token_id", None)
        if value is not None:
            return int(value)
    return rt.pad_id


@torch.inference_mode()
def _seq2seq_batch(rt: Runtime, batch: list[Item]) -> list[Scored]:
    """Encode each prompt once, then score all its choices as decoder targets on copies of
    the encoder output (the seq2seq form of sharing the context); choices with the same
    decoder input share one decoder row."""
    from transformers.modeling_outputs import BaseModelOutput

    start = time.perf_counter()
    rows = _rows(batch)
    ids, mask = pad([it.ids for it in batch], rt.pad_id, left=False, device=rt.device)
    hidden = rt.model.get_encoder()(input_ids=ids, attention_mask=mask).last_hidden_state
    bos = decoder_start_id(rt)
    lp: list[float] = [0.0] * len(rows)
    greedy: list[bool] = [True] * len(rows)
    # Choices of one sample whose decoder inputs are the same (every single-token choice:
    # just the start token) share one decoder row; each is then scored on its own targets.
    unique: dict[tuple[int, tuple[int, ...]], int] = {}
    dec_rows: list[tuple[int, list[int]]] = []
    row_of: list[int] = []
    for b, cont in rows:
        key = (b, (bos, *cont[:-1]))
        if key not in unique:
            unique[key] = len(dec_rows)
            dec_rows.append((b, list(key[1])))
        row_of.append(unique[key])
    users: list[list[int]] = [[] for _ in dec_rows]
    for r, u in enumerate(row_of):
        users[u].append(r)
    for chunk in _chunks(rt, dec_rows, ids.shape[1]):
        index = torch.tensor([dec_rows[u][0] for u in chunk], device=rt.device)
        dec_ids, dec_mask = pad([dec_rows[u][1] for u in chunk], rt.pad_id, left=False, device=rt.device)
        out = rt.model(
            encoder_outputs=BaseModelOutput(last_hidden_state=hidden[index]),
            attention_mask=mask[index], decoder_input_ids=dec_ids,
            decoder_attention_mask=dec_mask, use_cache=False,
        )
        pick = [(k, r) for k, u in enumerate(chunk) for r in users[u]]
        logit_rows = torch.tensor([k for k, _ in pick], device=rt.device)
        targets, _ = pad([rows[r][1] for _, r in pick], 0, left=False, device=rt.device)
        sums, all_greedy = _token_scores(out.logits[logit_rows], targets, dec_mask[logit_rows])
        for j, (_, r) in enumerate(pick):
            lp[r], greedy[r] = float(sums[j]), bool(all_greedy[j])
    return _collect(batch, rows, lp, greedy, time.perf_counter() - start)


def classify(rt: Runtime, items: Sequence[Item]) -> Iterator[Scored]:
    """Yield ``label_scores``: log-softmax over the classifier head, keyed by label name."""
    labels = rt.model.config.id2label
    for batch in plan_batches(_sorted(items), lambda it: (1, it.length), rt.max_rows,
                              rt.max_tokens):
        yield from with_oom_backoff(batch, lambda b: _classify_batch(rt, b, labels), _error)


@torch.inference_mode()
def _classify_batch(rt: Runtime, batch: list[Item], labels: dict[int, str]) -> list[Scored]:
    start = time.perf_counter()
    ids, mask = pad([it.ids for it in batch], rt.pad_id, left=False, device=rt.device)
    logprobs = rt.model(input_ids=ids, attention_mask=mask).logits.double().log_softmax(-1)
    latency = (time.perf_counter() - start) / len(batch)
    values = logprobs.tolist()
    return [
        (it.index, Response(
            label_scores={labels[i]: v for i, v in enumerate(values[k])}, latency_s=latency,
            usage=_usage(len(it.ids), 0),
        ))
        for k, it in enumerate(batch)
    ]
