"""Token-level access to a causal Hugging Face model for ``llmbench serve``.

``adapter.run`` answers whole text requests; an OpenAI-compatible server also needs the
model at the level of token ids: prompts given as ids (lm-evaluation-harness sends them by
default), the ids the model generated (with a final EOS, and why it stopped), and the
model's log-probability at every position of prompt and answer. Everything here works on
ids, never on re-tokenised text: a generated token holding one byte of a multi-byte
character decodes to "�", which would re-encode as three different tokens.

Prompts are encoded as the HF adapter encodes them (``hf.inputs``): the tokenizer's leading
special tokens (BOS) before plain text, none before a rendered chat template; generation
goes through the adapter's own ``hf.generate``, so a served answer equals an offline one.

Token texts come from the tokens' bytes (byte-level BPE, or SentencePiece with byte
fallback), decoded incrementally: consecutive tokens spell the decoded text, a token ending
inside a character has text ``""`` and the token completing it carries the character.
Tokenizers of another kind fall back to decoding each token alone.

Only causal LMs: an encoder-decoder has no log-probabilities for its input, and a
classifier head has no tokens at all; for those ``HFAdapter.token_scorer()`` is ``None``.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Sequence
from typing import Any, Literal

import torch

from llmbench.models.base import (
    Encoded,
    GenerateJob,
    ScoreJob,
    TokenLogprob,
    TokenScorer,
    TopToken,
)
from llmbench.models.hf import generate as hf_generate
from llmbench.models.hf.inputs import Item, encode, render_prompt
from llmbench.models.hf.load import Runtime
from llmbench.types import Prompt, Response

_ROW_CHUNK = 256


def spell(raw: bytes) -> str:
    """A token on its own: its text when its bytes are whole UTF-8 characters, otherwise
    OpenAI's ``bytes:\\xe4\\xbd`` notation (a "�" would hide which token it was)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "bytes:" + "".join(f"\\x{b:02x}" for b in raw)


class TokenBytes:
    """The bytes of each token id, read from the vocabulary rather than from ``decode``
    (which turns a partial character into "�").

    The scheme is taken from the tokenizer's decoder (byte-level BPE as GPT-2, Llama 3,
    SmolLM, Qwen; or SentencePiece's "▁" and ``<0xNN>`` byte fallback as Llama 2, Mistral),
    and every sequence is checked against the tokenizer's own ``decode``; when they differ,
    each token is decoded on its own instead.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        decoder = getattr(tokenizer, "added_tokens_decoder", {}) or {}
        self.added = {int(i): str(t.content) for i, t in decoder.items()}
        self.special = {int(i) for i in getattr(tokenizer, "all_special_ids", [])} | {
            int(i) for i, t in decoder.items() if getattr(t, "special", False)}
        self.scheme = _scheme(tokenizer)
        self._byte_of = {c: b for b, c in _bytes_to_unicode().items()}
        self._cache: dict[int, bytes] = {}

    def raw(self, token_id: int) -> bytes:
        found = self._cache.get(token_id)
        if found is None:
            found = self._cache[token_id] = self._raw(token_id)
        return found

    def _raw(self, token_id: int) -> bytes:
        if token_id in self.added:
            return self.added[token_id].encode("utf-8")
        piece = self.tokenizer.convert_ids_to_tokens(token_id)
        if isinstance(piece, str):
            if self.scheme == "byte-level" and all(c in self._byte_of for c in piece):
                return bytes(self._byte_of[c] for c in piece)
            if self.scheme == "sentencepiece":
                if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
                    return bytes([int(piece[3:5], 16)])
                return piece.replace("\u2581", " ").encode("utf-8")
        return self._alone(token_id).encode("utf-8")

    def _alone(self, token_id: int) -> str:
        return str(self.tokenizer.decode([token_id], skip_special_tokens=False,
                                         clean_up_tokenization_spaces=False))

    def pieces(self, ids: Sequence[int]) -> list[TokenLogprob]:
        """Each token's bytes and the text it completes (see the module docstring)."""
        raws = [self.raw(t) for t in ids]
        texts: list[str] = []
        dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
        for raw in raws:
            texts.append(dec.decode(raw))
        if texts:
            texts[-1] += dec.decode(b"", final=True)
        want = str(self.tokenizer.decode(list(ids), skip_special_tokens=False,
                                         clean_up_tokenization_spaces=False))
        got = "".join(texts)
        if got != want:
            first = next((i for i, t in enumerate(ids) if t not in self.special), None)
            if (self.scheme == "sentencepiece" and first is not None
                    and texts[first].startswith(" ") and got.replace(" ", "", 1) == want):
                texts[first] = texts[first][1:]  # SentencePiece drops the text's leading space
            else:
                texts = [self._alone(t) for t in ids]
        return [TokenLogprob(token_id=t, text=s, raw=r, logprob=None, special=t in self.special)
                for t, s, r in zip(ids, texts, raws, strict=True)]


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte-level alphabet: each byte as a printable character (the vocabulary of
    every byte-level BPE tokenizer is written in it)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = list(keep), 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(keep, chars, strict=True)}


