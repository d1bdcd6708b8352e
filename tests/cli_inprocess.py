"""Run the llmbench CLI inside the test process, as a shell would see it: exit code, stdout, stderr.

One helper for every test that drives ``llmbench.cli.main.main`` (the error boundary): the
exit code is mapped as ``llmbench.cli.main.entry`` maps it (``None`` is 0, a message is 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest


def run_cli(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from llmbench.cli.main import main

    with pytest.raises(SystemExit) as done:
        main(list(argv))
    out, err = capsys.readouterr()
    code = done.value.code
    return (code if isinstance(code, int) else 0 if code is None else 1), out, err
