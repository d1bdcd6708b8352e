"""HFAdapter on tiny random models: real values checked against hand computations."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
import torch

from llmbench.models.base import ModelAdapter, ModelError
from llmbench.models.hf.adapter import HFAdapter, HFConfig
from llmbench.models.hf.inputs import plan_batches, render_prompt, with_oom_backoff
from llmbench.types import ChatMessage, GenerationConfig, Request

WORDS = (
    "the", "movie", "was", "great", "and", "acting", "wonderful", "a", "terrible", "film", "with",
    "boring", "plot", "question", "what", "is", "capital", "answer", "kuala", "lumpur",
    "summarize", "quick", "brown", "fox", "lazy", "dog",
)
CHOICES = ("great", " terrible", "yes", "no", " the capital is kuala lumpur", "fox")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy CI box extra threads
    only oversubscribe the cores (10x slower); restore the setting for other modules."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _adapter(path: Path, **kw) -> HFAdapter:
    return HFAdapter(HFConfig(path=str(path), **kw))


def _run(adapter: HFAdapter, requests: list[Request]) -> list:
    out = dict(adapter.run(requests))
    assert sorted(out) == list(range(len(requests)))
    return [out[i] for i in range(len(requests))]


def _varied_requests(n: int = 40, seed: int = 0) -> tuple[list[Request], list[Request]]:
    """~40 loglikelihood and generate requests with prompts of 1-60 words."""
    rng = random.Random(seed)
    ll, gen = [], []
    for i in range(n):
        prompt = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 60)))
        if i % 3 == 0:
            prompt += " "  # trailing space moves into the continuation
        conts = tuple(rng.sample(CHOICES, rng.randint(1, 4)))
        ll.append(Request(sample_id=str(i), kind="loglikelihood", prompt=prompt,
                          continuations=conts))
        gen.append(Request(sample_id=str(i), kind="generate", prompt=prompt,
                           config=GenerationConfig(max_new_tokens=rng.randint(1, 12))))
    return ll, gen


def _hand_causal(model, tok, context: str, continuation: str) -> tuple[float, bool]:
    """log P(continuation | context) straight from the logits, lm-eval tokenisation."""
    if context.endswith(" "):
        context, continuation = context.rstrip(" "), " " + continuation
    ctx = tok(context)["input_ids"]
    cont = tok(context + continuation)["input_ids"][len(ctx):]
    with torch.no_grad():
        logits = model(torch.tensor([ctx + cont])).logits[0]
    lp = logits[len(ctx) - 1 : -1].log_softmax(-1)
    target = torch.tensor(cont)
    return float(lp.gather(-1, target[:, None]).sum()), bool((lp.argmax(-1) == target).all())


def _hand_greedy(path: Path, prompt: str, max_new_tokens: int) -> tuple[str, int]:
    """Greedy decoding by hand, one full forward per token (no ``generate``, no KV cache):
    the text and the number of new tokens, an end-of-sequence token counted and ending it."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    seq2seq = AutoConfig.from_pretrained(path).is_encoder_decoder
    model = (AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM).from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    eos = model.generation_config.eos_token_id
    eos = {eos} if isinstance(eos, int) else set(eos or ())
    ids = tok(prompt)["input_ids"]
    new: list[int] = []
    with torch.no_grad():
        while len(new) < max_new_tokens and not (new and new[-1] in eos):
            if seq2seq:
                dec = torch.tensor([[model.config.decoder_start_token_id, *new]])
                logits = model(input_ids=torch.tensor([ids]), decoder_input_ids=dec).logits
            else:
                logits = model(torch.tensor([ids + new])).logits
            new.append(int(logits[0, -1].argmax()))
    return tok.decode(new, skip_special_tokens=True), len(new)


