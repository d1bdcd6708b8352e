"""Reference values of lm-eval 0.4.13's ``exact_match`` on crafted cases, for
``llmbench.metrics.lmeval`` (``tests/bridge/test_lmeval_exact_match.py``).

Correctness only. Run once with the python of a venv holding lm-eval 0.4.13 (the output is
committed, the test suite needs no lm-eval):

    /tmp/bridge-venv/bin/python bench/lmeval_exact_cases.py

It calls lm-eval's own ``exact_match_hf_evaluate`` (``lm_eval/api/metrics.py``) as lm-eval's
``generate_until`` scoring does, one (prediction, reference) pair at a time, for each case's
options, and writes ``tests/fixtures/lmeval/expected/exact_match_cases.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "lmeval" / "expected" / "exact_match_cases.json"
GSM8K = {"ignore_case": True, "ignore_punctuation": False,
         "regexes_to_ignore": [",", "\\$", "(?s).*#### ", "\\.$"]}
PAIRS = [
    ("Bathroom.", "bathroom"), ("bathroom", "bathroom"), ("Bathroom", "bathroom"), (" bathroom", "bathroom"),
    ("bathroom ", "bathroom"), ("the bathroom", "bathroom"), ("Room 12", "room"), ("Room 12!", "room 12"),
    ("$1,234.", "1234"), ("The answer is 72.\n#### 72", "Natalia sold 48+24 = 72 clips.\n#### 72"),
    ("#### 1,000", "1000"), ("ÉTÉ", "été"), ("a\x00", "a"), ("", ""), ("42", "42.0"), ("a-b", "ab"),
    ("Line\nbreak", "line break"), ("x#### 5", "5"),
]
OPTIONS: list[dict[str, Any]] = [
    {}, {"ignore_case": True}, {"ignore_punctuation": True}, {"ignore_numbers": True},
    {"ignore_case": True, "ignore_punctuation": True, "ignore_numbers": True},
    {"regexes_to_ignore": ["\\s+"]}, {"regexes_to_ignore": ["^the ", "!"], "ignore_case": True},
    GSM8K,
]


def main() -> None:
    from lm_eval.api.metrics import exact_match_hf_evaluate

    cases = []
    for options in OPTIONS:
        for prediction, reference in PAIRS:
            value = exact_match_hf_evaluate(predictions=[prediction], references=[reference], **options)
            cases.append({"options": options, "prediction": prediction, "reference": reference,
                          "exact_match": float(value["exact_match"])})
    OUT.write_text(json.dumps(cases, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(cases)} cases -> {OUT}")


if __name__ == "__main__":
    main()
