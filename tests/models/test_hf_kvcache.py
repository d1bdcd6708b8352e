"""``SlackLayer`` holds exactly what transformers' ``DynamicLayer`` holds, without a copy per step.

The reference is transformers' own ``DynamicLayer`` driven through the same sequence of
operations the decode loop performs (one-column updates, a multi-column prefill, rows leaving,
leading columns trimmed, admitted rows spliced in, a crop): after every update both must
return equal keys and values. The point of the layer — the buffers are written in place, not
re-made every step — and the safety of copies are checked on their own.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from transformers.cache_utils import DynamicCache, DynamicLayer, DynamicSlidingWindowLayer

from llmbench.models.hf.kvcache import MIN_ROOM, SlackLayer, with_room
from llmbench.models.hf.score import cache_problem

HEADS, DIM = 2, 4


def _kv(rows: int, cols: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.randn(rows, HEADS, cols, DIM, generator=gen), torch.randn(rows, HEADS, cols, DIM, generator=gen))


def _both(plain: DynamicLayer, slack: SlackLayer, k: torch.Tensor, v: torch.Tensor) -> None:
    want_k, want_v = plain.update(k, v)
    got_k, got_v = slack.update(k, v)
    assert torch.equal(got_k, want_k) and torch.equal(got_v, want_v)
    assert slack.get_seq_length() == plain.get_seq_length()


def _replace(layer: DynamicLayer, keys: torch.Tensor, values: torch.Tensor) -> None:
    layer.keys, layer.values = keys, values


def test_slack_layer_matches_dynamic_layer_through_the_decode_loops_operations() -> None:
    gen = torch.Generator().manual_seed(0)
    plain, slack = DynamicLayer(), SlackLayer()
    rows = 3
    _both(plain, slack, *_kv(rows, 7, gen))                # a prefill of 3 rows, 7 columns
    for step in range(60):                                 # decode steps, through several re-makes
        _both(plain, slack, *_kv(rows, 1, gen))
        if step == 20:                                     # a row leaves the batch
            at = torch.tensor([0, 2])
            plain.batch_select_indices(at)
            slack.batch_select_indices(at)
            rows = 2
        if step == 30:                                     # leading columns no row uses any more
            for layer in (plain, slack):
                _replace(layer, layer.keys[..., 5:, :], layer.values[..., 5:, :])
        if step == 40:                                     # admitted rows spliced in, narrower cache widened
            extra_k, extra_v = _kv(2, 9, gen)
            for layer in (plain, slack):
                width = layer.keys.shape[-2]
                _replace(layer, torch.cat([layer.keys, F.pad(extra_k, (0, 0, width - 9, 0))]),
                         torch.cat([layer.values, F.pad(extra_v, (0, 0, width - 9, 0))]))
            rows = 4
        if step == 50:
            plain.crop(-3)
            slack.crop(-3)
    _both(plain, slack, *_kv(rows, 5, gen))                # a multi-column update on top
    assert slack.keys.shape[0] == 4


def test_decode_steps_write_into_the_buffer_instead_of_copying_the_cache() -> None:
    gen = torch.Generator().manual_seed(1)
    slack = SlackLayer()
    slack.update(*_kv(4, 200, gen))
    remakes, buffer = 0, slack._keys_buf
    for _ in range(100):
        slack.update(*_kv(4, 1, gen))
        if slack._keys_buf is not buffer:
            remakes, buffer = remakes + 1, slack._keys_buf
    # room for max(MIN_ROOM, used // 8) columns: 100 steps from 200 columns re-make at most 4 times
    assert MIN_ROOM <= 25
    assert 1 <= remakes <= 4
    assert slack.keys.data_ptr() == slack._keys_buf.data_ptr()
    assert slack._keys_buf.shape[-2] <= slack.keys.shape[-2] + max(MIN_ROOM, slack.keys.shape[-2] // 8)


def test_a_copy_and_its_original_never_write_into_one_buffer() -> None:
    gen = torch.Generator().manual_seed(2)
    plain, slack = DynamicLayer(), SlackLayer()
    _both(plain, slack, *_kv(2, 6, gen))
    _both(plain, slack, *_kv(2, 1, gen))
    plain_twin, twin = copy.copy(plain), copy.copy(slack)
    for _ in range(3):                                     # both would write the same spare columns if shared
        _both(plain_twin, twin, *_kv(2, 1, gen))
        _both(plain, slack, *_kv(2, 1, gen))
    assert torch.equal(twin.keys, plain_twin.keys) and torch.equal(twin.values, plain_twin.values)
    assert torch.equal(slack.keys, plain.keys) and torch.equal(slack.values, plain.values)


@pytest.mark.parametrize("sliding", [False, True])
def test_with_room_converts_only_plain_layers_and_the_cache_stays_shareable(sliding: bool) -> None:
    gen = torch.Generator().manual_seed(3)
    cache = DynamicCache()
    cache.layers = [DynamicLayer(), DynamicSlidingWindowLayer(sliding_window=4) if sliding else DynamicLayer()]
    for idx in range(2):
        cache.update(*_kv(2, 3, gen), idx)
    kept = [layer.keys for layer in cache.layers]
    assert with_room(cache) is cache
    assert type(cache.layers[0]) is SlackLayer
    assert type(cache.layers[1]) is (DynamicSlidingWindowLayer if sliding else SlackLayer)
    assert all(layer.keys is k for layer, k in zip(cache.layers, kept, strict=True))  # same tensors, no copy
    problem = cache_problem(cache)
    assert (problem is not None and "DynamicSlidingWindowLayer" in problem) if sliding else problem is None