def test_protocol_and_supports(tiny_gpt2, tiny_t5, tiny_bert):
    for path, kinds in ((tiny_gpt2, {"loglikelihood", "generate", "loglikelihood_rolling"}),
                        (tiny_t5, {"loglikelihood", "generate"}), (tiny_bert, {"classify"})):
        adapter = _adapter(path)
        assert isinstance(adapter, ModelAdapter)
        assert adapter.supports == kinds
    assert _adapter(tiny_t5).arch == "seq2seq" and _adapter(tiny_bert).arch == "classifier"


def test_unsupported_kind_fails_before_any_work(tiny_bert):
    adapter = _adapter(tiny_bert)
    req = Request(sample_id="a", kind="generate", prompt="hi")
    with pytest.raises(ModelError, match="cannot serve generate"):
        adapter.run([req])  # raised on the call itself, not when iterating


def test_missing_path_is_one_line_model_error(tmp_path, monkeypatch):
    with pytest.raises(ModelError) as err:
        HFAdapter(HFConfig(path=str(tmp_path / "nope")))
    msg = str(err.value)
    assert "\n" not in msg and "nope" in msg and "does not exist" in msg and "config.json" in msg
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"has no config\.json"):
        HFAdapter(HFConfig(path=str(tmp_path / "empty")))
    with pytest.raises(ModelError, match="cannot load"):  # offline, not cached
        HFAdapter(HFConfig(path="no-such-org/no-such-model-xyz"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError, match="'empty/typo' does not exist"):
        HFAdapter(HFConfig(path="empty/typo"))  # ./empty exists: a local path, not a Hub id


def test_config_rejects_unknown_fields():
    with pytest.raises(ValueError):
        HFConfig(path="x", batch_size=3)


def test_identity_is_stable_and_content_based(tiny_gpt2, tmp_path):
    a = _adapter(tiny_gpt2)
    ident = a.identity()
    assert set(ident) >= {"backend", "path", "revision", "weights", "arch", "dtype", "device"}
    assert ident["backend"] == "hf" and ident["dtype"] == "float32" and ident["device"] == "cpu"
    assert a.identity() is not ident and a.identity() == ident
    copy = shutil.copytree(tiny_gpt2, tmp_path / "copy")
    assert _adapter(copy).identity()["weights"] == ident["weights"]
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "n_ctx": 256}))
    assert _adapter(copy).identity()["weights"] != ident["weights"]


def test_causal_loglikelihood_matches_hand_computation(tiny_gpt2):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2).eval()
    tok = AutoTokenizer.from_pretrained(tiny_gpt2)
    adapter = _adapter(tiny_gpt2)
    cases = [("the movie was", (" great", " terrible")), ("the movie was ", ("great", "bad x")),
             ("question: what is the capital? answer:", (" kuala lumpur", " no", " 7"))]
    reqs = [Request(sample_id=str(i), kind="loglikelihood", prompt=p, continuations=c)
            for i, (p, c) in enumerate(cases)]
    for (prompt, conts), resp in zip(cases, _run(adapter, reqs), strict=True):
        assert resp.error is None and len(resp.logprobs) == len(conts)
        for cont, lp, greedy in zip(conts, resp.logprobs, resp.greedy_match, strict=True):
            want, want_greedy = _hand_causal(model, tok, prompt, cont)
            assert lp == pytest.approx(want, abs=1e-4)
            assert greedy == want_greedy


def test_greedy_match_true_for_the_models_own_continuation(tiny_gpt2):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2).eval()
    tok = AutoTokenizer.from_pretrained(tiny_gpt2)
    found = 0
    for prompt in ("the movie", "a terrible", "question: what", "the quick brown", "summarize:"):
        ids = tok(prompt)["input_ids"]
        with torch.no_grad():
            for _ in range(3):
                ids = [*ids, int(model(torch.tensor([ids])).logits[0, -1].argmax())]
        cont = tok.decode(ids[len(tok(prompt)["input_ids"]):])
        if tok(prompt + cont)["input_ids"] != ids or cont.startswith(" ") or not cont.strip():
            continue  # decoding does not round-trip for this random model; try another
        resp = _run(_adapter(tiny_gpt2), [Request(
            sample_id="g", kind="loglikelihood", prompt=prompt, continuations=(cont, cont + "x"))])[0]
        assert resp.greedy_match[0] is True
        found += 1
    assert found >= 1


