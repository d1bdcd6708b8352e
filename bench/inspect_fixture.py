"""An inspect_ai log for ``llmbench import inspect`` tests, made by the real inspect_ai.

Run once (the logs are committed under ``tests/fixtures/inspect/``; the tests need no inspect_ai):

    /tmp/bridge-venv/bin/pip install inspect_ai
    OMP_NUM_THREADS=1 /tmp/bridge-venv/bin/python bench/inspect_fixture.py

A five-question task scored by inspect's ``match()`` against its ``mockllm/model`` provider
with fixed answers (three right, two wrong), written in both log formats (``.json`` and the
``.eval`` zip). inspect_ai estimates token counts with tiktoken's ``o200k_base``, which it
downloads; this machine is offline, so the estimate is replaced by a length-based one here
(it changes no answer, score or log field the importer reads).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import inspect_ai.model._model as model_module
from inspect_ai import Task, eval
from inspect_ai.dataset import Sample
from inspect_ai.model import ModelOutput, get_model
from inspect_ai.scorer import match
from inspect_ai.solver import generate

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "inspect"
QA = [("What is 2 + 2?", "4", "4"), ("What is the capital of Malaysia?", "Kuala Lumpur", "Kuala Lumpur"),
      ("What colour is a clear daytime sky?", "blue", "green"), ("How many legs has a spider?", "8", "8"),
      ("What gas do plants take in?", "carbon dioxide", "oxygen")]

model_module.count_text_tokens = lambda text: max(1, len(text) // 4)  # offline: no tiktoken download


def tiny_qa() -> Task:
    return Task(dataset=[Sample(id=f"q{i}", input=q, target=a) for i, (q, a, _) in enumerate(QA)],
                solver=[generate()], scorer=match(), name="tiny_qa")


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    for fmt in ("json", "eval"):
        model = get_model("mockllm/model", custom_outputs=[ModelOutput.from_content("mockllm/model", answer)
                                                          for _, _, answer in QA])
        eval(tiny_qa(), model=model, log_dir=str(OUT / fmt), log_format=fmt, max_connections=1,
             display="none")
    for fmt in ("json", "eval"):
        (only,) = list((OUT / fmt).iterdir())
        only.rename(OUT / f"tiny_qa.{fmt}")
        (OUT / fmt).rmdir()
    deflate_copy(OUT / "tiny_qa.eval", OUT / "tiny_qa_deflate.eval")


def deflate_copy(src: Path, dest: Path) -> None:
    """The same .eval with its entries DEFLATE-compressed (inspect_ai reads both; this version
    writes zstd, which Python < 3.14's zipfile reads only with the zstandard package)."""
    import zipfile

    import zipfile_zstd  # noqa: F401  (inspect_ai's dependency: teaches zipfile to read zstd)

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))


if __name__ == "__main__":
    main()
