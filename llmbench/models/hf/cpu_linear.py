"""A float32 model's linear layers on CPU through oneDNN, each weight packed once at load.

Why: a decode step multiplies a few rows (the batch, one token each) by every weight matrix.
PyTorch's ``nn.Linear`` on CPU calls MKL's ``sgemm``, which re-reads each weight in its stored
layout on every call; for 16 rows that ran at about two thirds of the speed the same machine
reaches with the weights laid out once in oneDNN's blocked format (measured on SmolLM2-135M, one thread:
a batch-16 decode step 139 → 96 ms; a 2,400-token prefill GEMM 48 → 40 ms; the greedy tokens
identical). This is what PyTorch's own compiler does for CPU inference ("freezing":
``mkldnn._reorder_linear_weight`` once, ``mkldnn._linear_pointwise`` per call), without
compiling anything.

The answers change by float noise only, as with a different batch size: a different summation
order, about 1e-6 of each layer's output, which SmolLM2's 30 layers turn into log-probabilities
up to 1e-4 apart. A row's values do not depend on the rows beside it from two rows up (MKL's
from four: below that both switch to a matrix-vector kernel). The packed weights are a second
copy of the linear weights (the originals stay: tied embeddings, ``state_dict`` and any other
reader need them), so ``auto`` packs only models whose linear weights fit ``AUTO_MAX_BYTES``.
Models on other devices or dtypes, and a PyTorch build without oneDNN, keep ``nn.Linear`` as it is.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

log = logging.getLogger(__name__)

CpuLinear = Literal["auto", "onednn", "torch"]
#: ``auto`` packs a model whose linear weights take at most this many bytes (a second copy
#: of 2 GiB is affordable where a float32 model that size runs on a CPU at all).
AUTO_MAX_BYTES = 2 * 1024**3


def onednn_available() -> bool:
    """Whether this PyTorch build has the two oneDNN operators (CPU builds for x86 and Arm do)."""
    import torch

    ops = torch.ops.mkldnn
    return (torch.backends.mkldnn.is_available() and hasattr(ops, "_reorder_linear_weight")
            and hasattr(ops, "_linear_pointwise"))


def pack_linears(model: Any, mode: CpuLinear, *, batch_hint: int = 16) -> int:
    """Route each ``nn.Linear`` of ``model`` (CPU, float32) through a oneDNN-packed copy of its
    weight; returns how many were packed (0 where ``mode``, the device, the dtype or the
    PyTorch build says no, logged at INFO). ``batch_hint`` is the row count oneDNN tunes the
    layout for (any count of rows runs on it); the adapter keeps the default, so the values
    never depend on a batching option."""
    import torch

    if mode == "torch":
        return 0
    layers = [m for m in model.modules() if type(m) is torch.nn.Linear]
    if not layers:
        return 0
    weights = [m.weight for m in layers]
    if any(w.device.type != "cpu" or w.dtype != torch.float32 for w in weights):
        return 0
    if not onednn_available():
        log.info("linear layers run through torch.nn.Linear: this PyTorch build has no oneDNN")
        return 0
    size = sum(w.numel() * w.element_size() for w in weights)
    if mode == "auto" and size > AUTO_MAX_BYTES:
        log.info("linear layers run through torch.nn.Linear: packing them for oneDNN would take "
                 "another %.1f GiB (cpu_linear: onednn packs them anyway)", size / 1024**3)
        return 0
    with torch.no_grad():
        try:
            packed = [torch.ops.mkldnn._reorder_linear_weight(w.detach(), batch_hint) for w in weights]
        except RuntimeError as err:  # a shape or build oneDNN refuses: all layers stay as they are
            log.info("linear layers run through torch.nn.Linear: oneDNN could not pack them (%s)", err)
            return 0
    for layer, weight in zip(layers, packed, strict=True):
        _route(layer, weight)
    return len(layers)


def _route(layer: Any, packed: Any) -> None:
    """``layer.forward`` on the packed weight, as an instance attribute (``nn.Module.__call__``
    and its hooks run as before; ``vars(layer)`` shows it)."""
    import torch

    bias = layer.bias.detach() if layer.bias is not None else None
    linear = torch.nn.functional.linear
    pointwise = torch.ops.mkldnn._linear_pointwise

    def forward(x: torch.Tensor) -> torch.Tensor:
        # With gradients on (training) or another dtype (autocast) it goes the stock way:
        # the packed copy is frozen and float32. Scoring and generation run in inference mode.
        if torch.is_grad_enabled() or x.dtype is not torch.float32 or torch.is_autocast_enabled("cpu"):
            return linear(x, layer.weight, layer.bias)
        return pointwise(x, packed, bias, "none", [], "")

    layer.forward = forward