def test_kv_reuse_matches_full_forward(tiny_gpt2):
    ll, _ = _varied_requests(20, seed=3)
    shared = _adapter(tiny_gpt2, max_batch_size=8)
    full = _adapter(tiny_gpt2, max_batch_size=8)
    full.runtime.kv_reuse = False
    for a, b in zip(_run(shared, ll), _run(full, ll), strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-5)
        assert a.greedy_match == b.greedy_match
    assert shared.runtime.kv_reuse is True  # GPT-2's DynamicCache was actually reused


def test_seq2seq_loglikelihood_matches_hand_computation(tiny_t5):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_t5).eval()
    tok = AutoTokenizer.from_pretrained(tiny_t5)
    prompt, conts = "translate english to malay: good morning", (" selamat pagi", " no", "x")
    resp = _run(_adapter(tiny_t5), [Request(sample_id="s", kind="loglikelihood", prompt=prompt,
                                            continuations=conts)])[0]
    enc = torch.tensor([tok(prompt)["input_ids"]])
    assert tok.decode(enc[0, -1:]) == "</s>"
    for cont, lp, greedy in zip(conts, resp.logprobs, resp.greedy_match, strict=True):
        target = tok(cont, add_special_tokens=False)["input_ids"]
        dec = torch.tensor([[model.config.decoder_start_token_id, *target[:-1]]])
        with torch.no_grad():
            logp = model(input_ids=enc, decoder_input_ids=dec).logits[0].log_softmax(-1)
        t = torch.tensor(target)
        assert lp == pytest.approx(float(logp.gather(-1, t[:, None]).sum()), abs=1e-4)
        assert greedy == bool((logp.argmax(-1) == t).all())


@pytest.mark.parametrize("fixture", ["tiny_gpt2", "tiny_t5"])
def test_batch_size_does_not_change_answers(fixture, request):
    path = request.getfixturevalue(fixture)
    ll, gen = _varied_requests(40)
    results = {}
    for bs in (1, 8, 32):
        adapter = _adapter(path, max_batch_size=bs)
        results[bs] = (_run(adapter, ll), _run(adapter, gen))
    base_ll, base_gen = results[1]
    for bs in (8, 32):
        ll_out, gen_out = results[bs]
        for a, b in zip(base_ll, ll_out, strict=True):
            assert a.logprobs == pytest.approx(b.logprobs, abs=1e-5, rel=0)
            assert a.greedy_match == b.greedy_match
        assert [r.text for r in gen_out] == [r.text for r in base_gen]
        assert [r.usage for r in gen_out] == [r.usage for r in base_gen]


def test_token_cap_splits_batches_without_changing_answers(tiny_gpt2):
    ll, gen = _varied_requests(12, seed=5)
    small = _adapter(tiny_gpt2, max_batch_tokens=40)  # forces 1-2 rows per forward
    big = _adapter(tiny_gpt2)
    for a, b in zip(_run(small, ll), _run(big, ll), strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-5)
    assert [r.text for r in _run(small, gen)] == [r.text for r in _run(big, gen)]


def test_original_order_preserved_in_mixed_run(tiny_gpt2):
    ll, gen = _varied_requests(8, seed=1)
    mixed = [r for pair in zip(gen, ll, strict=True) for r in pair]
    adapter = _adapter(tiny_gpt2)
    together = _run(adapter, mixed)
    for req, resp in zip(mixed, together, strict=True):
        alone = _run(adapter, [req])[0]
        assert resp.text == alone.text
        if req.kind == "loglikelihood":
            assert resp.logprobs == pytest.approx(alone.logprobs, abs=1e-5)


