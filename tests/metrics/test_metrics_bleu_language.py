"""BLEU's tokenizer follows the target language, as sacrebleu's ``-l`` does.

Why: ``13a`` splits on spaces and ASCII punctuation, so a Chinese sentence is one token
and every hypothesis that is not a verbatim copy scores 0.0.
"""

from __future__ import annotations

import importlib.util

import pytest
import sacrebleu

from llmbench.metrics import MetricError, get_metric
from llmbench.metrics.translation import tokenizer_for

HYPS = ["猫坐在垫子上。", "今天天气很好，我们去公园散步吧。", "他昨天买了一本新书。"]
REFS = ["猫坐在垫子上了。", "今天天气很好，我们去公园走走吧。", "他昨天买了一本书。"]


def _bleu(**args: object) -> tuple[float, str]:
    metric = get_metric("bleu", **args)
    stats = [metric.sample_stats(prediction=h, references=[r]) for h, r in zip(HYPS, REFS, strict=True)]
    (value,) = metric.aggregate(stats, n_resamples=0)
    return value.value, value.signature


def test_chinese_gets_the_zh_score_not_zero() -> None:
    value, signature = _bleu(language="zh")
    reference = sacrebleu.corpus_bleu(HYPS, [REFS], tokenize="zh").score
    assert value == reference
    assert value > 70  # 76.43 with sacrebleu 2.x
    assert "tok:zh" in signature
    # Without the language the old default applies: 13a scores these 0.0.
    assert _bleu()[0] == 0.0 == sacrebleu.corpus_bleu(HYPS, [REFS], tokenize="13a").score


def test_language_to_tokenizer_as_sacrebleu_cli() -> None:
    assert [tokenizer_for(lang) for lang in ("zh", "zh-Hant", "ja", "ko", "de", "en", None)] == [
        "zh", "zh", "ja-mecab", "ko-mecab", "13a", "13a", "13a"
    ]


def test_explicit_tokenize_wins_over_language() -> None:
    value, signature = _bleu(language="zh", tokenize="char")
    assert "tok:char" in signature
    assert value == sacrebleu.corpus_bleu(HYPS, [REFS], tokenize="char").score


@pytest.mark.parametrize(("language", "module", "extra"), [("ja", "MeCab", "sacrebleu[ja]"),
                                                           ("ko", "mecab_ko", "sacrebleu[ko]")])
def test_mecab_languages_need_mecab(language: str, module: str, extra: str) -> None:
    if importlib.util.find_spec(module) is not None:
        assert f"tok:{tokenizer_for(language)}" in _bleu(language=language)[1]
        return
    with pytest.raises(MetricError) as info:
        get_metric("bleu", language=language)
    message = str(info.value)
    assert "\n" not in message and extra in message and "tokenize:" in message
