"""A two-node Ray cluster on one machine (127.0.0.1 only), started and stopped here: replicas
land on both nodes, and the results equal the local executor's."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from ray_helpers import row_view, served, write_task  # noqa: E402

from llmbench.cache import ResponseCache  # noqa: E402
from llmbench.executors import get_executor  # noqa: E402
from llmbench.executors.ray import RayModel  # noqa: E402
from llmbench.runner import ModelEntry, RunConfig, evaluate  # noqa: E402
from llmbench.store import ResultStore  # noqa: E402
from llmbench.tasks import load_task  # noqa: E402

pytestmark = pytest.mark.slow
RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray(*args: str) -> None:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    done = subprocess.run([RAY, *args], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[str]:
    """``ray start --head`` and a second ``ray start --address`` with its own resource
    ``node2``; the driver (this process) joins as a client of the head. Token
    authentication with a token of this test's own, in the environment only (Ray 2.5x
    turns it on for new clusters and would otherwise read ~/.ray/auth_token)."""
    import secrets

    if shutil.which(RAY) is None:
        pytest.skip("the ray command is not installed")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    from ray._private.authentication_test_utils import reset_auth_token_state

    keys = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")
    saved = {k: os.environ.get(k) for k in keys}
    # Both nodes announce 127.0.0.1; Ray's GCS still listens on every interface (and the
    # driver reaches it through the machine's own address), so the token is what keeps
    # anyone else out for the minute the cluster lives.
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    reset_auth_token_state()  # this process read the auth mode when ray was imported
    try:
        _ray("start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=1",
             "--include-dashboard=false", "--disable-usage-stats")
        _ray("start", f"--address={address}", "--node-ip-address=127.0.0.1", "--num-cpus=1",
             "--resources=" + json.dumps({"node2": 1}), "--disable-usage-stats")
        ray.init(address=address, log_to_driver=False, configure_logging=False)
        yield address
    finally:
        ray.shutdown()
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_auth_token_state()


def test_replicas_on_both_nodes_identical_results(two_nodes: str, tmp_path: Path) -> None:
    nodes = {n["NodeID"]: n for n in ray.nodes() if n["Alive"]}
    assert len(nodes) == 2
    second = next(k for k, n in nodes.items() if n["Resources"].get("node2"))
    n = 96
    task = write_task(tmp_path, n)
    log = tmp_path / "served.log"
    # one CPU per replica and one CPU per node: the two replicas cannot share a node
    options = {"latency": 0.02, "batch": 4, "log": str(log), "replicas": 2, "num_cpus": 1, "shard_size": 8}
    results = {}
    for name in ("local", "ray"):
        executor = get_executor(name, two_nodes if name == "ray" else None)
        adapter = executor.adapter("latency:two", options)
        store = ResultStore(tmp_path / f"{name}.db")
        cache = ResponseCache(tmp_path / f"cache-{name}")
        try:
            result = evaluate(load_task(str(task)), adapter, ModelEntry(spec="latency:two"),
                              RunConfig(n_resamples=20), store=store, cache=cache)
            if isinstance(adapter, RayModel):
                where = ray.get([h.where.remote() for h in adapter.handles()])
                answered = dict(adapter.log.answered)
        finally:
            cache.close()
            adapter.close()
            executor.close()
        results[name] = (store, result)
    assert set(dict(where)) == set(nodes)  # one replica on each node, as their actors report
    assert sorted(answered) == [0, 1] and all(answered.values())  # and both answered shards
    assert any(pid == p for p in {p for _, p in where} for _, pid in served(log))
    node_of = {pid: node for node, pid in where}
    assert second in {node_of[pid] for _, pid in served(log) if pid in node_of}
    (local, lr), (remote, rr) = results["local"], results["ray"]
    assert rr.status == "complete" and rr.n_samples == n
    assert row_view(local, lr.run_id) == row_view(remote, rr.run_id)
    assert [m.value for m in local.metrics(lr.run_id)] == [m.value for m in remote.metrics(rr.run_id)]
