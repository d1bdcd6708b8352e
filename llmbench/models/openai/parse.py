"""Reading OpenAI-shaped responses: the parts of the adapter that are pure functions.

Kept apart from the transport so they can be tested on hand-made responses, and
because the echo arithmetic is where a harness most easily returns a wrong number
without noticing: every doubtful case raises instead.
"""

from __future__ import annotations

from typing import Any

from llmbench.models.stop import cut_at_stop as cut_at_stop  # re-exported: the adapter reads it here
from llmbench.types import Usage


class MalformedResponse(Exception):
    """The server's answer could not be read; worth retrying."""


class FatalResponse(Exception):
    """A failure that retrying cannot fix (bad request, missing fields by design)."""


def to_usage(u: Any) -> Usage | None:
    """Token counts, with the prompt tokens served from the API's prompt cache where it
    reports them (``prompt_tokens_details.cached_tokens``; billed at a lower price)."""
    if u is None:
        return None
    prompt = u.prompt_tokens or 0
    details = getattr(u, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) or 0
    return Usage(prompt_tokens=prompt, completion_tokens=u.completion_tokens or 0,
                 cached_prompt_tokens=min(int(cached), prompt))


def echo_logprob(prompt: str, continuation: str, logprobs: Any) -> tuple[float, bool | None]:
    """Sum of the log-probabilities of the tokens that start at or after the end of
    ``prompt`` (less its trailing whitespace) in an echoed ``prompt + continuation``,
    and whether each of them was the top token (``None`` without top log-probabilities).

    Raises ``FatalResponse`` when the split is not clean: if no token starts exactly
    at the split, one token straddles prompt and continuation (``"Label:pos" +
    "itive"``) and any number would be wrong.
    """
    if logprobs is None or logprobs.tokens is None or logprobs.text_offset is None:
        raise FatalResponse("the server returned no echoed log-probabilities; "
                            "set echo_logprobs: false for this server")
    offsets, values = list(logprobs.text_offset), list(logprobs.token_logprobs)
    tops = logprobs.top_logprobs
    # Trailing whitespace of the prompt counts as part of the continuation, as in
    # lm-evaluation-harness and the HF adapter: "Answer: " + "Paris" is scored as
    # " Paris" after "Answer:", the split a BPE tokenizer makes anyway.
    start = len(prompt.rstrip())
    picked = [i for i, off in enumerate(offsets) if off >= start]
    if not continuation:
        return 0.0, True
    if not picked or offsets[picked[0]] != start:
        raise FatalResponse(f"a token straddles the end of the prompt (character {start}), "
                            "so the continuation cannot be scored on its own")
    total, greedy = 0.0, True
    has_tops = tops is not None
    for i in picked:
        if values[i] is None:
            raise FatalResponse("the continuation's first token has no log-probability "
                                "(empty prompt?)")
        total += float(values[i])
        if not has_tops or i >= len(tops) or not tops[i]:
            has_tops = False
        elif float(values[i]) < max(tops[i].values()) - 1e-6:
            greedy = False
    return total, (greedy if has_tops else None)
