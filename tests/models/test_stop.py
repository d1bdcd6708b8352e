"""``llmbench.models.stop.cut_at_stop``: the one stop-string rule the HF and OpenAI backends share."""

from __future__ import annotations

import pytest

from llmbench.models.stop import cut_at_stop


@pytest.mark.parametrize(("text", "stops", "expected"), [
    ("one\ntwo###", ["###", "\n"], "one"),  # the earliest stop wins, not the first listed
    ("answer: 4\n\nQ: next", ["\n\n"], "answer: 4"),
    ("no stop here", ["###"], "no stop here"),
    ("###at start", ["###"], ""),
    ("keeps all", ["", "zzz"], "keeps all"),  # an empty stop string never cuts everything
    ("text", [], "text"),
])
def test_cut_at_stop(text: str, stops: list[str], expected: str) -> None:
    assert cut_at_stop(text, stops) == expected


def test_both_backends_use_the_one_rule() -> None:
    from llmbench.models.hf import generate
    from llmbench.models.openai import parse

    assert generate.cut_at_stop is cut_at_stop and parse.cut_at_stop is cut_at_stop