def _scheme(tokenizer: Any) -> Literal["byte-level", "sentencepiece", "other"]:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return "other"
    try:
        decoder = json.loads(backend.to_str()).get("decoder") or {}
    except (ValueError, AttributeError):
        return "other"
    kinds = {decoder.get("type")} | {d.get("type") for d in decoder.get("decoders") or []}
    if "ByteLevel" in kinds:
        return "byte-level"
    if "ByteFallback" in kinds or "Metaspace" in kinds:
        return "sentencepiece"
    return "other"


class HFTokenScorer(TokenScorer):
    """Encoding, generation from ids and teacher-forced log-probabilities of a causal LM."""

    def __init__(self, rt: Runtime) -> None:
        import inspect

        self.rt = rt
        self.model, self.tokenizer = rt.model, rt.tokenizer
        self.max_length = rt.max_length
        self.max_batch_tokens = rt.max_tokens
        self.device = rt.device
        self.pad_id = rt.pad_id
        self.vocab_size = int(self.model.get_input_embeddings().num_embeddings)
        self.eos = hf_generate.eos_ids(rt)
        self.bytes = TokenBytes(self.tokenizer)
        try:
            self._logits_to_keep = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        except (TypeError, ValueError):
            self._logits_to_keep = False

    @classmethod
    def from_runtime(cls, rt: Runtime) -> HFTokenScorer | None:
        """A scorer sharing the adapter's loaded model, BOS prefix, length limit and batch
        budget; ``None`` unless the model is a causal LM."""
        if rt.arch != "causal":
            return None
        return cls(rt)

    # ---------------------------------------------------------------- encoding
    def encode(self, prompt: Prompt | Sequence[int]) -> Encoded:
        if isinstance(prompt, str) or (prompt and not isinstance(prompt[0], int)):
            text, chat = render_prompt(self.tokenizer, prompt)  # type: ignore[arg-type]
            lead = [] if chat else self.rt.prefix
            ids = lead + encode(self.tokenizer, text, special=False)
            return Encoded(ids=tuple(ids), text=text, n_lead=len(lead))
        ids = [int(t) for t in prompt if isinstance(t, int)]
        bad = [t for t in ids if not 0 <= t < self.vocab_size]
        if bad:
            raise ValueError(f"token id {bad[0]} is outside the vocabulary (0..{self.vocab_size - 1})")
        return Encoded(ids=tuple(ids), text=self.decode(ids, skip_special=False))

    def decode(self, ids: Sequence[int], *, skip_special: bool) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=skip_special,
                                         clean_up_tokenization_spaces=False))

    def pieces(self, ids: Sequence[int]) -> list[TokenLogprob]:
        return self.bytes.pieces(ids)

    # -------------------------------------------------------------- generation
    def generate(self, jobs: Sequence[GenerateJob]) -> list[Response]:
        """The adapter's own batched generation on the given ids (no truncation: the server
        refuses what does not fit), then the ids cut to the answer (see ``_behind``)."""
        items = [Item(i, list(job.prompt.ids), length=len(job.prompt.ids) + job.config.max_new_tokens,
                      text=job.prompt.text) for i, job in enumerate(jobs)]
        configs = {i: job.config for i, job in enumerate(jobs)}
        out: dict[int, Response] = dict(hf_generate.generate(self.rt, items, configs))
        results = []
        for i in range(len(jobs)):
            resp = out[i]
            if resp.token_ids is not None and resp.text is not None:
                resp = resp.model_copy(update={"token_ids": self._behind(resp.token_ids, resp.text)})
            results.append(resp)
        return results

    def _behind(self, ids: tuple[int, ...], text: str) -> tuple[int, ...]:
        """The ids behind ``text``: all of them when the text was not cut (a final EOS
        stays, so a client sees that the model ended), else the shortest run of ids whose
        text covers the answer cut before a stop string."""
        if self.decode(ids, skip_special=True) == text:
            return ids
        reach = 0
        for k, piece in enumerate(self.pieces(ids)):
            if reach >= len(text):
                return ids[:k]
            if not piece.special:
                reach += len(piece.text)
        return ids

    # ----------------------------------------------------------------- scoring
    def score(self, jobs: Sequence[ScoreJob]) -> list[list[TokenLogprob]]:
        """Entries for each job. Jobs share right-padded forwards of at most
        ``max_batch_tokens`` padded tokens (a causal model sees no difference between a
        right-padded row and the same row alone, beyond float rounding)."""
        results: dict[int, list[TokenLogprob]] = {}
        order = sorted((i for i, j in enumerate(jobs) if j.prompt_ids or j.completion_ids),
                       key=lambda i: -_length(jobs[i]))
        batch: list[int] = []
        for i in order:
            if batch and (len(batch) + 1) * _length(jobs[batch[0]]) > self.max_batch_tokens:
                results.update(self._forward(jobs, batch))
                batch = []
            batch.append(i)
        if batch:
            results.update(self._forward(jobs, batch))
        return [results.get(i, []) for i in range(len(jobs))]

    @staticmethod
    def _first_row(job: ScoreJob) -> int:
        """The first logits row a job needs: row i predicts token i + 1."""
        return max(0, (0 if job.echo else len(job.prompt_ids)) - 1)

    @torch.inference_mode()
    def _forward(self, jobs: Sequence[ScoreJob], batch: list[int]) -> dict[int, list[TokenLogprob]]:
        seqs = [list(jobs[i].prompt_ids) + list(jobs[i].completion_ids) for i in batch]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, seq in enumerate(seqs):
            ids[r, : len(seq)] = torch.tensor(seq)
            mask[r, : len(seq)] = 1
        kwargs: dict[str, Any] = {"input_ids": ids.to(self.device),
                                  "attention_mask": mask.to(self.device)}
        # Without echo only the completion's rows are needed: skip the vocabulary
        # projection of a long prompt (the biggest tensor of the forward).
        skip = min(self._first_row(jobs[i]) for i in batch)
        if skip > 0 and self._logits_to_keep:
            kwargs["logits_to_keep"] = width - skip
        else:
            skip = 0
        logits = self.model(**kwargs).logits
        return {i: self._entries(jobs[i], seqs[r], logits[r], skip) for r, i in enumerate(batch)}

    def _entries(self, job: ScoreJob, seq: list[int], logits: torch.Tensor,
                 skip: int) -> list[TokenLogprob]:
        """``logits`` holds rows ``skip..`` of one sequence; log-softmax is taken a chunk of
        rows at a time so a long echoed prompt never needs a (length × vocabulary) float32
        copy at once."""
        pieces = self.pieces(seq)
        n, start = len(seq), (0 if job.echo else len(job.prompt_ids))
        out: list[TokenLogprob] = []
        if start == 0 and n:  # nothing before the first token
            out.append(pieces[0])
        first = max(start, 1)  # the first position with a log-probability
        for lo in range(first - 1, n - 1, _ROW_CHUNK):
            rows = logits[lo - skip : min(n - 1, lo + _ROW_CHUNK) - skip].float()
            lps = rows.log_softmax(-1)
            k = min(job.top_n, lps.shape[-1])
            top_v, top_i = lps.topk(k, dim=-1) if k else (None, None)
            for j in range(lps.shape[0]):
                pos = lo + j + 1  # row lo + j predicts the token at pos
                top = self._top(top_v, top_i, j)
                p = pieces[pos]
                out.append(TokenLogprob(token_id=p.token_id, text=p.text, raw=p.raw,
                                        logprob=float(lps[j, p.token_id]), top=top,
                                        special=p.special))
        return out

    def _top(self, values: torch.Tensor | None, index: torch.Tensor | None,
             row: int) -> tuple[TopToken, ...]:
        if values is None or index is None:
            return ()
        out = []
        for v, i in zip(values[row].tolist(), index[row].tolist(), strict=True):
            raw = self.bytes.raw(int(i))
            out.append(TopToken(token_id=int(i), token=spell(raw), raw=raw, logprob=float(v)))
        return tuple(out)


def _length(job: ScoreJob) -> int:
    return len(job.prompt_ids) + len(job.completion_ids)