def test_generation_honours_max_new_tokens(tiny_gpt2, tiny_t5):
    for path in (tiny_gpt2, tiny_t5):
        adapter = _adapter(path)
        reqs = [Request(sample_id=str(n), kind="generate", prompt="the movie was",
                        config=GenerationConfig(max_new_tokens=n)) for n in (1, 5, 17)]
        for n, resp in zip((1, 5, 17), _run(adapter, reqs), strict=True):
            text, count = _hand_greedy(path, "the movie was", n)
            assert (resp.text, resp.usage.completion_tokens) == (text, count)
            assert count <= n
            assert resp.usage.prompt_tokens > 0 and resp.latency_s is not None
            assert not resp.text.startswith("the movie")  # the prompt is not echoed


@pytest.mark.parametrize("fixture", ["tiny_gpt2", "tiny_t5"])
def test_stop_sequences_truncate_and_end_generation_early(fixture, request):
    adapter = _adapter(request.getfixturevalue(fixture))
    prompts = ["the movie was", "a terrible film", "question: what is", "summarize: the quick"]
    free = _run(adapter, [Request(sample_id=p, kind="generate", prompt=p,
                                  config=GenerationConfig(max_new_tokens=30)) for p in prompts])
    checked = 0
    for prompt, resp in zip(prompts, free, strict=True):
        text = resp.text
        # a stop string that first occurs strictly inside the text
        cut = next((i for i in range(1, len(text) - 3) if text[i] not in text[:i]), None)
        if cut is None:
            continue
        stop = text[cut]
        cfg = GenerationConfig(max_new_tokens=30, stop=(stop, "never-seen-stop"))
        got = _run(adapter, [Request(sample_id="s", kind="generate", prompt=prompt,
                                     config=cfg)])[0]
        assert got.text == text[:cut]
        assert got.usage.completion_tokens < resp.usage.completion_tokens
        checked += 1
    assert checked >= 1


def test_eos_ends_a_row_early(tiny_gpt2):
    adapter = _adapter(tiny_gpt2)
    req = Request(sample_id="e", kind="generate", prompt="the movie was",
                  config=GenerationConfig(max_new_tokens=10))
    rt = adapter.runtime
    ids = rt.tokenizer("the movie was")["input_ids"]
    out = rt.model.generate(torch.tensor([ids]), max_new_tokens=10, do_sample=False)
    new = out[0, len(ids):].tolist()
    rt.model.generation_config.eos_token_id = new[2]  # pretend the 3rd token is EOS
    got = _run(adapter, [req])[0]
    assert got.usage.completion_tokens == new.index(new[2]) + 1


def test_sampling_is_seeded_and_batch_independent(tiny_gpt2):
    def reqs(seed: int) -> list[Request]:
        cfg = GenerationConfig(max_new_tokens=12, temperature=1.0, top_p=0.9, seed=seed)
        return [Request(sample_id=str(i), kind="generate", prompt=p, config=cfg)
                for i, p in enumerate(["the movie", "a terrible film with", "question:"] * 3)]

    one = [r.text for r in _run(_adapter(tiny_gpt2, max_batch_size=1), reqs(7))]
    many = [r.text for r in _run(_adapter(tiny_gpt2, max_batch_size=32), reqs(7))]
    assert one == many
    assert [r.text for r in _run(_adapter(tiny_gpt2), reqs(8))] != one
    greedy = _run(_adapter(tiny_gpt2), [Request(sample_id="g", kind="generate",
                                                prompt="the movie")])[0]
    # no seed, no temperature: greedy, the default 64 new tokens, exactly as decoded by hand
    assert (greedy.text, greedy.usage.completion_tokens) == _hand_greedy(tiny_gpt2, "the movie", 64)


def test_classify_matches_direct_forward(tiny_bert):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert).eval()
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    texts = ["a terrible film", "the movie was great and the acting was wonderful", "yes"]
    reqs = [Request(sample_id=str(i), kind="classify", prompt=t) for i, t in enumerate(texts)]
    for text, resp in zip(texts, _run(_adapter(tiny_bert, max_batch_size=2), reqs), strict=True):
        with torch.no_grad():
            want = model(**tok(text, return_tensors="pt")).logits[0].log_softmax(-1)
        assert list(resp.label_scores) == ["negative", "positive"]
        assert list(resp.label_scores.values()) == pytest.approx(want.tolist(), abs=1e-5)


