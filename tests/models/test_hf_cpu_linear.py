"""oneDNN-packed linear layers on CPU (``llmbench.models.hf.cpu_linear``): the same values as
``nn.Linear`` to float noise, each row independent of the rows beside it, the stock path
wherever the packed copy cannot serve (gradients, another dtype), and the adapter's option."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from llmbench.models.hf import cpu_linear  # noqa: E402
from llmbench.models.hf.adapter import HFAdapter, HFConfig  # noqa: E402
from llmbench.testing import build_tiny_mistral, random_mistral  # noqa: E402
from llmbench.types import GenerationConfig, Request  # noqa: E402

needs_onednn = pytest.mark.skipif(not cpu_linear.onednn_available(), reason="this PyTorch has no oneDNN")


def _packed(layer: torch.nn.Module) -> bool:
    return "forward" in vars(layer)


def _model(hidden: int = 64) -> torch.nn.Module:
    model, _ = random_mistral(seed=3, sliding_window=None, hidden_size=hidden)
    return model.eval()


@needs_onednn
def test_packed_linears_give_nn_linears_values_to_float_noise() -> None:
    model = _model()
    ids = torch.randint(3, 250, (4, 12), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        stock = model(ids).logits
    layers = [m for m in model.modules() if type(m) is torch.nn.Linear]
    assert cpu_linear.pack_linears(model, "onednn") == len(layers) == 2 * 7 + 1
    assert all(_packed(m) for m in layers)
    with torch.inference_mode():
        packed = model(ids).logits
    assert torch.allclose(packed, stock, rtol=1e-5, atol=1e-5)
    assert torch.equal(packed.argmax(-1), stock.argmax(-1))


@needs_onednn
@pytest.mark.parametrize("shape", [(96, 64), (64, 160), (300, 64), (48, 1536)])
def test_a_rows_result_does_not_depend_on_the_rows_beside_it(shape: tuple[int, int]) -> None:
    """As with MKL, a row's output is the same whatever the batch (2 or more rows: the
    decode loop drops and admits rows, and a sample's answer must not depend on that)."""
    gen = torch.Generator().manual_seed(1)
    layer = torch.nn.Linear(shape[1], shape[0])
    with torch.no_grad():
        layer.weight.copy_(torch.randn(shape, generator=gen))
    model = torch.nn.Sequential(layer)
    assert cpu_linear.pack_linears(model, "onednn") == 1
    x = torch.randn(40, shape[1], generator=gen)
    with torch.inference_mode():
        whole = layer(x)
        for rows in (2, 3, 7, 16, 17, 33):
            assert torch.equal(layer(x[:rows]), whole[:rows]), rows
        assert torch.allclose(whole, torch.nn.functional.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-4)


@needs_onednn
def test_with_gradients_on_a_packed_layer_computes_the_stock_way() -> None:
    layer = torch.nn.Linear(32, 48)
    cpu_linear.pack_linears(torch.nn.Sequential(layer), "onednn")
    x = torch.randn(5, 32, requires_grad=True)
    out = layer(x)
    assert out.grad_fn is not None
    assert torch.equal(out, torch.nn.functional.linear(x, layer.weight, layer.bias))
    out.sum().backward()
    assert x.grad is not None
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):  # autocast: bf16 as asked
        assert layer(x.detach()).dtype == torch.bfloat16


def test_what_is_not_packed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert cpu_linear.pack_linears(_model(), "torch") == 0
    assert cpu_linear.pack_linears(_model().to(torch.bfloat16), "onednn") == 0
    if cpu_linear.onednn_available():
        monkeypatch.setattr(cpu_linear, "AUTO_MAX_BYTES", 1000)
        assert cpu_linear.pack_linears(_model(), "auto") == 0  # a second copy would exceed the cap
        assert cpu_linear.pack_linears(_model(), "onednn") > 0  # asked for: packed anyway
        def refuse(weight: torch.Tensor, rows: int) -> torch.Tensor:
            raise RuntimeError("oneDNN says no")

        with monkeypatch.context() as patch:  # one refused weight: every layer stays stock
            patch.setattr(torch.ops.mkldnn, "_reorder_linear_weight", refuse)
            model = _model()
            assert cpu_linear.pack_linears(model, "onednn") == 0
            assert not any(_packed(m) for m in model.modules())
    monkeypatch.setattr(cpu_linear, "onednn_available", lambda: False)
    model = _model()
    assert cpu_linear.pack_linears(model, "onednn") == 0
    assert not any(_packed(m) for m in model.modules())


@needs_onednn
def test_the_adapter_packs_on_cpu_in_float32_and_answers_the_same(tmp_path: Path) -> None:
    folder = build_tiny_mistral(tmp_path / "m", sliding_window=None)
    requests = [Request(sample_id=str(i), kind="generate", prompt=p, config=GenerationConfig(max_new_tokens=12))
                for i, p in enumerate(["the cat sat on", "a film about", "it was the best of", "once"])]
    answers = {}
    for mode in ("auto", "torch"):
        adapter = HFAdapter(HFConfig(path=str(folder), cpu_linear=mode))
        packed = [_packed(m) for m in adapter.runtime.model.modules() if type(m) is torch.nn.Linear]
        assert packed and all(packed) == (mode == "auto") and any(packed) == (mode == "auto")
        answers[mode] = [r.text for _, r in sorted(adapter.run(requests), key=lambda x: x[0])]
        assert adapter.identity() == HFAdapter(HFConfig(path=str(folder))).identity()  # float noise only
    assert answers["auto"] == answers["torch"]
