"""``llmbench plan`` and the suite's ``detect:`` warning: sample counts equal report.power's on
the variance each source gives (none, one run, two runs), checked by hand where it is simple."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from report_fixtures import classifier, run, write_cls_task, write_qa_task

from llmbench.report.power import bernoulli_discordance, mde_binary, samples_needed
from llmbench.store import ResultStore


@pytest.fixture
def world(tmp_path: Path) -> dict:
    return {"root": tmp_path, "cls": write_cls_task(tmp_path / "t", n=40, metrics=["accuracy"]),
            "qa": write_qa_task(tmp_path / "t"), "db": str(tmp_path / "db.sqlite")}


def _needed(out: str) -> int:
    found = re.search(r"the gate needs ([\d,]+) paired samples", out)
    assert found, out
    return int(found.group(1).replace(",", ""))


def test_no_run_yet_uses_the_worst_case(invoke, world) -> None:  # type: ignore[no-untyped-def]
    res = invoke("plan", "-t", world["cls"], "--detect", "0.05", "--store", world["db"])
    assert res.exit_code == 0, res.output
    assert _needed(res.stdout) == samples_needed(0.05, discordance=0.5)
    assert "a 5.0-point drop" in res.stdout and "the task has 40 (not enough)" in res.stdout
    assert "worst case p = 0.5" in res.stdout
    assert not Path(world["db"]).exists()  # asking never creates a store


def test_one_run_gives_the_bernoulli_bound_two_runs_the_observed_discordance(invoke, world) -> None:  # type: ignore[no-untyped-def]
    store = ResultStore(world["db"])
    run(store, world["cls"], classifier("m", {"s01", "s02", "s03", "s04"}), "hf:/m", label="m")  # accuracy 0.9
    res = invoke("plan", "-t", world["cls"], "--detect", "0.05", "--store", world["db"])
    assert res.exit_code == 0, res.output
    assert bernoulli_discordance(0.9) == pytest.approx(0.18)
    assert _needed(res.stdout) == samples_needed(0.05, discordance=bernoulli_discordance(0.9))
    assert "Bernoulli bound from m's score 0.900" in res.stdout
    # A second night: s01 fixed, s05..s09 broken -> 6 of 40 samples changed (15%).
    run(store, world["cls"], classifier("m", {"s02", "s03", "s04", *(f"s0{i}" for i in range(5, 10))}), "hf:/m",
        label="m")
    res = invoke("plan", "-t", world["cls"], "--detect", "0.05", "--store", world["db"])
    assert res.exit_code == 0, res.output
    assert "observed discordance 15.0%" in res.stdout
    assert _needed(res.stdout) == samples_needed(0.05, discordance=0.15)
    full = mde_binary(40, 0.15)
    assert full is not None and f"detects drops ≥ {full * 100:.1f} points" in res.stdout


def test_a_value_that_needs_a_run_is_one_line(invoke, world) -> None:  # type: ignore[no-untyped-def]
    res = invoke("plan", "-t", world["qa"], "--detect", "1", "--store", world["db"])
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "run it once" in lines[0], res.output
    res = invoke("plan", "-t", world["cls"], "--detect", "0", "--store", world["db"])
    assert res.exit_code == 2 and "--detect must be > 0" in res.output


def test_suite_warns_when_too_small_for_its_detect(invoke, world) -> None:  # type: ignore[no-untyped-def]
    def run_suite(tasks: str) -> list[str]:
        suite = world["root"] / "nightly.yaml"
        suite.write_text(f"name: nightly\ndetect: 0.01\nmodels: [baseline:majority]\ntasks:\n{tasks}",
                         encoding="utf-8")
        res = invoke("run", "--suite", suite, "--store", world["db"], "--no-cache")
        assert res.exit_code == 0, res.output
        return [line for line in res.output.splitlines() if line.startswith("warning: sentiment_mini")]

    need = samples_needed(0.01, discordance=0.5)
    # The suite's 1-point drop: 40 samples cannot catch it, one warning line.
    warned = run_suite(f"  - {{task: {world['cls']}}}\n")
    assert len(warned) == 1, warned
    assert f"not the declared detect: 0.01 — it needs {need:,} samples" in warned[0]
    # A task's own detect: wins over the suite's; a 90-point drop 40 samples can catch: no warning.
    assert run_suite(f"  - {{task: {world['cls']}, detect: 0.9}}\n") == []
