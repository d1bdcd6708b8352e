"""Input perturbations: seeded, deterministic, label-preserving transforms of a sample's input.

Why: "which model is best?" is followed by "would it still be best on messier input?". HELM
answers with perturbations of the input; so does this module. A perturbation rewrites only
``Sample.input`` (what ``{{ input }}`` renders) of the evaluated samples — never the
reference, the choices, the context passage (extractive answers live there) or the few-shot
examples — so the gold answer stays right by construction. Each perturbation has a stable
name and parameters; both, with the seed, enter the perturbed task's fingerprint.

Determinism: every random choice comes from ``random.Random`` seeded with a SHA-256 of
(seed, perturbation label, sample id) — never Python's salted ``hash`` — so the same seed gives
byte-identical prompts in any process and a sample's perturbation never depends on which
other samples are in the run.

Perturbations (spec ``name`` or ``name:key=value,...``):

* ``typo:rate=0.05`` — each letter, with probability ``rate``, becomes a neighbouring key on a
  QWERTY keyboard (case kept);
* ``case:mode=lower`` — ``lower``, ``upper``, ``title``, or ``random`` (each letter's case
  flipped with probability ``rate``);
* ``whitespace:rate=0.1`` — each space becomes 2-4 spaces, a tab or a newline with probability ``rate``;
* ``punctuation:rate=0.2`` — each of ``.,;:!?'"`` is dropped, or doubled, with probability ``rate``;
* ``contraction`` / ``expansion`` — "do not" <-> "don't" and the like, every occurrence
  (only pairs whose expansion is unambiguous; "'s", "'d" are never expanded);
* ``confusables:rate=0.1`` — a Latin letter becomes a Unicode look-alike (Cyrillic а, е, о, р,
  с, х, у, і, ј, ѕ; Greek ο, ν) with probability ``rate``.

Synonym substitution is not offered: it needs a thesaurus (WordNet through nltk's data) that
no installed package ships offline.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmbench.errors import UserError
from llmbench.types import Sample

#: Separates the clean task's name from the perturbation in a perturbed run's task name.
SEP = "~"


class PerturbationError(UserError, ValueError):
    """An unknown perturbation or a bad parameter; one line naming it and the valid choices. A
    ValueError too, so a task file's schema check reports it with the file and the key."""


_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _neighbours() -> dict[str, str]:
    out: dict[str, str] = {}
    for r, row in enumerate(_ROWS):
        for c, ch in enumerate(row):
            near = [row[c + d] for d in (-1, 1) if 0 <= c + d < len(row)]
            for rr in (r - 1, r + 1):
                if 0 <= rr < len(_ROWS):
                    near += [_ROWS[rr][cc] for cc in (c - 1, c, c + 1) if 0 <= cc < len(_ROWS[rr])]
            out[ch] = "".join(near)
    return out


NEIGHBOURS = _neighbours()
CONFUSABLES = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "y": "у", "i": "і", "j": "ј",
               "s": "ѕ", "v": "ν", "A": "А", "B": "В", "C": "С", "E": "Е", "H": "Н", "K": "К", "M": "М",
               "O": "О", "P": "Р", "T": "Т", "X": "Х"}
# Unambiguous pairs only (HELM's rule): "he's" could be "he is" or "he has", so it is never expanded.
CONTRACTIONS = {"do not": "don't", "does not": "doesn't", "did not": "didn't", "is not": "isn't",
                "are not": "aren't", "was not": "wasn't", "were not": "weren't", "have not": "haven't",
                "has not": "hasn't", "had not": "hadn't", "will not": "won't", "would not": "wouldn't",
                "could not": "couldn't", "should not": "shouldn't", "cannot": "can't", "must not": "mustn't",
                "I am": "I'm", "you are": "you're", "we are": "we're", "they are": "they're",
                "I have": "I've", "you have": "you've", "we have": "we've", "they have": "they've",
                "I will": "I'll", "you will": "you'll", "we will": "we'll", "they will": "they'll",
                "it is": "it's", "that is": "that's", "there is": "there's", "let us": "let's"}
_PUNCT = ".,;:!?'\""


