"""Whole-document log-likelihood (request kind ``loglikelihood_rolling``).

Causal LMs: the document is tokenised without special tokens and cut into the windows of
lm-evaluation-harness 0.4.13's ``get_rolling_token_windows`` + ``make_disjoint_window``: the
first window predicts the first ``max_length`` tokens after a prefix token (BOS, else EOS,
lm-eval's ``prefix_token_id``); each later window predicts the next ``stride`` tokens
(default ``max_length``: disjoint windows, lm-eval's setting) and reads up to
``max_length`` tokens before them, so every token is predicted exactly once. Windows of
all documents are batched together, longest first; log-softmax and sums run in float64 so
the batch size does not move the totals.

Masked LMs: the pseudo-log-likelihood (Salazar et al., 2020): every token of the text is
masked in turn and scored from both sides; the copies of a text with one token masked each
are batched. A text longer than the model's window is scored in consecutive chunks, each
wrapped in the tokenizer's special tokens.

Each answer is ``Response(logprobs=(total,), n_scored=tokens)``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from llmbench.models.hf.inputs import Item, pad, plan_batches, with_oom_backoff
from llmbench.models.hf.load import Runtime
from llmbench.types import Response, Usage

Scored = tuple[int, Response]


def rolling_windows(tokens: Sequence[int], prefix: int, max_len: int,
                    stride: int | None = None) -> list[tuple[list[int], list[int]]]:
    """``(context, continuation)`` pairs covering ``tokens`` once, as lm-eval's
    ``map(make_disjoint_window, get_rolling_token_windows(tokens, prefix, max_len,
    context_len=max_len - stride + 1))``: ``context + continuation[:-1]`` is at most
    ``max_len`` tokens, the model input of one window."""
    stride = max_len if stride is None else min(stride, max_len)
    tokens = list(tokens)
    if not tokens:
        return []
    first = min(max_len, len(tokens))
    windows = [([prefix], tokens[:first])]
    predicted = first
    while predicted < len(tokens):
        n = min(len(tokens) - predicted, stride)
        end = predicted + n
        inputs = tokens[max(0, end - max_len - 1) : end - 1]
        windows.append((inputs[: len(inputs) - (n - 1)], tokens[end - n : end]))
        predicted += n
    return windows


@dataclass
class _Window:
    doc: int  # position of the item in the request list
    ids: list[int]  # model input: context + continuation[:-1]
    targets: list[int]  # the continuation, predicted by the last len(targets) positions


def _prefix_token(rt: Runtime) -> int:
    tok = rt.tokenizer
    for value in (tok.bos_token_id, tok.eos_token_id):
        if value is not None:
            return int(value)
    return rt.pad_id


def causal_rolling(rt: Runtime, items: Sequence[Item], strides: Sequence[int | None]) -> Iterator[Scored]:
    """Yield ``(index, Response)`` per item; ``item.ids`` are the document's tokens."""
    if rt.max_length is None:
        raise ValueError("loglikelihood_rolling needs the model's window length: set max_length")
    prefix = _prefix_token(rt)
    windows: list[_Window] = []
    counts = [0] * len(items)
    for d, (item, stride) in enumerate(zip(items, strides, strict=True)):
        for ctx, cont in rolling_windows(item.ids, prefix, rt.max_length, stride):
            windows.append(_Window(d, (ctx + cont)[:-1], cont))
            counts[d] += 1
    totals = [0.0] * len(items)
    left = counts[:]
    seconds = [0.0] * len(items)
    order = sorted(windows, key=lambda w: -len(w.ids))
    for batch in plan_batches(order, lambda w: (1, len(w.ids)), rt.max_rows, rt.max_tokens):
        start = time.perf_counter()
        sums = _window_sums(rt, batch)
        share = (time.perf_counter() - start) / len(batch)
        for w, s in zip(batch, sums, strict=True):
            totals[w.doc] += s
            seconds[w.doc] += share
            left[w.doc] -= 1
            if left[w.doc] == 0:
                yield _answer(items[w.doc], totals[w.doc], len(items[w.doc].ids), seconds[w.doc], counts[w.doc])
    for d, item in enumerate(items):
        if counts[d] == 0:  # an empty document: nothing to predict
            yield _answer(item, 0.0, 0, 0.0, 0)


def _answer(item: Item, total: float, n: int, seconds: float, n_windows: int) -> Scored:
    return item.index, Response(logprobs=(total,), n_scored=n, latency_s=seconds,
                                usage=Usage(prompt_tokens=n + n_windows))


