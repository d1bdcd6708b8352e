"""Prompt rendering, tokenisation and batch planning for the Hugging Face adapter.

Everything here is pure bookkeeping on token-id lists: no forward passes. Keeping it apart
from the model code makes the rules (how a prompt becomes ids, where the context ends and
the continuation begins, how rows are grouped into batches) easy to read and to test.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from llmbench.errors import one_line
from llmbench.types import ChatMessage, Prompt

if TYPE_CHECKING:  # torch is imported where tensors are made: building an adapter must not
    import torch  # pay ~0.8 s for it when every answer comes from the cache

T = TypeVar("T")


def render_prompt(tokenizer: Any, prompt: Prompt) -> tuple[str, bool]:
    """Turn a prompt into text; return ``(text, is_chat)``.

    Chat prompts go through the tokenizer's chat template with the generation prompt
    appended, so the text ends where the assistant's answer starts. A tokenizer without a
    template gets a plain transcript, one ``role: content`` line per message followed by
    ``assistant:``; that keeps chat-formatted tasks usable on base models instead of failing.
    Rendered chat text already holds the model's control tokens, which is why callers
    tokenise it with ``add_special_tokens=False``.
    """
    if isinstance(prompt, str):
        return prompt, False
    messages = [m.model_dump() if isinstance(m, ChatMessage) else dict(m) for m in prompt]
    if getattr(tokenizer, "chat_template", None):
        return _apply_chat_template(tokenizer, messages), True
    lines = [f"{m['role']}: {m['content']}" for m in messages]
    return "\n".join([*lines, "assistant:"]), True


def _apply_chat_template(tokenizer: Any, messages: list[dict[str, Any]]) -> str:
    """The tokenizer's chat template, rendered by transformers in Jinja's sandbox. The
    template came with the model folder, so a sandbox refusal or a template error is the
    model's problem, told in one line (exit 2), not an internal error."""
    import jinja2.sandbox

    from llmbench.models.base import ModelError

    try:
        return str(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
    except jinja2.TemplateError as err:
        what = "reaches outside the sandbox" if isinstance(err, jinja2.sandbox.SecurityError) else "failed"
        name = getattr(tokenizer, "name_or_path", "") or "the model"
        raise ModelError(f"the chat template of '{name}' (tokenizer_config.json or chat_template.jinja) {what}: "
                         f"{one_line(err, 160)} — fix or remove the model's chat template, or run with "
                         "--no-chat") from None


def special_prefix(tokenizer: Any) -> list[int]:
    """The ids the tokenizer puts *before* a text when adding special tokens (e.g. BOS).

    Causal scoring tokenises the context and the continuation without special tokens (so
    that no EOS lands between them) and prepends this prefix by hand, which keeps the BOS
    a Llama-style model expects without hard-coding any tokenizer's conventions.
    """
    probe = "a"
    with_sp = list(tokenizer(probe, add_special_tokens=True)["input_ids"])
    without = list(tokenizer(probe, add_special_tokens=False)["input_ids"])
    for start in range(len(with_sp) - len(without) + 1):
        if with_sp[start : start + len(without)] == without:
            return with_sp[:start]
    return []


def encode(tokenizer: Any, text: str, *, special: bool) -> list[int]:
    return list(tokenizer(text, add_special_tokens=special)["input_ids"])


class BatchEncoder:
    """A tokenizer front that encodes many texts in one call and answers ``encode`` from that.

    One transformers call per string costs ~30 µs of Python; a batched transformers call is
    no cheaper, because it converts every Rust ``Encoding`` into a dict of lists. Asking the
    Rust backend for the ids of the whole list directly costs ~13 µs a string (100,000
    two-choice samples: ~4 s instead of ~10 s). Without padding or truncation, batch
    encoding gives each text the same ids as encoding it alone (a test checks against the
    tokenizer's own call). Anything not prepared here goes to the real tokenizer.
    """

    def __init__(self, tokenizer: Any, texts: Sequence[str]) -> None:
        self._tokenizer = tokenizer
        unique = list(dict.fromkeys(texts))
        self._ids = dict(zip(unique, _batch_ids(tokenizer, unique), strict=True))

    def __call__(self, text: Any, *args: Any, add_special_tokens: bool = True, **kwargs: Any) -> Any:
        if not add_special_tokens and not args and not kwargs and isinstance(text, str) and text in self._ids:
            return {"input_ids": self._ids[text]}
        return self._tokenizer(text, *args, add_special_tokens=add_special_tokens, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)


def _batch_ids(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    """Ids of each text without special tokens, from the Rust backend when it is plain
    (no truncation or padding left switched on), else from the tokenizer's own call."""
    if not texts:
        return []
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and backend.truncation is None and backend.padding is None:
        return [enc.ids for enc in backend.encode_batch(texts, add_special_tokens=False)]
    return [list(row) for row in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def split_trailing_space(context: str, continuation: str) -> tuple[str, str]:
    """Move the context's trailing whitespace into the continuation (lm-evaluation-harness).

    ``"Answer: " + "Paris"`` would otherwise tokenise the space on its own and score an
    unnatural ``" " | "Paris"`` split instead of the ``" Paris"`` token the model predicts.
    """
    n = len(context) - len(context.rstrip())
    if n:
        return context[:-n], context[-n:] + continuation
    return context, continuation


def causal_pair_texts(context: str, continuations: Sequence[str]) -> tuple[str, list[str]]:
    """The context text and each continuation after moving trailing whitespace across."""
    ctx_text = context
    moved: list[str] = []
    for cont in continuations:
        ctx_text, cont_text = split_trailing_space(context, cont)
        moved.append(cont_text)
    return ctx_text, moved


def causal_pair_ids(
    tokenizer: Any, context: str, continuations: Sequence[str], *, chat: bool, prefix: list[int]
) -> tuple[list[int], list[list[int]]]:
    """Context ids (shared by every choice) and one id list per continuation, for a causal LM.

    Like lm-evaluation-harness: encode context+continuation as a whole and split at the
    length of the separately encoded context, so boundary merges are tokenised the way the
    model saw text in training. The context ids are the same for every choice, which is
    what lets the adapter run the context once and reuse its key/value cache.
    """
    ctx_text, moved = causal_pair_texts(context, continuations)
    lead = [] if chat else prefix
    ctx = lead + encode(tokenizer, ctx_text, special=False)
    if not ctx:  # nothing to condition on: use BOS/EOS like lm-eval's prefix token
        tok_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        ctx = [int(tok_id if tok_id is not None else 0)]
    n_ctx = len(ctx) - len(lead)
    conts = []
    for cont_text in moved:
        whole = encode(tokenizer, ctx_text + cont_text, special=False)
        ids = whole[n_ctx:]
        if not ids and cont_text:
            # The continuation merged into the context's last token; lm-eval would score
            # nothing. Encoding it on its own is the closest honest answer.
            ids = encode(tokenizer, cont_text, special=False)
        conts.append(ids)
    return ctx, conts


def seq2seq_pair_ids(
    tokenizer: Any, context: str, continuations: Sequence[str]
) -> tuple[list[int], list[list[int]]]:
    """Encoder ids (with the tokenizer's special tokens, e.g. T5's ``</s>``) and decoder
    target ids (without), as lm-evaluation-harness does for seq2seq models."""
    ctx_text = context
    conts = []
    for cont in continuations:
        ctx_text, cont_text = split_trailing_space(context, cont)
        conts.append(encode(tokenizer, cont_text, special=False))
    return encode(tokenizer, ctx_text, special=True), conts


def truncate_left(ids: list[int], budget: int, keep_prefix: int = 0) -> list[int]:
    """Keep the last ``budget`` ids, but never drop the first ``keep_prefix`` ones (BOS)."""
    if budget <= 0 or len(ids) <= budget:
        return ids
    keep = min(keep_prefix, budget - 1) if budget > 1 else 0
    return ids[:keep] + ids[len(ids) - (budget - keep) :]


def row_seed(seed: int, text: str) -> int:
    """A per-request sampling seed: depends on the request only, never on its batch, so
    sampled answers are reproducible however the requests are grouped; mixing in the
    prompt keeps different prompts from drawing the same random numbers."""
    digest = hashlib.sha256(f"{seed}\x00{text}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


@dataclass
class Item:
    """One tokenised request. ``rows`` is how many sequences it puts in a batch (its number
    of choices for loglikelihood) and ``length`` the padded length it needs."""

    index: int
    ids: list[int]
    rows: int = 1
    length: int = 0
    conts: list[list[int]] = field(default_factory=list)
    text: str = ""
    error: str | None = None


def plan_batches(items: Sequence[T], cost: Callable[[T], tuple[int, int]], max_rows: int,
                 max_tokens: int) -> list[list[T]]:
    """Group items (already sorted longest first) into batches.

    A batch is closed before it would exceed ``max_rows`` rows or ``max_tokens`` padded
    tokens (rows × longest length), the two things that bound memory. An item that alone
    exceeds a cap still gets a batch of its own: callers split its rows further if needed.
    """
    batches: list[list[T]] = []
    current: list[T] = []
    rows = longest = 0
    for item in items:
        r, n = cost(item)
        new_rows, new_longest = rows + r, max(longest, n)
        if current and (new_rows > max_rows or new_rows * new_longest > max_tokens):
            batches.append(current)
            current, new_rows, new_longest = [], r, n
        current.append(item)
        rows, longest = new_rows, new_longest
    if current:
        batches.append(current)
    return batches


def pad(seqs: Sequence[Sequence[int]], pad_id: int, *, left: bool,
        device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Pad id lists to one ``(ids, attention_mask)`` pair of long tensors."""
    import torch

    width = max((len(s) for s in seqs), default=0)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if not s:
            continue
        sl = slice(width - len(s), width) if left else slice(0, len(s))
        ids[i, sl] = torch.tensor(list(s), dtype=torch.long)
        mask[i, sl] = 1
    return ids.to(device), mask.to(device)


def positions(mask: torch.Tensor, offset: torch.Tensor | None = None) -> torch.Tensor:
    """Position ids that count real tokens only, so a left-padded row sees the same
    positions as it would alone (pads get position 0; they are masked anyway)."""
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    if offset is not None:
        pos = pos + offset[:, None]
    return pos


def is_oom(err: BaseException) -> bool:
    import torch

    oom_type = getattr(torch, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(err, oom_type):
        return True
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


def with_oom_backoff(batch: list[T], fn: Callable[[list[T]], list[tuple[int, Any]]],
                     on_fail: Callable[[T, str], tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    """Run ``fn`` on a batch; on out-of-memory split it in halves and retry, so one
    overlong batch costs a retry instead of the whole run. A single item that still does
    not fit comes back through ``on_fail`` as an error response."""
    try:
        yield from fn(batch)
        return
    except Exception as err:  # only OOM is handled here; anything else is re-raised
        if not is_oom(err):
            raise
        message = f"out of memory: {one_line(err, 300)}"
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    if len(batch) == 1:
        yield on_fail(batch[0], message)
        return
    half = len(batch) // 2
    yield from with_oom_backoff(batch[:half], fn, on_fail)
    yield from with_oom_backoff(batch[half:], fn, on_fail)