def test_chat_prompt_uses_the_chat_template(tiny_gpt2, tmp_path):
    from transformers import AutoTokenizer

    folder = shutil.copytree(tiny_gpt2, tmp_path / "chat")
    tok = AutoTokenizer.from_pretrained(folder)
    tok.chat_template = ("{% for m in messages %}<|endoftext|>{{ m.role }}: {{ m.content }}\n"
                         "{% endfor %}{% if add_generation_prompt %}bot:{% endif %}")
    tok.save_pretrained(folder)
    adapter = _adapter(folder)
    chat = (ChatMessage(role="system", content="be brief"),
            ChatMessage(role="user", content="the movie was"))
    rendered = "<|endoftext|>system: be brief\n<|endoftext|>user: the movie was\nbot:"
    assert render_prompt(adapter.runtime.tokenizer, chat) == (rendered, True)
    ll_chat, ll_text, gen = _run(adapter, [
        Request(sample_id="a", kind="loglikelihood", prompt=chat, continuations=(" great",)),
        Request(sample_id="b", kind="loglikelihood", prompt=rendered, continuations=(" great",)),
        Request(sample_id="c", kind="generate", prompt=chat),
    ])
    assert ll_chat.logprobs == pytest.approx(ll_text.logprobs, abs=1e-6)
    want = tok(rendered, add_special_tokens=False)["input_ids"]
    assert want.count(tok.eos_token_id) == 2  # control tokens parsed, not spelled out
    assert gen.usage.prompt_tokens == len(want)


def test_chat_without_template_falls_back_to_role_lines(tiny_gpt2):
    tok = _adapter(tiny_gpt2).runtime.tokenizer
    chat = (ChatMessage(role="user", content="hi"), ChatMessage(role="assistant", content="yo"),
            ChatMessage(role="user", content="more"))
    assert render_prompt(tok, chat) == ("user: hi\nassistant: yo\nuser: more\nassistant:", True)


def test_long_prompts_are_truncated_from_the_left(tiny_gpt2):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2).eval()
    tok = AutoTokenizer.from_pretrained(tiny_gpt2)
    prompt = " ".join(WORDS * 3)
    adapter = _adapter(tiny_gpt2, max_length=24)
    ll, gen = _run(adapter, [
        Request(sample_id="l", kind="loglikelihood", prompt=prompt, continuations=(" fox",)),
        Request(sample_id="g", kind="generate", prompt=prompt,
                config=GenerationConfig(max_new_tokens=4)),
    ])
    cont = tok(prompt + " fox")["input_ids"][len(tok(prompt)["input_ids"]):]
    ctx = tok(prompt)["input_ids"][-(24 - len(cont) + 1):]
    with torch.no_grad():
        lp = model(torch.tensor([ctx + cont[:-1]])).logits[0, len(ctx) - 1:].log_softmax(-1)
    assert ll.logprobs[0] == pytest.approx(float(lp.gather(-1, torch.tensor(cont)[:, None]).sum()),
                                           abs=1e-4)
    assert gen.usage.prompt_tokens == 20 and gen.error is None


def test_loglikelihood_without_continuations_is_an_error_response(tiny_gpt2):
    resp = _run(_adapter(tiny_gpt2), [Request(sample_id="x", kind="loglikelihood", prompt="a")])[0]
    assert resp.error and "continuations" in resp.error


def test_plan_batches_caps_rows_and_padded_tokens():
    items = [10, 9, 9, 5, 5, 5, 5, 1]
    batches = plan_batches(items, lambda n: (1, n), max_rows=3, max_tokens=20)
    assert batches == [[10, 9], [9, 5], [5, 5, 5], [1]]
    assert plan_batches([50], lambda n: (4, n), max_rows=2, max_tokens=10) == [[50]]


