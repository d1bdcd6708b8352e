"""A GPT-2 checkpoint whose greedy answers are scripted, for server tests that need a model
to produce a given token: a byte piece of a multi-byte character, or EOS.

It is a bigram model built by hand: one transformer block whose residual branches are
zeroed, no position embeddings, untied input and output embeddings. The hidden state at a
position is then the input embedding of the token there, so the next-token distribution
depends only on the current token; ``successors`` says which token follows which, every
other token is followed by ``fallback``. The tokenizer is ``llmbench.testing``'s tiny
byte-level BPE, so the ids are those of the other tiny GPT-2 tests.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def build_scripted_gpt2(out: Path, successors: Callable[[Any], tuple[dict[int, int], int]],
                        *, scale: float = 4.0) -> Path:
    """Save the model in ``out``. ``successors(tokenizer) -> ({token: next token}, fallback)``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from llmbench.testing import random_gpt2

    _, tok = random_gpt2(seed=0)
    succ, fallback = successors(tok)
    keys = list(succ)
    dim = len(keys) + 8
    config = GPT2Config(vocab_size=len(tok), n_positions=512, n_embd=dim, n_layer=1, n_head=1,
                        bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id,
                        pad_token_id=tok.eos_token_id, tie_word_embeddings=False)
    model = GPT2LMHeadModel(config)
    with torch.no_grad():
        for p in model.transformer.h[0].parameters():
            p.zero_()  # each residual branch adds nothing: the block is the identity
        model.transformer.wpe.weight.zero_()
        wte = torch.zeros(len(tok), dim)
        wte[:, 0] = 1.0  # every token not in the script shares one embedding
        for k, token in enumerate(keys, start=1):
            wte[token] = 0.0
            wte[token, k] = 1.0
        model.transformer.wte.weight.copy_(wte)
        ln = model.transformer.ln_f
        ln.weight.fill_(1.0)
        ln.bias.zero_()
        head = torch.zeros(len(tok), dim)
        normed = torch.nn.functional.layer_norm(wte, (dim,), eps=ln.eps)
        for token, nxt in succ.items():
            head[nxt] += scale * normed[token]
        shared = next(t for t in range(len(tok)) if t not in succ)
        head[fallback] += scale * normed[shared]
        model.lm_head.weight.copy_(head)
    out.mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(out)
    tok.save_pretrained(out)
    return out
