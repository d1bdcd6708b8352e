"""The response cache: what its key covers, and that failures are never cached."""

from __future__ import annotations

from pathlib import Path

from llmbench.cache import ResponseCache, request_key
from llmbench.types import GenerationConfig, Request, Response

ID = {"backend": "hf", "path": "m", "weights": "abc"}
REQ = Request(sample_id="1", kind="generate", prompt="hi", config=GenerationConfig(max_new_tokens=5))


def test_key_covers_model_task_prompt_and_decoding() -> None:
    base = request_key(ID, "t", 1, REQ)
    assert base == request_key(ID, "t", 1, REQ.model_copy(update={"sample_id": "other"}))
    variants = [
        request_key({**ID, "weights": "def"}, "t", 1, REQ),
        request_key(ID, "t", 2, REQ),
        request_key(ID, "u", 1, REQ),
        request_key(ID, "t", 1, REQ.model_copy(update={"prompt": "hi!"})),
        request_key(ID, "t", 1, REQ.model_copy(update={"config": GenerationConfig(max_new_tokens=6)})),
        request_key(ID, "t", 1, REQ.model_copy(update={"config": GenerationConfig(max_new_tokens=5, temperature=0.7)})),
    ]
    assert len({base, *variants}) == 1 + len(variants)


def test_roundtrip_marks_cached_and_skips_errors(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "c.sqlite")
    cache.put("k1", Response(text="out", latency_s=0.5))
    cache.put("k2", Response(error="boom"))
    cache.close()
    again = ResponseCache(tmp_path / "c.sqlite")
    got = again.get_many(["k1", "k2", "k3"])
    assert set(got) == {"k1"}
    assert got["k1"].text == "out" and got["k1"].cached and got["k1"].latency_s == 0.5
