"""Corpus BLEU, chrF and TER from sacrebleu, bootstrapped by re-summing segment statistics.

sacrebleu scores a corpus from the sum of per-segment sufficient statistics (n-gram
matches and totals, lengths). We store each segment's statistics as computed by
sacrebleu itself (``_extract_corpus_statistics``) and reduce with sacrebleu's
``_aggregate_and_compute`` / ``_compute_score_from_stats``, so the point value is exactly
``sacrebleu.corpus_bleu`` / ``corpus_chrf`` / ``corpus_ter`` and each bootstrap resample
only re-sums the statistics (integers; TER's are an edit count and an average reference
length, a float with several references). Segment statistics do not depend on other segments, so samples may have
different numbers of references (sacrebleu's ``None`` padding is not needed here).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
from sacrebleu.metrics import BLEU, CHRF, TER

from llmbench.errors import one_line
from llmbench.metrics.base import Declaration, Metric, MetricError, Stats, require_references


class _SacreMetric(Metric, abstract=True):
    """Shared plumbing: stats are sacrebleu's flat integer list under named keys."""

    value_name: str
    _metric: BLEU | CHRF | TER
    _keys: tuple[str, ...]

    def sample_stats(self, *, prediction: str, references: Sequence[str]) -> dict[str, Any]:
        require_references(self.name, references)
        (segment,) = self._metric._extract_corpus_statistics([prediction], [[r] for r in references])
        out: dict[str, Any] = dict(zip(self._keys, (int(x) for x in segment), strict=True))
        out["nrefs"] = len(references)
        return out

    def _matrix(self, stats: Stats) -> np.ndarray:
        return np.array([[s[k] for k in self._keys] for s in stats], dtype=np.float64)

    def score(self, stats: Stats, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        if weights is None:
            segments: list[Any] = [[int(s[k]) for k in self._keys] for s in stats]
            value = self._metric._aggregate_and_compute(segments).score
            return {self.value_name: np.array([value], dtype=np.float64)}
        # Counts and multiplicities are integers; float64 BLAS sums them exactly (< 2**53).
        totals = np.rint(weights @ self._matrix(stats)).astype(np.int64)
        scores = [self._metric._compute_score_from_stats(row).score for row in totals.tolist()]
        return {self.value_name: np.asarray(scores, dtype=np.float64)}

    def primary(self) -> str:
        return self.value_name

    def signature(self, stats: Stats) -> str:
        """sacrebleu's own signature; nrefs is resolved from the stored per-sample counts."""
        counts = {int(s["nrefs"]) for s in stats}
        self._metric.num_refs = counts.pop() if len(counts) == 1 else -1
        return self._metric.get_signature().format()


_Sacre = TypeVar("_Sacre", BLEU, CHRF, TER)


def _build(cls: type[_Sacre], name: str, args: dict[str, Any]) -> _Sacre:
    try:
        return cls(**args)
    except Exception as exc:  # sacrebleu raises KeyError/AssertionError/ImportError/TypeError
        raise MetricError(
            f"bad arguments {args} for metric {name!r}: {one_line(repr(exc))}; "
            f"see sacrebleu.metrics.{cls.__name__} for valid arguments"
        ) from exc


#: Target languages whose BLEU tokenizer is not ``13a`` (sacrebleu's ``-l`` / ``trg_lang``
#: mapping), with the extra that provides the tokenizer when it needs one.
LANGUAGE_TOKENIZERS: dict[str, tuple[str, str | None]] = {
    "zh": ("zh", None),
    "ja": ("ja-mecab", "sacrebleu[ja]"),
    "ko": ("ko-mecab", "sacrebleu[ko]"),
}


def tokenizer_for(language: str | None) -> str:
    """BLEU's tokenizer for a target language, as sacrebleu's command line picks it with
    ``-l``: zh -> zh, ja -> ja-mecab, ko -> ko-mecab, anything else (or none) -> 13a.
    A region or script subtag is ignored (``zh-Hant`` is Chinese)."""
    base = (language or "").split("-")[0].lower()
    return LANGUAGE_TOKENIZERS[base][0] if base in LANGUAGE_TOKENIZERS else "13a"


def _check_tokenizer_installed(name: str, language: str) -> None:
    """ja-mecab / ko-mecab need MeCab packages; say so in one line rather than let
    sacrebleu print a multi-line install hint (or fall back to a tokenizer that scores
    Japanese as one token per sentence)."""
    extra = next((x for tok, x in LANGUAGE_TOKENIZERS.values() if tok == name), None)
    if extra is None:
        return
    try:
        BLEU(tokenize=name)
    except (ImportError, RuntimeError) as exc:
        raise MetricError(
            f"metric 'bleu': the task's language {language!r} is tokenized with {name}, which "
            f"is not installed — pip install '{extra}', or set tokenize: in the task's bleu "
            "args (e.g. char)"
        ) from exc


class Bleu(_SacreMetric):
    """sacrebleu corpus BLEU (0-100). ``language`` is the target language (the task's
    ``language:`` key): it picks the tokenizer as sacrebleu's ``-l`` does (see
    ``tokenizer_for``) unless ``tokenize`` is given; the tokenizer used is in sacrebleu's
    signature (``tok:``). Other args pass through to ``sacrebleu.metrics.BLEU``: tokenize,
    lowercase, smooth_method, smooth_value, max_ngram_order, effective_order, ..."""

    value_name = "bleu"
    declaration = Declaration(values=("bleu",), scale="percent", direction="higher", indicators={},
                              stats_version=1)

    def __init__(
        self, *, labels: Sequence[str] | None = None, language: str | None = None, **args: Any
    ) -> None:
        self.name = "bleu"
        self.language = language
        if "tokenize" in args and args["tokenize"] not in BLEU.TOKENIZERS:
            raise MetricError(
                f"metric 'bleu': unknown tokenize={args['tokenize']!r}; "
                f"use one of {', '.join(BLEU.TOKENIZERS)}"
            )
        if language and "tokenize" not in args:
            args = {**args, "tokenize": tokenizer_for(language)}
            _check_tokenizer_installed(args["tokenize"], language)
        metric = self._metric = _build(BLEU, self.name, args)
        order = metric.max_ngram_order
        self._keys = (
            "hyp_len",
            "ref_len",
            *(f"correct_{n}" for n in range(1, order + 1)),
            *(f"total_{n}" for n in range(1, order + 1)),
        )


class Chrf(_SacreMetric):
    """sacrebleu corpus chrF (0-100); ``word_order=2`` gives chrF++. Args pass through to
    ``sacrebleu.metrics.CHRF``: char_order, word_order, beta, lowercase, whitespace,
    eps_smoothing."""

    value_name = "chrf"
    declaration = Declaration(values=("chrf",), scale="percent", direction="higher", indicators={},
                              stats_version=1)

    def __init__(self, *, labels: Sequence[str] | None = None, **args: Any) -> None:
        self.name = "chrf"
        metric = self._metric = _build(CHRF, self.name, args)
        grams = [f"c{n}" for n in range(1, metric.char_order + 1)]
        grams += [f"w{n}" for n in range(1, metric.word_order + 1)]
        self._keys = tuple(f"{g}_{part}" for g in grams for part in ("hyp", "ref", "match"))


class Ter(_SacreMetric):
    """sacrebleu corpus TER (translation edit rate, 0-100 and more; lower is better): the
    sum of the segments' minimum edit counts over the sum of their average reference
    lengths, times 100. Args pass through to ``sacrebleu.metrics.TER``: normalized,
    no_punct, asian_support, case_sensitive."""

    value_name = "ter"
    declaration = Declaration(values=("ter",), scale="percent", direction="lower", indicators={},
                              stats_version=1)
    _keys = ("edits", "ref_len")

    def __init__(self, *, labels: Sequence[str] | None = None, **args: Any) -> None:
        self.name = "ter"
        self._metric = _build(TER, self.name, args)

    def sample_stats(self, *, prediction: str, references: Sequence[str]) -> dict[str, Any]:
        """``edits`` (a whole number) and ``ref_len`` (the references' mean length: a float)."""
        require_references(self.name, references)
        ((edits, ref_len),) = self._metric._extract_corpus_statistics([prediction], [[r] for r in references])
        return {"edits": int(edits), "ref_len": float(ref_len), "nrefs": len(references)}

    def score(self, stats: Stats, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        if weights is None:
            segments = [[s["edits"], s["ref_len"]] for s in stats]
            return {"ter": np.array([self._metric._aggregate_and_compute(segments).score], dtype=np.float64)}
        totals = weights @ self._matrix(stats)
        scores = [self._metric._compute_score_from_stats(row).score for row in totals.tolist()]
        return {"ter": np.asarray(scores, dtype=np.float64)}