def test_oom_backoff_splits_the_batch():
    calls = []

    def fn(batch):
        calls.append(len(batch))
        if len(batch) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return [(x, x * 10) for x in batch]

    out = list(with_oom_backoff([1, 2, 3, 4, 5], fn, lambda x, m: (x, m)))
    assert sorted(out) == [(x, x * 10) for x in range(1, 6)]
    assert calls[0] == 5

    def always(batch):
        raise torch.OutOfMemoryError("out of memory")

    failed = list(with_oom_backoff([1, 2, 3], always, lambda x, m: (x, m)))
    assert [x for x, _ in failed] == [1, 2, 3]  # split down to single items, each an error
    assert all(msg == "out of memory: out of memory" for _, msg in failed)
    with pytest.raises(ValueError):
        list(with_oom_backoff([1], lambda b: (_ for _ in ()).throw(ValueError("bug")),
                              lambda x, m: (x, m)))


def test_close_releases_the_model(tiny_gpt2):
    adapter = _adapter(tiny_gpt2)
    adapter.close()
    adapter.close()
    with pytest.raises(ModelError, match="closed"):
        adapter.run([Request(sample_id="a", kind="generate", prompt="hi")])


def test_batch_encoder_gives_the_ids_of_one_by_one_encoding(tiny_gpt2):
    from llmbench.models.hf.inputs import BatchEncoder, encode

    tok = _adapter(tiny_gpt2).runtime.tokenizer
    texts = ["Review: great film.\nAnswer:", "Review: great film.\nAnswer: positive", " leading space",
             "trailing space ", "ünïcödé – dashes", "", "Review: great film.\nAnswer:"]
    batched = BatchEncoder(tok, texts)
    for text in texts:
        assert encode(batched, text, special=False) == encode(tok, text, special=False)
        assert encode(batched, text, special=True) == encode(tok, text, special=True)  # not prepared: real call
    assert batched.eos_token_id == tok.eos_token_id
    # A backend left with truncation on (by an earlier truncating call) must not cut the ids:
    # the encoder then goes through the tokenizer's own call, which resets it.
    full = encode(tok, texts[1], special=False)
    tok.backend_tokenizer.enable_truncation(3)
    assert encode(BatchEncoder(tok, texts), texts[1], special=False) == full and len(full) > 3


def test_the_architecture_is_read_once_per_config(tiny_gpt2: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import llmbench.models.hf.load as hf_load

    monkeypatch.setenv("LLMBENCH_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "gpt2"
    shutil.copytree(tiny_gpt2, model)
    calls: list[str] = []
    real = hf_load.load_config

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(hf_load, "load_config", counting)
    assert _adapter(model).arch == "causal" and _adapter(model).arch == "causal"
    assert len(calls) == 1  # the second adapter used the memo
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "note": "changed"}))
    assert _adapter(model).arch == "causal" and len(calls) == 2  # new bytes, read again


def test_a_cached_rerun_needs_neither_torch_nor_transformers(tiny_gpt2: Path, tmp_path: Path) -> None:
    """Building the adapter (identity, arch, device, dtype) in a fresh process, once the arch
    is memoised, imports neither: that is most of a fully cached rerun's time."""
    import os
    import subprocess
    import sys
    from importlib.metadata import version

    if not version("torch").endswith("+cpu"):
        pytest.skip("a CUDA-capable torch build is imported to ask whether a GPU is there")
    code = ("import sys; from llmbench.models.hf.adapter import HFAdapter, HFConfig; "
            f"a = HFAdapter(HFConfig(path={str(tiny_gpt2)!r})); a.identity(); "
            "print(a.arch, a.identity()['device'], a.identity()['dtype'], "
            "'torch' in sys.modules, 'transformers' in sys.modules)")
    env = {**os.environ, "LLMBENCH_CACHE": str(tmp_path / "cache")}
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert first.stdout.split() == ["causal", "cpu", "float32", "True", "True"]  # AutoConfig, once
    assert again.stdout.split() == ["causal", "cpu", "float32", "False", "False"]