def _rng(seed: int, label: str, sample_id: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x00{label}\x00{sample_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


def _typo(text: str, rng: random.Random, rate: float) -> str:
    out = []
    for ch in text:
        near = NEIGHBOURS.get(ch.lower())
        if near and rng.random() < rate:
            new = rng.choice(near)
            out.append(new.upper() if ch.isupper() else new)
        else:
            out.append(ch)
    return "".join(out)


def _case(text: str, rng: random.Random, mode: str, rate: float) -> str:
    if mode == "lower":
        return text.lower()
    if mode == "upper":
        return text.upper()
    if mode == "title":
        return text.title()
    return "".join(ch.swapcase() if ch.isalpha() and rng.random() < rate else ch for ch in text)


def _whitespace(text: str, rng: random.Random, rate: float) -> str:
    choices = ("  ", "   ", "    ", "\t", "\n")
    return "".join(rng.choice(choices) if ch == " " and rng.random() < rate else ch for ch in text)


def _punctuation(text: str, rng: random.Random, rate: float) -> str:
    out = []
    for ch in text:
        if ch in _PUNCT and rng.random() < rate:
            out.append("" if rng.random() < 0.5 else ch * 2)
        else:
            out.append(ch)
    return "".join(out)


def _swap(text: str, table: Mapping[str, str]) -> str:
    """Replace every whole-word occurrence of a key (first letter's case kept)."""
    pattern = re.compile(r"\b(" + "|".join(re.escape(k) for k in sorted(table, key=len, reverse=True)) + r")\b",
                         re.IGNORECASE)
    lowered = {k.lower(): v for k, v in table.items()}

    def repl(m: re.Match[str]) -> str:
        found = m.group(0)
        new = lowered[found.lower()]
        if found[0].isupper() and not new[0].isupper():
            new = new[0].upper() + new[1:]
        return new

    return pattern.sub(repl, text)


def _confusables(text: str, rng: random.Random, rate: float) -> str:
    return "".join(CONFUSABLES[ch] if ch in CONFUSABLES and rng.random() < rate else ch for ch in text)


@dataclass(frozen=True)
class Kind:
    """A perturbation family: its parameters with defaults and its transform."""

    params: Mapping[str, Any]
    apply: Callable[..., str]


KINDS: dict[str, Kind] = {
    "typo": Kind({"rate": 0.05}, lambda t, rng, rate: _typo(t, rng, rate)),
    "case": Kind({"mode": "lower", "rate": 0.5}, lambda t, rng, mode, rate: _case(t, rng, mode, rate)),
    "whitespace": Kind({"rate": 0.1}, lambda t, rng, rate: _whitespace(t, rng, rate)),
    "punctuation": Kind({"rate": 0.2}, lambda t, rng, rate: _punctuation(t, rng, rate)),
    "contraction": Kind({}, lambda t, rng: _swap(t, CONTRACTIONS)),
    "expansion": Kind({}, lambda t, rng: _swap(t, {v: k for k, v in CONTRACTIONS.items()})),
    "confusables": Kind({"rate": 0.1}, lambda t, rng, rate: _confusables(t, rng, rate)),
}
CASE_MODES = ("lower", "upper", "title", "random")


@dataclass(frozen=True)
class Perturbation:
    """One configured perturbation; ``label`` is its stable name in task names and reports."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0

    @property
    def label(self) -> str:
        shown = {k: v for k, v in sorted(self.params.items()) if v != KINDS[self.name].params[k]}
        inner = ",".join(f"{k}={v}" for k, v in shown.items())
        return f"{self.name}({inner})" if inner else self.name

    def identity(self) -> dict[str, Any]:
        """What enters the perturbed task's fingerprint (every parameter, defaults included)."""
        return {"name": self.name, "params": dict(sorted(self.params.items())), "seed": self.seed, "version": 1}

    def text(self, text: str, sample_id: str) -> str:
        rng = _rng(self.seed, self.label, sample_id)
        return str(KINDS[self.name].apply(text, rng, **self.params))

    def sample(self, s: Sample) -> Sample:
        return s.model_copy(update={"input": self.text(s.input, s.id)})


def _value(kind: str, key: str, raw: Any) -> Any:
    default = KINDS[kind].params[key]
    if isinstance(default, float):
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise PerturbationError(f"perturbation '{kind}': {key}={raw!r} is not a number — give e.g. "
                                    f"{key}={default}") from None
        if not 0.0 <= value <= 1.0:
            raise PerturbationError(f"perturbation '{kind}': {key}={value} must be between 0 and 1")
        return value
    if kind == "case" and str(raw) not in CASE_MODES:
        raise PerturbationError(f"perturbation 'case': mode={raw!r} — give one of {', '.join(CASE_MODES)}")
    return str(raw)


def parse(spec: str | Mapping[str, Any], *, seed: int = 0) -> Perturbation:
    """``"typo"``, ``"typo:rate=0.1"`` or ``{name: typo, rate: 0.1, seed: 3}`` -> a Perturbation."""
    if isinstance(spec, Mapping):
        raw = dict(spec)
        name = str(raw.pop("name", ""))
        seed = int(raw.pop("seed", seed))
    else:
        name, _, rest = str(spec).partition(":")
        raw = {}
        for part in filter(None, (p.strip() for p in rest.split(","))):
            key, eq, val = part.partition("=")
            if not eq:
                raise PerturbationError(f"perturbation '{spec}': '{part}' is not key=value — write e.g. typo:rate=0.05")
            raw[key.strip()] = val.strip()
    name = name.strip()
    if name not in KINDS:
        raise PerturbationError(f"unknown perturbation '{name}' — give one of {', '.join(KINDS)} "
                                "(optionally name:key=value,...)")
    unknown = sorted(set(raw) - set(KINDS[name].params))
    if unknown:
        known = ", ".join(KINDS[name].params) or "none"
        raise PerturbationError(f"perturbation '{name}': unknown parameter {unknown[0]!r} — it takes {known}")
    params = {k: _value(name, k, raw.get(k, v)) for k, v in KINDS[name].params.items()}
    return Perturbation(name=name, params=params, seed=seed)
