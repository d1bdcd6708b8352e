"""Model-graded evaluation: a judge model (any spec, through the adapter contract and the
response cache) grades stored answers, in rubric mode (one answer against its reference) or
pairwise (two runs, both orders), and the judged numbers are stored as runs with registered
metrics (``llmbench.metrics.judged``), so compare, gate and select treat them like any other.

``verdicts``, ``ratings`` and ``agreement`` are pure statistics (no adapter, no store);
``prompts`` renders the sandboxed templates; ``engine`` asks the judge; ``rubric``,
``pairwise`` and ``record`` wire it to the store; ``labels`` reads human judgements.
It sits in the wiring layer (beside runner and report): it calls models and writes the store.
"""
