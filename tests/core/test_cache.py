"""The response cache: what its key covers, and that failures are never cached."""

from __future__ import annotations

from pathlib import Path

from llmbench.cache import ResponseCache, request_key, request_keys
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


def test_a_large_group_is_written_whole_in_multi_row_statements(tmp_path: Path) -> None:
    """700 answers in one group (several 256-row INSERTs, the last one short), a key put twice
    keeps its last answer, as ``INSERT OR REPLACE`` row by row did."""
    cache = ResponseCache(tmp_path / "c.sqlite", commit_every=10_000, commit_seconds=1e9)
    for i in range(700):
        cache.put(f"k{i}", Response(text=f"a{i}"))
    cache.put("k5", Response(text="again"))
    cache.close()
    got = ResponseCache(tmp_path / "c.sqlite").get_many([f"k{i}" for i in range(701)])
    assert len(got) == 700 and got["k699"].text == "a699" and got["k5"].text == "again"
    assert all(got[f"k{i}"].text == f"a{i}" for i in range(700) if i != 5)


def test_no_write_lock_is_held_between_groups(tmp_path: Path) -> None:
    """Before: ``put`` opened a write transaction that stayed open until the next commit, so
    a second process writing the cache during a slow model batch waited (then failed with
    ``database is locked``). Now answers wait in memory and the file stays unlocked."""
    import sqlite3

    cache = ResponseCache(tmp_path / "c.sqlite", commit_every=64, commit_seconds=3600)
    cache.put("k1", Response(text="out"))  # buffered, below the group size
    other = sqlite3.connect(tmp_path / "c.sqlite", timeout=0, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # would raise 'database is locked' if the cache held the lock
    other.execute("INSERT INTO responses VALUES ('k9', '{}')")
    other.execute("COMMIT")
    cache.flush()
    assert set(cache.get_many(["k1", "k9"])) == {"k1", "k9"}
    cache.close()


def test_a_write_waits_for_another_writer_then_succeeds(tmp_path: Path) -> None:
    import sqlite3
    import threading
    import time

    cache = ResponseCache(tmp_path / "c.sqlite", commit_every=1)
    other = sqlite3.connect(tmp_path / "c.sqlite", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    threading.Thread(target=lambda: (time.sleep(0.5), other.execute("COMMIT")), daemon=True).start()
    cache.put("k1", Response(text="out"))  # blocks on the other writer, then commits
    assert "k1" in cache.get_many(["k1"])


def test_a_cache_that_cannot_be_used_is_one_line(tmp_path: Path) -> None:
    import pytest

    from llmbench.cache import CacheError

    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(CacheError, match=r"is not a folder .* LLMBENCH_CACHE") as err:
        ResponseCache(tmp_path / "file" / "responses.sqlite")
    assert "\n" not in str(err.value)
    (tmp_path / "bad.sqlite").write_bytes(b"garbage, not SQLite" * 100)
    with pytest.raises(CacheError, match=r"bad.sqlite': file is not a database — .*delete it"):
        ResponseCache(tmp_path / "bad.sqlite")
    (tmp_path / "dir.sqlite").mkdir()
    with pytest.raises(CacheError, match="is a folder"):
        ResponseCache(tmp_path / "dir.sqlite")


# -- every option that can change an answer is in the key (issue 28, item 1) ---------------------

# A different value for each answer-changing HF option (its default is the other side).
HF_TOGGLES = {"max_length": 64, "trust_remote_code": True, "revision": "v2", "arch": "seq2seq",
              "dtype": "bfloat16"}
# Options an adapter over the tiny folder cannot be built with here (no GPU, no GGUF file; the
# path is the folder itself): identity() records each of them, see HFAdapter.identity.
HF_UNBUILDABLE = {"device", "path", "gguf_file"}
# Neutral options that are not counts (a count is toggled by adding one).
HF_NEUTRAL_TOGGLES = {"cpu_linear": "torch"}


def test_every_hf_option_is_classified_and_each_answer_changing_one_misses_the_cache(tiny_gpt2: Path) -> None:
    """Before: ``--model-arg max_length=64`` after a full-window run answered 8 hit / 0 miss
    with the full-window perplexities. Now every field of ``HFConfig`` is either recorded by
    identity, declared neutral, or keyed automatically; a new field that nobody classifies is
    answer-changing (this test then asks for a toggle for it)."""
    from llmbench.models.hf.adapter import HFAdapter, HFConfig

    answer_changing = set(HFConfig.model_fields) - HFConfig.NEUTRAL
    untoggled = answer_changing - set(HF_TOGGLES) - HF_UNBUILDABLE
    assert not untoggled, (f"new HFConfig option(s) {sorted(untoggled)}: add a toggle here, or declare them "
                           "in HFConfig.NEUTRAL if they cannot change an answer")
    base = HFAdapter(HFConfig(path=str(tiny_gpt2)))
    key = request_key(base.cache_identity(), "t", 1, REQ)
    for name, value in HF_TOGGLES.items():
        other = HFAdapter(HFConfig.model_validate({"path": str(tiny_gpt2), name: value}))
        assert request_key(other.cache_identity(), "t", 1, REQ) != key, f"{name}={value!r} hit the cache"
    for name in sorted(HFConfig.NEUTRAL):
        default = HFConfig.model_fields[name].get_default()
        value = HF_NEUTRAL_TOGGLES[name] if name in HF_NEUTRAL_TOGGLES else default + 1
        assert value != default
        other = HFAdapter(HFConfig.model_validate({"path": str(tiny_gpt2), name: value}))
        assert request_key(other.cache_identity(), "t", 1, REQ) == key, f"neutral {name} changed the key"


def test_answer_options_keys_unclassified_fields_and_refuses_stale_names() -> None:
    import pytest
    from pydantic import BaseModel

    from llmbench.models.base import answer_options

    class Opts(BaseModel):
        path: str = "m"
        batch: int = 8
        window: int | None = None  # the "new option nobody classified"

    assert answer_options(Opts(), in_identity=frozenset({"path"}), neutral=frozenset({"batch"})) == {}
    assert answer_options(Opts(window=64, batch=1), in_identity=frozenset({"path"}),
                          neutral=frozenset({"batch"})) == {"window": 64}
    with pytest.raises(TypeError, match="gone"):
        answer_options(Opts(), in_identity=frozenset({"path"}), neutral=frozenset({"gone"}))


def test_openai_options_are_all_classified() -> None:
    """The OpenAI adapter keys on ``identity()`` (model, base_url, api, top_logprobs); every
    other option is transport (timeouts, retries, concurrency, prices, which key variable) —
    or ``echo_logprobs``, which decides whether loglikelihood is served at all, not what it
    answers. A new option fails here until it is classified."""
    from llmbench.models.openai.adapter import OpenAIConfig

    in_identity = {"model", "base_url", "api", "top_logprobs"}
    neutral = {"api_key_env", "concurrency", "max_retries", "timeout_s", "connect_timeout_s", "timeout_retries",
               "breaker_failures", "breaker_min_s", "echo_logprobs", "prices_file", "backoff_base_s",
               "backoff_max_s"}
    assert set(OpenAIConfig.model_fields) == in_identity | neutral


def test_every_request_field_is_in_the_key() -> None:
    """Task settings reach the model only through the request (prompt, continuations,
    decoding, stride, raw input/context for baselines): each field toggled once misses."""
    base = Request(sample_id="1", kind="loglikelihood", prompt="hi", continuations=("a",))
    key = request_key(ID, "t", 1, base)
    toggles = {"kind": "generate", "prompt": "ho", "continuations": ("b",), "input": "x", "context": "c",
               "stride": 4}
    assert set(Request.model_fields) - {"sample_id", "config"} == set(toggles)
    for name, value in toggles.items():
        assert request_key(ID, "t", 1, base.model_copy(update={name: value})) != key, name
    gen = {"max_new_tokens": 7, "temperature": 0.5, "top_p": 0.5, "stop": ("\n",), "seed": 3}
    assert set(GenerationConfig.model_fields) == set(gen)
    for name, value in gen.items():
        changed = base.model_copy(update={"config": GenerationConfig(**{name: value})})
        assert request_key(ID, "t", 1, changed) != key, name


def test_keys_of_a_chunk_equal_the_key_of_each_request_byte_for_byte() -> None:
    """The runner's batched keys (identity and task encoded once) are the keys every cache
    already holds: a change would turn every cached answer into a miss."""
    import hashlib
    import json

    identity = {"backend": "hf", "model": "m", "dtype": "float32", "nested": {"b": [1, 2], "a": "é"}}
    requests = [Request(sample_id=str(i), kind="loglikelihood", prompt=f"q {i} \u00e9 \"x\"",
                        continuations=("a", "b")) for i in range(3)]
    requests.append(Request(sample_id="g", kind="generate", prompt="hi", config=GenerationConfig(stop=("\n",))))
    keys = request_keys(identity, "task-é", 7, requests)
    assert keys == [request_key(identity, "task-é", 7, r) for r in requests]
    # and request_key is the documented formula (sorted keys, compact separators)
    blob = json.dumps({"model": identity, "task": "task-é", "task_version": 7,
                       "request": requests[0].model_dump(mode="json", exclude={"sample_id"})},
                      sort_keys=True, separators=(",", ":"))
    assert keys[0] == hashlib.sha256(blob.encode()).hexdigest()


def test_the_fast_request_encoding_equals_the_general_one() -> None:
    """``request_keys`` writes a text-prompt request's JSON itself: over random requests of
    every kind (escapes, non-ASCII, lone surrogates, chat prompts, strides, shared and own
    decoding settings) each key is ``request_key``'s, the documented formula."""
    import random

    from llmbench.types import ChatMessage

    rng = random.Random(0)
    alphabet = ["a", "é", "\n", '"', "\\", "\x00", "\u2028", "😀", "\ud800", "<", "&", "\t", " "]

    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))

    shared = GenerationConfig(stop=("\n\n",))
    requests = []
    for i in range(2000):
        config = shared if rng.random() < 0.5 else GenerationConfig(
            max_new_tokens=rng.randint(1, 300), temperature=rng.choice([0.0, 0.7, 1e-7]), top_p=rng.choice([1.0, 0.9]),
            stop=tuple(text() for _ in range(rng.randint(0, 2))), seed=rng.randint(0, 2**40))
        prompt = text() if rng.random() < 0.8 else tuple(ChatMessage(role="user", content=text()) for _ in range(2))
        requests.append(Request(
            sample_id=str(i), kind=rng.choice(["generate", "loglikelihood", "classify", "loglikelihood_rolling"]),
            prompt=prompt, config=config, input=None if rng.random() < 0.3 else text(),
            continuations=None if rng.random() < 0.5 else tuple(text() for _ in range(rng.randint(0, 3))),
            context=None if rng.random() < 0.5 else text(), stride=None if rng.random() < 0.7 else rng.randint(1, 9)))
    assert request_keys(ID, "t", 3, requests) == [request_key(ID, "t", 3, r) for r in requests]
