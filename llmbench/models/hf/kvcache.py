"""A decode batch's key/value cache that grows in place instead of being copied every step.

transformers' ``DynamicLayer.update`` concatenates each step's new column onto the layer's
keys and values (``torch.cat``): a decode step copies the whole cache of every layer to add
one column, so its cost grows with the context (SmolLM2, 16 rows, 200 tokens of context:
4.5 ms of a 102 ms step, one thread). ``SlackLayer`` keeps the keys and values in buffers
with room for more columns and writes each new column into the room; the tensors the
attention reads are views of the buffers' used part, with the same values (the decode
loop's logits were bit-identical over 60 steps in the measurement above, where the step
took 97.5 ms).

The room is an eighth of the used length (at least ``MIN_ROOM`` columns), so the buffers
are re-made once every few steps, not once per step, and the cache holds at most an eighth
more columns than the plain one (or ``MIN_ROOM``, whichever is more). Anything that replaces
a layer's keys or values from outside — selecting rows when some leave the batch, trimming
unused leading columns, splicing in admitted rows, ``crop`` — leaves tensors that are not
the buffers' views; the next ``update`` sees that and copies them into new buffers, so every
``DynamicLayer`` operation keeps working unchanged. A copy of a layer (``copy.copy``) starts
without buffers, so two layers never write into one buffer.

Only the decode loop's batch cache is converted (``with_room``); a shared prefix's cache
stays a plain ``DynamicCache``.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import DynamicLayer

#: The fewest free columns a re-made buffer has.
MIN_ROOM = 16


class SlackLayer(DynamicLayer):
    """A ``DynamicLayer`` whose ``update`` writes into spare room (see the module docstring)."""

    _keys_buf: torch.Tensor | None = None
    _values_buf: torch.Tensor | None = None
    _used = 0

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        new = key_states.shape[-2]
        if not self._owns_views() or not self._fits(key_states, value_states):
            self._remake(key_states, value_states)
        assert self._keys_buf is not None and self._values_buf is not None
        start, end = self._used, self._used + new
        self._keys_buf[..., start:end, :] = key_states
        self._values_buf[..., start:end, :] = value_states
        self._used = end
        self.keys = self._keys_buf[..., :end, :]
        self.values = self._values_buf[..., :end, :]
        return self.keys, self.values

    def _owns_views(self) -> bool:
        """Whether the keys and values are still the views this layer last made of its
        buffers (anything that replaced them made new tensors)."""
        kb, vb = self._keys_buf, self._values_buf
        if kb is None or vb is None:
            return False
        return (self.keys is not None and self.values is not None and self.keys.shape[-2] == self._used
                and self.keys.data_ptr() == kb.data_ptr() and self.values.data_ptr() == vb.data_ptr()
                and self.keys.shape[:-2] == kb.shape[:-2] and self.values.shape[:-2] == vb.shape[:-2])

    def _fits(self, key_states: torch.Tensor, value_states: torch.Tensor) -> bool:
        kb, vb = self._keys_buf, self._values_buf
        assert kb is not None and vb is not None
        return (self._used + key_states.shape[-2] <= kb.shape[-2]
                and key_states.shape[:-2] == kb.shape[:-2] and value_states.shape[:-2] == vb.shape[:-2]
                and key_states.shape[-1] == kb.shape[-1] and value_states.shape[-1] == vb.shape[-1]
                and key_states.dtype == kb.dtype and key_states.device == kb.device)

    def _remake(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        """New buffers holding the current keys and values, with room for this update and more."""
        old_k, old_v = self.keys, self.values
        used = old_k.shape[-2] if old_k is not None and old_k.dim() == 4 else 0
        need = used + key_states.shape[-2]
        width = need + max(MIN_ROOM, need // 8)
        self._keys_buf = key_states.new_empty((*key_states.shape[:-2], width, key_states.shape[-1]))
        self._values_buf = value_states.new_empty((*value_states.shape[:-2], width, value_states.shape[-1]))
        if used:
            assert old_k is not None and old_v is not None
            self._keys_buf[..., :used, :] = old_k
            self._values_buf[..., :used, :] = old_v
        self._used = used

    def __copy__(self) -> SlackLayer:
        """A copy without the buffers: its first ``update`` makes its own."""
        twin = SlackLayer.__new__(SlackLayer)
        twin.__dict__.update(self.__dict__)
        twin._keys_buf = twin._values_buf = None
        twin._used = 0
        return twin


def with_room(cache: Any) -> Any:
    """Turn ``cache``'s plain ``DynamicLayer`` layers into ``SlackLayer`` in place (the same
    tensors; the first ``update`` makes the buffers) and return it."""
    layers = getattr(cache, "layers", None)
    if layers is None:
        return cache
    for k, layer in enumerate(layers):
        if type(layer) is DynamicLayer:
            slack = SlackLayer.__new__(SlackLayer)
            slack.__dict__.update(layer.__dict__)
            layers[k] = slack
    return cache
