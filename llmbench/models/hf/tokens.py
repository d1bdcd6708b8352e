"""Token-level log-probabilities for ``llmbench serve`` (echo and ``logprobs``).

``adapter.run`` answers whole requests; the OpenAI API's ``logprobs`` fields need
the model's distribution at every position, so this module runs the Hugging Face
model itself. It follows the HF adapter's tokenisation (``hf.inputs``): the
tokenizer's leading special tokens (BOS) are prepended by hand to plain-text
prompts, chat prompts are rendered by the chat template and carry their own, so
an echoed log-probability is exactly the adapter's log P(token_i | tokens_<i) —
unlike llama.cpp's server, whose echoed prompt log-probabilities are not.

Only causal LMs: an encoder-decoder has no log-probabilities for its input, and a
classifier head has no tokens at all; for those ``HFAdapter.token_scorer()`` is
``None`` and the server answers ``logprobs`` requests with a 400.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from llmbench.models.base import ScoreJob, TokenLogprob, TokenScorer
from llmbench.models.hf.load import Runtime
from llmbench.types import Prompt

_ROW_CHUNK = 256


class HFTokenScorer(TokenScorer):
    """Teacher-forced per-token log-probabilities from a causal LM."""

    def __init__(self, model: Any, tokenizer: Any, prefix: list[int] | None = None,
                 max_length: int | None = None, max_batch_tokens: int = 8192) -> None:
        import inspect

        from llmbench.models.hf.inputs import special_prefix

        self.model = model
        self.tokenizer = tokenizer
        self.prefix = list(prefix) if prefix is not None else special_prefix(tokenizer)
        cfg = model.config
        self.max_length = max_length or getattr(cfg, "max_position_embeddings", None) or getattr(
            cfg, "n_positions", None)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (
            tokenizer.eos_token_id)
        self.pad_id = int(pad) if pad is not None else 0
        self.device = next(model.parameters()).device
        self.max_batch_tokens = max_batch_tokens
        try:
            self._logits_to_keep = "logits_to_keep" in inspect.signature(model.forward).parameters
        except (TypeError, ValueError):
            self._logits_to_keep = False

    @classmethod
    def from_runtime(cls, rt: Runtime) -> HFTokenScorer | None:
        """A scorer sharing the adapter's loaded model, BOS prefix, length limit and batch
        budget; ``None`` unless the model is a causal LM."""
        if rt.arch != "causal":
            return None
        return cls(rt.model, rt.tokenizer, rt.prefix, rt.max_length, rt.max_tokens)

    # ---------------------------------------------------------------- tokens
    def _encode(self, text: str) -> tuple[list[int], list[int]]:
        """Ids and character offsets (where each token starts in ``text``).

        Offsets come from the fast tokenizer when they cover the text without gaps;
        some tokenizers trim whitespace out of their offsets (RoBERTa-style), which
        would put a " Paris" token after its space and break echo arithmetic, so then
        they are recomputed from the decoded length of each prefix of the ids.
        """
        if not text:
            return [], []
        try:
            enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            ids, spans = list(enc["input_ids"]), [tuple(s) for s in enc["offset_mapping"]]
        except (NotImplementedError, TypeError, ValueError, KeyError):
            ids, spans = list(self.tokenizer(text, add_special_tokens=False)["input_ids"]), []
        if spans and spans[0][0] == 0:
            reach, starts, ok = 0, [], True
            for start, end in spans:
                ok = ok and start <= reach
                starts.append(max(start, starts[-1] if starts else 0))
                reach = max(reach, end)
            if ok and reach == len(text):
                return ids, starts
        starts = [len(self.tokenizer.decode(ids[:i], skip_special_tokens=False,
                                            clean_up_tokenization_spaces=False))
                  for i in range(len(ids))]
        return ids, starts

    def render(self, prompt: Prompt) -> tuple[str, bool]:
        from llmbench.models.hf.inputs import render_prompt

        return render_prompt(self.tokenizer, prompt)

    def count(self, text: str) -> int:
        return len(self._encode(text)[0])

    def prepare(self, job: ScoreJob) -> None:
        """Tokenise a job; raises ``ValueError`` (a 400) when it does not fit the model."""
        text, chat = self.render(job.prompt)
        p_ids, p_off = self._encode(text)
        lead = [] if chat else self.prefix
        c_ids, c_off = self._encode(job.completion)
        job.text = text
        job.ids = lead + p_ids + c_ids
        job.offsets = [0] * len(lead) + p_off + [len(text) + o for o in c_off]
        job.n_prompt = len(lead) + len(p_ids)
        job.n_lead = len(lead)
        if self.max_length and len(job.ids) > self.max_length:
            raise ValueError(f"prompt and completion are {len(job.ids)} tokens; the model takes "
                             f"at most {self.max_length}")

    def _piece(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id], skip_special_tokens=False,
                                     clean_up_tokenization_spaces=False)

    # --------------------------------------------------------------- scoring
    def score(self, jobs: Sequence[ScoreJob]) -> list[list[TokenLogprob]]:
        """Entries for ``prepare``d jobs. Jobs share right-padded forwards of at most
        ``max_batch_tokens`` padded tokens (a causal model sees no difference between
        a right-padded row and the same row alone, beyond float rounding)."""
        results: dict[int, list[TokenLogprob]] = {}
        live = sorted((j for j in jobs if j.ids), key=lambda j: -len(j.ids))
        batch: list[ScoreJob] = []
        for job in live:
            if batch and (len(batch) + 1) * len(batch[0].ids) > self.max_batch_tokens:
                results.update(self._forward(batch))
                batch = []
            batch.append(job)
        if batch:
            results.update(self._forward(batch))
        return [results.get(id(job), []) for job in jobs]  # no tokens, no entries

    @staticmethod
    def _first_row(job: ScoreJob) -> int:
        """The first logits row a job needs: row i predicts token i + 1."""
        return max(0, (0 if job.echo else job.n_prompt) - 1)

    @torch.inference_mode()
    def _forward(self, jobs: list[ScoreJob]) -> dict[int, list[TokenLogprob]]:
        width = max(len(j.ids) for j in jobs)
        ids = torch.full((len(jobs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(jobs), width), dtype=torch.long)
        for r, job in enumerate(jobs):
            ids[r, : len(job.ids)] = torch.tensor(job.ids)
            mask[r, : len(job.ids)] = 1
        kwargs: dict[str, Any] = {"input_ids": ids.to(self.device),
                                  "attention_mask": mask.to(self.device)}
        # Without echo only the completion's rows are needed: skip the vocabulary
        # projection of a long prompt (the biggest tensor of the forward).
        skip = min(self._first_row(j) for j in jobs)
        if skip > 0 and self._logits_to_keep:
            kwargs["logits_to_keep"] = width - skip
        else:
            skip = 0
        logits = self.model(**kwargs).logits
        return {id(job): self._entries(job, logits[r], skip) for r, job in enumerate(jobs)}

    def _entries(self, job: ScoreJob, logits: torch.Tensor, skip: int) -> list[TokenLogprob]:
        """``logits`` holds rows ``skip..`` of one sequence; log-softmax is taken a
        chunk of rows at a time so a long echoed prompt never needs a
        (length × vocabulary) float32 copy at once."""
        out: list[TokenLogprob] = []
        n = len(job.ids)
        if n and (job.echo or job.n_prompt == 0):  # nothing before the first token
            out.append(TokenLogprob(self._text_piece(job, 0), job.ids[0], job.offsets[0], None))
        first, last = self._first_row(job), n - 1  # the last row predicts the next token
        for lo in range(first, last + 1, _ROW_CHUNK):
            rows = logits[lo - skip : min(last + 1, lo + _ROW_CHUNK) - skip].float()
            lps = rows.log_softmax(-1)
            k = min(job.top_n, lps.shape[-1])
            top_v, top_i = lps.topk(k, dim=-1) if k else (None, None)
            for j in range(lps.shape[0]):
                row, pos = lo + j, lo + j + 1  # row predicts the token at pos
                top = self._top(top_v, top_i, j)
                if pos < n:
                    tid = job.ids[pos]
                    out.append(TokenLogprob(self._text_piece(job, pos), tid, job.offsets[pos],
                                            float(lps[j, tid]), top))
                elif job.next_if_empty and n == job.n_prompt and row == n - 1:
                    tid = int(lps[j].argmax())
                    out.append(TokenLogprob(self._piece(tid), tid, len(job.text),
                                            float(lps[j, tid]), top))
        return out

    def _text_piece(self, job: ScoreJob, pos: int) -> str:
        """The token's text as it appears in prompt + completion, so the tokens
        concatenate back to the text; lead special tokens (BOS) and pieces of a
        character split across tokens show as their decoded selves."""
        if pos < job.n_lead:
            return self._piece(job.ids[pos])
        full = job.text + job.completion
        lo = job.offsets[pos]
        hi = job.offsets[pos + 1] if pos + 1 < len(job.ids) else len(full)
        return full[lo:hi] if hi > lo else self._piece(job.ids[pos])

    def _top(self, values: torch.Tensor | None, index: torch.Tensor | None,
             row: int) -> tuple[tuple[str, float], ...]:
        if values is None or index is None:
            return ()
        return tuple((self._piece(int(i)), float(v))
                     for v, i in zip(values[row].tolist(), index[row].tolist(), strict=True))
