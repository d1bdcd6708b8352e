"""Executors without starting Ray: placement options, choosing an executor, the suite keys
and the command-line flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmbench.executors import ExecutorError, Placement, adapter_options, get_executor, split_options
from llmbench.executors.local import LocalExecutor
from llmbench.models.baselines import BaselineAdapter


def test_placement_options_are_split_from_the_adapters() -> None:
    options = {"seed": 3, "replicas": 4, "num_cpus": 0.25, "num_gpus": 1, "resources": {"node2": 1}}
    rest, placement = split_options("baseline:random", options)
    assert rest == {"seed": 3} == adapter_options(options)
    assert placement == Placement(replicas=4, num_cpus=0.25, num_gpus=1.0, resources={"node2": 1.0})
    assert split_options("baseline:random", {})[1] == Placement()


@pytest.mark.parametrize("bad", [{"replicas": 0}, {"num_cpus": -1}, {"replicas": "many"}])
def test_bad_placement_is_a_user_error_naming_the_model(bad: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ExecutorError, match=r"model 'baseline:random': placement option '(replicas|num_cpus)'"):
        split_options("baseline:random", bad)


def test_local_executor_ignores_placement() -> None:
    adapter = LocalExecutor().adapter("baseline:random", {"seed": 2, "replicas": 8, "num_gpus": 1})
    assert isinstance(adapter, BaselineAdapter) and adapter.seed == 2


def test_executor_choice_errors() -> None:
    assert get_executor("local").name == "local"
    with pytest.raises(ExecutorError, match="unknown executor 'dask'"):
        get_executor("dask")
    with pytest.raises(ExecutorError, match="executor is local"):
        get_executor("local", "127.0.0.1:6379")


def test_suite_keys(tmp_path: Path) -> None:
    from llmbench.plan import plan_from_suite
    from llmbench.suite import SuiteError

    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nexecutor: ray\nray_address: auto\nmodels: [baseline:random]\ntasks: [rotten_tomatoes]\n")
    plan = plan_from_suite(suite, limit=None, full=False, seed=None, tags=(), resamples=None, extra_options={})
    assert (plan.executor, plan.ray_address) == ("ray", "auto")
    suite.write_text("name: s\nexecutor: spark\nmodels: [baseline:random]\ntasks: [rotten_tomatoes]\n")
    with pytest.raises(SuiteError, match="executor"):
        plan_from_suite(suite, limit=None, full=False, seed=None, tags=(), resamples=None, extra_options={})


def test_cli_flags_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from llmbench.cli.main import main

    base = ["run", "-m", "baseline:random", "-t", "rotten_tomatoes", "--store", str(tmp_path / "db.sqlite")]
    for extra, message in ((["--executor", "spark"], "--executor 'spark' is not an executor"),
                           (["--executor", "local", "--ray-address", "auto"], "executor is local"),
                           (["--model-arg", "replicas=0"], "placement option 'replicas'")):
        with pytest.raises(SystemExit) as done:
            main([*base, *extra])
        err = capsys.readouterr().err.strip()
        assert done.value.code == 2 and len(err.splitlines()) == 1 and message in err, err



def test_a_feed_with_no_replica_left_still_cuts_its_shards() -> None:
    """Every replica gone for good between two chunks: the feed still cuts the chunk (one
    replica's worth of shards) and the dispatch loop says 'every replica is gone' in one
    line; dividing by the live replicas was a ZeroDivisionError (exit 3)."""
    from types import SimpleNamespace
    from typing import Any, cast

    from llmbench.executors.ray import SHARDS_PER_REPLICA, _Feed
    from llmbench.types import Request

    class Gone:
        placement = SimpleNamespace(shard_size=None)

        def prepare(self) -> None:
            pass

        def handles(self) -> list[Any]:
            return []

    chunk = [Request(sample_id=str(i), kind="generate", prompt="p") for i in range(2 * SHARDS_PER_REPLICA)]
    feed = _Feed(iter([chunk]), cast(Any, Gone()))
    shards = feed.next_shards()
    assert [len(requests) for _, _, requests in shards] == [2] * SHARDS_PER_REPLICA
    assert [start for _, start, _ in shards] == list(range(0, len(chunk), 2))
    assert feed.next_shards() == [] and feed.done
