"""Tiny, seeded, random-init models for tests and benchmarks (no Hub access needed).

Each builder trains a small byte-level BPE tokenizer with ``tokenizers`` on a fixed
corpus and saves a real transformers checkpoint folder, so the code under test takes
exactly the path a downloaded model would.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokenizers import Tokenizer

CORPUS = [
    "the movie was great and the acting was wonderful",
    "a terrible film with a boring plot and bad acting",
    "positive negative neutral yes no true false",
    "translate english to malay: good morning, how are you today?",
    "question: what is the capital? answer: the capital is kuala lumpur.",
    "summarize: the quick brown fox jumps over the lazy dog.",
    "0 1 2 3 4 5 6 7 8 9 . , ! ? : ; ' \" ( ) - \n",
] * 20


def train_tokenizer(vocab_size: int, specials: list[str], corpus: Sequence[str] = CORPUS) -> Tokenizer:
    """A byte-level BPE tokenizer trained on ``corpus`` (the benchmarks add their own words)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    return tok


def _byte_bpe(vocab_size: int, corpus: Sequence[str]) -> Any:
    """A byte-level BPE tokenizer trained on ``corpus``, ``<|endoftext|>`` for every special token."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=train_tokenizer(vocab_size, ["<|endoftext|>"], corpus), eos_token="<|endoftext|>",
        bos_token="<|endoftext|>", unk_token="<|endoftext|>", pad_token="<|endoftext|>",
    )


def random_gpt2(*, seed: int = 0, n_layer: int = 2, n_embd: int = 32, n_head: int = 2, vocab_size: int = 300,
                corpus: Sequence[str] = CORPUS) -> tuple[Any, Any]:
    """``(model, tokenizer)``: a random-init GPT-2 causal LM and its byte-level BPE tokenizer."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    hf_tok = _byte_bpe(vocab_size, corpus)
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(hf_tok), n_positions=512, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
        bos_token_id=hf_tok.eos_token_id, eos_token_id=hf_tok.eos_token_id,
        pad_token_id=hf_tok.eos_token_id,
    )
    return GPT2LMHeadModel(config), hf_tok


def random_mistral(*, seed: int = 0, sliding_window: int | None = 8, hidden_size: int = 32, n_layer: int = 2,
                   vocab_size: int = 300, corpus: Sequence[str] = CORPUS) -> tuple[Any, Any]:
    """``(model, tokenizer)``: a random-init Mistral causal LM. With ``sliding_window`` its KV
    cache has sliding-window layers, which cannot be shared row-wise: the fallback paths."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    hf_tok = _byte_bpe(vocab_size, corpus)
    torch.manual_seed(seed)
    config = MistralConfig(
        vocab_size=len(hf_tok), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=n_layer, num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
        sliding_window=sliding_window, bos_token_id=hf_tok.eos_token_id, eos_token_id=hf_tok.eos_token_id,
        pad_token_id=hf_tok.eos_token_id,
    )
    return MistralForCausalLM(config), hf_tok


def random_t5(*, seed: int = 0, d_model: int = 32, d_kv: int = 16, d_ff: int = 64, num_layers: int = 2,
              num_heads: int = 2, vocab_size: int = 300, corpus: Sequence[str] = CORPUS) -> tuple[Any, Any]:
    """``(model, tokenizer)``: a random-init T5 seq2seq model and its byte-level BPE tokenizer."""
    import torch
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    tok = train_tokenizer(vocab_size, ["<pad>", "</s>", "<unk>"], corpus)
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", tok.token_to_id("</s>"))]
    )
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=len(hf_tok), d_model=d_model, d_kv=d_kv, d_ff=d_ff, num_layers=num_layers,
        num_heads=num_heads, pad_token_id=hf_tok.pad_token_id, eos_token_id=hf_tok.eos_token_id,
    )
    # Not a constructor keyword of the (dataclass) T5Config: generation reads the attribute.
    config.decoder_start_token_id = hf_tok.pad_token_id
    return T5ForConditionalGeneration(config), hf_tok


def _save(out: Path, model: Any, tokenizer: Any) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_tiny_gpt2(out: Path, *, seed: int = 0, n_layer: int = 2, n_embd: int = 32) -> Path:
    """A random GPT-2 causal LM with a byte-level BPE tokenizer."""
    return _save(out, *random_gpt2(seed=seed, n_layer=n_layer, n_embd=n_embd))


def build_tiny_mistral(out: Path, *, seed: int = 0, sliding_window: int | None = 8) -> Path:
    """A random Mistral causal LM; ``sliding_window`` set gives it a cache that cannot be shared."""
    return _save(out, *random_mistral(seed=seed, sliding_window=sliding_window))


def build_tiny_t5(out: Path, *, seed: int = 0, d_model: int = 32, num_layers: int = 2) -> Path:
    """A random T5 seq2seq model with a byte-level BPE tokenizer."""
    return _save(out, *random_t5(seed=seed, d_model=d_model, num_layers=num_layers))


def build_tiny_bert_classifier(
    out: Path, *, labels: tuple[str, ...] = ("negative", "positive"), seed: int = 0
) -> Path:
    """A random BERT with a sequence-classification head whose config names ``labels``."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    hf_tok = _bert_tokenizer()
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(hf_tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512,
        id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)},
        pad_token_id=hf_tok.pad_token_id,
    )
    return _save(out, BertForSequenceClassification(config), hf_tok)


def _bert_tokenizer() -> Any:
    """The tiny BERTs' WordPiece-style tokenizer: ``[CLS] ... [SEP]`` wrapping and a ``[MASK]``."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    tok = train_tokenizer(300, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]",
    )


def build_tiny_bert_mlm(out: Path, *, seed: int = 0, max_positions: int = 512) -> Path:
    """A random BERT masked LM (``BertForMaskedLM``) with ``[CLS] ... [SEP]`` wrapping and a
    ``[MASK]`` token: the smallest model that answers pseudo-perplexity."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    hf_tok = _bert_tokenizer()
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(hf_tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=max_positions, pad_token_id=hf_tok.pad_token_id,
    )
    return _save(out, BertForMaskedLM(config), hf_tok)