@torch.inference_mode()
def _window_sums(rt: Runtime, batch: list[_Window]) -> list[float]:
    ids, mask = pad([w.ids for w in batch], rt.pad_id, left=False, device=rt.device)
    logits = rt.model(input_ids=ids, attention_mask=mask).logits
    out = []
    # float64 in slices of positions: a whole 8k-token window of a 50k vocabulary would be 3 GB
    step = max(1, (1 << 25) // max(1, logits.shape[-1]))
    for k, w in enumerate(batch):
        n_in, n = len(w.ids), len(w.targets)
        target = torch.tensor(w.targets, device=rt.device)
        total = 0.0
        for lo in range(0, n, step):
            span = logits[k, n_in - n + lo : n_in - n + min(n, lo + step)].double().log_softmax(-1)
            total += float(span.gather(-1, target[lo : lo + step, None]).sum())
        out.append(total)
    return out


# -- masked LMs: pseudo-log-likelihood ---------------------------------------------------------


def _specials(rt: Runtime) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a text (``[CLS]`` and ``[SEP]``)."""
    tok = rt.tokenizer
    probe = "a"
    with_sp = list(tok(probe, add_special_tokens=True)["input_ids"])
    without = list(tok(probe, add_special_tokens=False)["input_ids"])
    for start in range(len(with_sp) - len(without) + 1):
        if with_sp[start : start + len(without)] == without:
            return with_sp[:start], with_sp[start + len(without) :]
    return [], []


def chunks_for_masking(tokens: Sequence[int], head: Sequence[int], tail: Sequence[int],
                       max_len: int | None) -> list[list[int]]:
    """The model inputs a text is scored in: its tokens in consecutive pieces that fit the
    window once wrapped in ``head``/``tail`` (a short text is one piece)."""
    room = len(tokens) if max_len is None else max(1, max_len - len(head) - len(tail))
    return [[*head, *tokens[i : i + room], *tail] for i in range(0, len(tokens), room)]


def pseudo_loglikelihood(rt: Runtime, items: Sequence[Item]) -> Iterator[Scored]:
    """Yield ``(index, Response)`` per item: the sum over tokens of log P(token | the rest)
    with that token replaced by the mask token."""
    mask_id = rt.tokenizer.mask_token_id
    if mask_id is None:
        raise ValueError("this masked LM's tokenizer has no mask token")
    head, tail = _specials(rt)
    rows: list[tuple[int, list[int], int]] = []  # (item position, chunk ids, masked position)
    for d, item in enumerate(items):
        for chunk in chunks_for_masking(item.ids, head, tail, rt.max_length):
            rows.extend((d, chunk, p) for p in range(len(head), len(chunk) - len(tail)))
    totals = [0.0] * len(items)
    left = [len(item.ids) for item in items]
    seconds = [0.0] * len(items)
    order = sorted(range(len(rows)), key=lambda r: (-len(rows[r][1]), r))
    for batch in plan_batches(order, lambda r: (1, len(rows[r][1])), rt.max_rows, rt.max_tokens):
        start = time.perf_counter()
        values = _masked_scores(rt, [rows[r] for r in batch], mask_id)
        share = (time.perf_counter() - start) / len(batch)
        for r, v in zip(batch, values, strict=True):
            d = rows[r][0]
            totals[d] += v
            seconds[d] += share
            left[d] -= 1
            if left[d] == 0:
                yield _answer(items[d], totals[d], len(items[d].ids), seconds[d], 0)
    for item in items:
        if not item.ids:
            yield _answer(item, 0.0, 0, 0.0, 0)


@torch.inference_mode()
def _masked_scores(rt: Runtime, rows: list[tuple[int, list[int], int]], mask_id: int) -> list[float]:
    masked = []
    for _, chunk, p in rows:
        copy = list(chunk)
        copy[p] = mask_id
        masked.append(copy)
    ids, attn = pad(masked, rt.pad_id, left=False, device=rt.device)
    logits = rt.model(input_ids=ids, attention_mask=attn).logits
    pos = torch.tensor([p for _, _, p in rows], device=rt.device)
    target = torch.tensor([chunk[p] for _, chunk, p in rows], device=rt.device)
    picked = logits[torch.arange(len(rows), device=rt.device), pos].double().log_softmax(-1)
    return picked.gather(-1, target[:, None]).squeeze(-1).tolist()


def run(rt: Runtime, items: Sequence[Item], strides: Sequence[int | None]) -> Iterator[Scored]:
    """Answer rolling requests by the model's kind (causal windows or masked pseudo-LL).

    Out-of-memory is retried at the document level: the documents are split in halves."""
    def one(batch: list[tuple[Item, int | None]]) -> list[Scored]:
        its = [it for it, _ in batch]
        if rt.arch == "masked":
            return list(pseudo_loglikelihood(rt, its))
        return list(causal_rolling(rt, its, [s for _, s in batch]))

    def fail(pair: tuple[Item, int | None], message: str) -> Scored:
        return pair[0].index, Response(error=message)

    for item in items:
        if item.error:
            yield item.index, Response(error=item.error)
    ready = [(it, s) for it, s in zip(items, strides, strict=True) if not it.error]
    # documents in groups so that a long run reports (and caches) answers as it goes
    group = max(1, rt.max_rows)
    for lo in range(0, len(ready), group):
        yield from with_oom_backoff(ready[lo : lo + group], one, fail)
