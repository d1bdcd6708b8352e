"""Small, seeded, offline corpora shared by the metric tests."""

from __future__ import annotations

import random

import pytest

WORDS = (
    "the", "a", "cat", "dog", "sat", "on", "mat", "quickly", "river", "bank", "money", "moved",
    "slowly", "over", "under", "bridge", "city", "night", "light", "green", "red", "house",
    "people", "said", "that", "this", "was", "not", "very", "good", "bad", "news",
)


def make_parallel(n: int, seed: int = 0, max_refs: int = 1) -> tuple[list[str], list[list[str]]]:
    """Hypotheses that are noisy copies of their first reference (non-trivial BLEU/ROUGE)."""
    rng = random.Random(seed)
    hyps: list[str] = []
    refs: list[list[str]] = []
    for _ in range(n):
        sample_refs = []
        for _ in range(rng.randint(1, max_refs)):
            words = [rng.choice(WORDS) for _ in range(rng.randint(3, 14))]
            if rng.random() < 0.5:
                words[-1] += rng.choice([".", "!", "?"])
                words += [rng.choice(WORDS) for _ in range(rng.randint(2, 6))]
            sample_refs.append(" ".join(words).capitalize() + ".")
        hyp = [w if rng.random() < 0.7 else rng.choice(WORDS) for w in sample_refs[0].split()]
        if rng.random() < 0.3:
            hyp = hyp[: max(1, len(hyp) - rng.randint(1, 3))]
        hyps.append(" ".join(hyp))
        refs.append(sample_refs)
    return hyps, refs


@pytest.fixture(scope="session")
def parallel() -> tuple[list[str], list[list[str]]]:
    return make_parallel(300, seed=1)


@pytest.fixture(scope="session")
def parallel_multi() -> tuple[list[str], list[list[str]]]:
    return make_parallel(300, seed=2, max_refs=3)
