"""The wire format of ``llmbench serve``'s answers: OpenAI's ``logprobs`` objects, usage, and
the one-prompt result (``Answer``) they are written from.

Offsets, token texts and alternatives follow OpenAI's conventions exactly (see the package
docstring in ``app.py``), because clients such as lm-evaluation-harness slice these lists by
position: a text that spelled the answer differently would shift every number they read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmbench.models.base import Encoded, TokenLogprob


def usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def spell(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "bytes:" + "".join(f"\\x{b:02x}" for b in raw)


def clip(entries: list[TokenLogprob], text: str) -> list[str]:
    """The text each entry adds, cut so they spell ``text`` exactly (the last token before
    a stop string may reach into it; a special token adds nothing to the answer)."""
    out, reach = [], 0
    for e in entries:
        piece = "" if e.special else e.text[: max(0, len(text) - reach)]
        reach += len(piece)
        out.append(piece)
    return out


@dataclass
class Answer:
    """One prompt's result before it is written as JSON or as stream chunks."""

    prompt: Encoded | None  # None: a model without token-level access
    prompt_text: str
    text: str
    finish_reason: str
    completion_ids: tuple[int, ...]
    prompt_tokens: int
    completion_tokens: int
    entries: list[TokenLogprob] | None = None  # scored positions (echo: prompt's too)
    pieces: list[TokenLogprob] | None = None  # the completion's tokens, for streaming


def completion_logprobs(answer: Answer, echo: bool) -> dict[str, Any]:
    """The legacy completions ``logprobs`` object. Offsets index the returned text: the
    echoed prompt from 0 (BOS added by the server takes no room), else from the prompt's
    length, as OpenAI counts them."""
    entries = answer.entries or []
    assert answer.prompt is not None
    n_prompt, n_lead = len(answer.prompt.ids), answer.prompt.n_lead
    first = 0 if echo else n_prompt
    prompt_part, answer_part = entries[: max(0, n_prompt - first)], entries[max(0, n_prompt - first):]
    clipped = clip(answer_part, answer.text)
    tokens = [e.text for e in prompt_part] + [e.text if e.special else t
                                              for e, t in zip(answer_part, clipped, strict=True)]
    widths = [0 if first + i < n_lead else len(e.text) for i, e in enumerate(prompt_part)]
    widths += [len(t) for t in clipped]
    offset = 0 if echo else len(answer.prompt_text)
    offsets: list[int] = []
    tops: list[dict[str, float] | None] = []
    for e, width in zip(entries, widths, strict=True):
        offsets.append(offset)
        offset += width
        if e.logprob is None:
            tops.append(None)
            continue
        top: dict[str, float] = {}
        for alt in e.top:  # best first; keep the first of two ids that spell alike
            top.setdefault(alt.token, alt.logprob)
        top.setdefault(spell(e.raw), e.logprob)  # OpenAI always includes the chosen token
        tops.append(top)
    return {"tokens": tokens, "token_logprobs": [e.logprob for e in entries],
            "text_offset": offsets, "top_logprobs": tops}


def chat_entry(e: TokenLogprob, token: str) -> dict[str, Any]:
    return {"token": token, "logprob": e.logprob if e.logprob is not None else 0.0,
            "bytes": list(e.raw),
            "top_logprobs": [{"token": a.token, "logprob": a.logprob, "bytes": list(a.raw)}
                             for a in e.top]}


def chat_entries(answer: Answer) -> list[dict[str, Any]]:
    """One entry per answer token: they spell the content. A final EOS is left out, unless
    it is the only token (then it is the one place the first-position distribution shows)."""
    entries = list(answer.entries or [])
    if len(entries) > 1 and entries[-1].special:
        entries = entries[:-1]
    texts = clip(entries, answer.text)
    if len(entries) == 1 and entries[0].special:
        texts = [entries[0].text]
    return [chat_entry(e, t) for e, t in zip(entries, texts, strict=True)]
