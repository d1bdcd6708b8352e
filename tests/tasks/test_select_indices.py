"""``select_indices``: the one seeded-subset rule behind ``--limit`` and fine-tuning's caps."""

from __future__ import annotations

import random

from llmbench.tasks.base import select_indices


def test_a_seeded_prefix_of_one_permutation_in_dataset_order() -> None:
    order = list(range(50))
    random.Random(7).shuffle(order)  # the documented rule, computed independently
    assert list(select_indices(50, 10, 7)) == sorted(order[:10])
    assert list(select_indices(50, 10, 8)) != list(select_indices(50, 10, 7))


def test_caps_nest_and_no_cap_keeps_everything() -> None:
    small, large = set(select_indices(100, 10, 3)), set(select_indices(100, 40, 3))
    assert small < large
    assert list(select_indices(5, None, 0)) == list(select_indices(5, 5, 0)) == [0, 1, 2, 3, 4]

