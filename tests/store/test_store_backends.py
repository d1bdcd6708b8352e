"""The results store on SQLite and on a real PostgreSQL server: the same behaviour on both.

Writing and reading runs, atomic completion, the run lifecycle (failed with a reason,
interrupted when its process is gone, prune), the one run-reference grammar, the schema
version (created at head, an unversioned store upgraded in place, a newer one refused) and
race-free creation by several processes at once.
"""

from __future__ import annotations

import multiprocessing
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from llmbench.store import (
    AnswerInfo,
    ResultStore,
    RunInfo,
    SampleRecord,
    StoredMetric,
    StoreError,
    metadata,
    now_iso,
    resolve,
    samples_table,
    state,
)
from llmbench.store import schema as store_schema
from llmbench.types import MetricValue

COUNTS = {"n_samples": 1, "n_errors": 0, "cache_hits": 0, "cache_misses": 1, "usage": {}}


def info(run_id: str, *, batch: str = "b1", tags: tuple[str, ...] = ("nightly",), created: str | None = None,
         **extra: object) -> RunInfo:
    return RunInfo.model_validate({
        "id": run_id, "batch_id": batch, "created_at": created or now_iso(), "finished_at": None,
        "status": "running", "model": "m", "model_kind": "local", "model_identity": {"backend": "hf"},
        "task": "t", "task_kind": "qa", "task_version": 1, "task_fingerprint": "f", "scoring_mode": "generate",
        "scoring_method": "greedy", "primary_metric": "f1", "config": {}, "environment": {}, "tags": list(tags),
        **extra})


def rec(i: int) -> SampleRecord:
    return SampleRecord(idx=i, sample_id=f"s{i}", input="x", prompt="p", prediction="y", references=["y"],
                        stats={"squad": {"f1": 1.0}})


def finish(store: ResultStore, run_id: str) -> None:
    store.finish_run(run_id, status="complete", samples=[rec(0)], counts=COUNTS,
                     metrics=[StoredMetric(value=MetricValue(name="f1", value=1.0, n=1), metric="squad")])


def test_runs_round_trip_and_finish_is_atomic(store_url: str) -> None:
    store = ResultStore(store_url)
    store.begin_run(info("r1"))
    assert store.run("r1").status == "running" and store.samples("r1") == []
    assert state(store.run("r1")) == "running"  # this process is alive: live, not interrupted
    finish(store, "r1")
    again = ResultStore(store_url, create=False)
    got = again.run("r1")
    assert got.status == "complete" and got.finished_at and got.pid == os.getpid()
    assert again.samples("r1") == [rec(0)] and again.metrics("r1")[0].value.value == 1.0
    store.begin_run(info("r2"))
    with pytest.raises(sa.exc.IntegrityError):  # the same sample twice: fails mid-transaction
        store.finish_run("r2", status="complete", samples=[rec(0), rec(0)], counts=COUNTS, metrics=[])
    assert store.run("r2").status == "running" and store.samples("r2") == []


def test_sample_rows_round_trip_exactly_in_one_batched_insert(store_url: str) -> None:
    """Rows of every shape (None columns, an error, quotes and non-ASCII text, nested stats,
    a full answer, a slice) read back equal to what was written, on both backends, and the
    JSON columns hold what SQLAlchemy's JSON type would have written."""
    records = [rec(0), SampleRecord(
        idx=1, sample_id="s'1\"", input="é ' \" ; --", prompt="p\n\u2028", prediction=None, references=[],
        stats={"em": {"n": 2, "v": [0.5, None, True]}}, error="HTTP 500", latency_s=0.25, prompt_tokens=3,
        completion_tokens=None, cost_usd=1e-6, slice="sub ject",
        answer=AnswerInfo(output="ö", choice_logprobs=[-0.5, -1.25], greedy_match=[True, False],
                          label_scores={"a": 0.1}, finish_reason="length", attempts=2, latency_total_s=0.5,
                          flag="truncated", cached=True))]
    records += [rec(i) for i in range(2, 2 + 2100)]  # more than one insert slice
    store = ResultStore(store_url)
    store.begin_run(info("r1"))
    store.add_samples("r1", records[:1])
    store.add_samples("r1", records[1:])
    assert store.samples("r1") == records
    with store.engine.connect() as conn:
        raw = conn.execute(sa.select(sa.cast(samples_table.c.answer, sa.Text), sa.cast(samples_table.c.stats, sa.Text))
                           .where(samples_table.c.idx == 1)).one()
    import json

    assert json.loads(raw[0]) == records[1].answer.model_dump() and json.loads(raw[1]) == records[1].stats


def test_json_columns_keep_infinities_nan_and_text_utf8_cannot_hold(tmp_path: Path) -> None:
    """What ``json.dumps`` kept, the store keeps: -Infinity and NaN log-likelihoods, a model
    output with a lone surrogate (UTF-8 cannot encode it: JSON keeps it escaped), non-ASCII
    text; a text column stores U+FFFD for the surrogate (the driver failed the whole insert).
    SQLite: PostgreSQL's JSON type refuses NaN and lone surrogates whatever writes them."""
    import math

    record = SampleRecord(idx=0, sample_id="s", input="x", prompt="p", prediction="\ud800?", references=["ü\ud800"],
                          stats={"ll": {"v": float("-inf"), "w": float("nan")}},
                          answer=AnswerInfo(output="a\ud800b é", choice_logprobs=[float("-inf"), -0.5]))
    store = ResultStore(tmp_path / "s.db")
    store.begin_run(info("r1"))
    store.add_samples("r1", [record])
    got = store.samples("r1")[0]
    assert got.answer == record.answer and got.references == record.references
    assert got.prediction == "\ufffd?"
    assert got.stats["ll"]["v"] == float("-inf") and math.isnan(got.stats["ll"]["w"])


def test_failed_and_interrupted_runs_are_pruned_never_complete_or_live_ones(store_url: str) -> None:
    store = ResultStore(store_url)
    for run_id in ("done", "broken", "dead", "stale", "live"):
        store.begin_run(info(run_id))
    finish(store, "done")
    store.mark("broken", "failed", reason="ValueError: labels [a, b] do not match the task's [x, y]")
    # a process that no longer exists on this host, and a heartbeat from long ago elsewhere
    with store.engine.begin() as conn:
        runs = metadata.tables["runs"]
        conn.execute(runs.update().where(runs.c.id == "dead").values(pid=2**22 + 12345))
        old = (datetime.now(UTC) - timedelta(hours=2)).isoformat(timespec="seconds")
        conn.execute(runs.update().where(runs.c.id == "stale").values(host="elsewhere", heartbeat_at=old))
    states = {r.id: state(r) for r in store.runs()}
    assert states == {"done": "complete", "broken": "failed", "dead": "interrupted", "stale": "interrupted",
                      "live": "running"}
    assert store.run("broken").reason == "ValueError: labels [a, b] do not match the task's [x, y]"
    removed = store.prune()
    assert sorted(r.id for r in removed) == ["broken", "dead", "stale"]
    assert sorted(r.id for r in store.runs()) == ["done", "live"]
    assert store.samples("done") == [rec(0)]
    assert store.prune() == []


def test_a_run_that_finishes_while_prune_looks_keeps_its_samples_and_metrics(
        store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """prune decides from a listing, then deletes in a transaction that reads the status again:
    a run seen as interrupted that has finished by then keeps its row, samples and metrics."""
    from llmbench.store import lifecycle

    store = ResultStore(store_url)
    store.begin_run(info("late"))
    finish(store, "late")  # complete in the store ...
    monkeypatch.setattr(lifecycle, "state", lambda run: "interrupted")  # ... but listed before that
    assert [r.id for r in store.prune()] == ["late"]
    monkeypatch.undo()
    assert store.run("late").status == "complete"
    assert store.samples("late") == [rec(0)] and store.metrics("late")[0].value.value == 1.0


def test_one_reference_grammar_with_ambiguity_an_error(store_url: str) -> None:
    store = ResultStore(store_url)
    store.begin_run(info("20260101-aaa", batch="night-1", created="2026-01-01T00:00:00+00:00"))
    store.begin_run(info("20260101-aab", batch="night-1", created="2026-01-01T00:00:01+00:00"))
    store.begin_run(info("20260102-bbb", batch="night-2", created="2026-01-02T00:00:00+00:00"))
    store.begin_run(info("20260103-ccc", batch="20260103-ccc", tags=(), created="2026-01-03T00:00:00+00:00"))
    assert resolve(store, "20260102").runs[0].id == "20260102-bbb"
    assert store.run("20260103").id == "20260103-ccc"  # a single-run batch is one thing, not two
    with pytest.raises(StoreError, match=r"ambiguous: it matches 20260101-aaa, 20260101-aab"):
        store.run("20260101-aa")
    with pytest.raises(StoreError, match="ambiguous"):
        resolve(store, "2026")
    assert {r.id for r in resolve(store, "night-1").runs} == {"20260101-aaa", "20260101-aab"}
    with pytest.raises(StoreError, match="2 runs"):
        store.run("night-1")  # one run asked for, a batch given
    assert resolve(store, "last:nightly").runs[0].batch_id == "night-2"
    assert resolve(store, "prev:nightly").runs[0].batch_id == "night-1"
    with pytest.raises(StoreError, match="no run or batch 'zzz'"):
        resolve(store, "zzz")


def test_a_new_store_is_at_the_newest_revision_with_the_tables_of_the_code(store_url: str) -> None:
    store = ResultStore(store_url)
    inspector = sa.inspect(store.engine)
    for table in metadata.sorted_tables:
        assert {c["name"] for c in inspector.get_columns(table.name)} == {c.name for c in table.columns}
    with store.engine.connect() as conn:
        assert store_schema.current_revision(conn) == store_schema.HEAD


def test_the_written_head_is_the_newest_migration_script() -> None:
    """Opening a current store compares with ``schema.HEAD`` without importing Alembic; a new
    migration that does not move it would leave every store one revision behind."""
    assert store_schema.script_head() == store_schema.HEAD


def test_creating_and_opening_a_store_import_no_alembic(tmp_path: object) -> None:
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path}/s.db"
    code = ("import sys; from llmbench.store import ResultStore; "
            f"ResultStore({url!r}); ResultStore({url!r}).runs(); "
            "print(sorted(m for m in sys.modules if m.startswith('alembic')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _migrated(url: str, revision: str = "head") -> sa.Engine:
    """An empty database brought to ``revision`` by the shipped migration scripts alone."""
    from alembic import command
    from alembic.config import Config

    from llmbench.store.db import url_of

    engine = sa.create_engine(url_of(url))
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(store_schema.MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    return engine


def test_a_new_store_equals_one_built_by_the_migrations(store_url: str, request: pytest.FixtureRequest,
                                                        tmp_path: Path) -> None:
    """A new store gets the code's tables and a HEAD stamp without running the migrations;
    Alembic's own comparison finds the migrations' schema equal to the code's (types,
    nullability, indexes, foreign keys), and the version tables are alike."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    other = (request.getfixturevalue("pg_server").create_db() if store_url.startswith("postgresql")
             else str(tmp_path / "migrated.db"))
    migrated = _migrated(other)
    with migrated.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        pk_migrated = sa.inspect(conn).get_pk_constraint("alembic_version")
        assert store_schema.current_revision(conn) == store_schema.HEAD
    migrated.dispose()
    store = ResultStore(store_url)
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert sa.inspect(conn).get_pk_constraint("alembic_version") == pk_migrated
        assert store_schema.current_revision(conn) == store_schema.HEAD


def _legacy_store(url: str) -> None:
    """A store as the code before versioning made it: the 0001 tables, no alembic_version."""
    from alembic import command
    from alembic.config import Config

    from llmbench.store.db import url_of

    engine = sa.create_engine(url_of(url))
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(store_schema.MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, store_schema.LEGACY_REVISION)
        conn.exec_driver_sql("DROP TABLE alembic_version")
        conn.execute(sa.text(
            "INSERT INTO runs (id, batch_id, created_at, status, model, model_kind, model_identity, task, "
            "task_kind, task_version, task_fingerprint, scoring_mode, scoring_method, primary_metric, config, "
            "environment, tags, n_samples, n_errors, cache_hits, cache_misses, usage) VALUES ('old', 'old', "
            "'2025-01-01T00:00:00+00:00', 'complete', 'm', 'local', '{}', 't', 'qa', 1, 'f', 'generate', "
            "'greedy', 'f1', '{}', '{}', '[\"nightly\"]', 1, 0, 0, 1, '{}')"))
    engine.dispose()


def test_an_unversioned_store_is_upgraded_in_place(store_url: str) -> None:
    _legacy_store(store_url)
    store = ResultStore(store_url)
    old = store.run("old")
    assert old.status == "complete" and old.tags == ["nightly"] and old.heartbeat_at is None
    with store.engine.connect() as conn:
        assert store_schema.current_revision(conn) == store_schema.HEAD
    store.begin_run(info("new"))
    assert [r.id for r in store.runs()] == ["old", "new"]


def test_a_store_from_a_newer_llmbench_is_refused_in_one_line(store_url: str) -> None:
    store = ResultStore(store_url)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
    store.close()
    for create in (True, False):
        with pytest.raises(StoreError, match=r"schema revision 0099, newer than this llmbench knows") as err:
            ResultStore(store_url, create=create)
        assert "\n" not in str(err.value)


def _open(url: str) -> str:
    try:
        store = ResultStore(url)
        store.begin_run(info(f"p{os.getpid()}"))
        return "ok"
    except Exception as err:  # reported to the parent, which asserts on it
        return f"{type(err).__name__}: {err}"


def test_several_processes_create_one_new_store_at_once(store_url: str) -> None:
    """Before: `table runs already exists` when two processes created a store together."""
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        outcomes = pool.map(_open, [store_url] * 6)
    assert outcomes == ["ok"] * 6
    assert len(ResultStore(store_url).runs()) == 6


def test_revision_0003_moves_the_private_stats_keys_into_typed_columns(store_url: str) -> None:
    """A store at 0002 kept how an answer came about and the slice inside ``stats`` under
    private keys; upgrading moves them to ``answer`` and ``slice``, leaving metric stats only,
    and a sample without them reads as an empty ``AnswerInfo``."""
    engine = _migrated(store_url, "0002")
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO runs (id, batch_id, created_at, status, model, model_kind, model_identity, task, "
            "task_kind, task_version, task_fingerprint, scoring_mode, scoring_method, primary_metric, config, "
            "environment, tags, n_samples, n_errors, cache_hits, cache_misses, usage) VALUES ('r', 'r', "
            "'2025-01-01T00:00:00+00:00', 'complete', 'm', 'local', '{}', 't', 'qa', 1, 'f', 'generate', "
            "'greedy', 'f1', '{\"not_computed\": {\"ece\": \"why\"}}', '{}', '[]', 2, 0, 0, 2, '{}')"))
        for idx, stats in enumerate(('{"f1": {"f1": 0.5}, "_answer": {"finish_reason": "length", "attempts": 2, '
                                     '"flag": "truncated"}, "_slice": "news"}', '{"f1": {"f1": 1.0}}')):
            conn.execute(sa.text(
                "INSERT INTO samples (run_id, idx, sample_id, input, prompt, prediction, \"references\", stats) "
                f"VALUES ('r', {idx}, 's{idx}', 'in', 'p', 'x', '[\"x\"]', :stats)"), {"stats": stats})
    engine.dispose()
    store = ResultStore(store_url)
    first, second = store.samples("r")
    assert first.stats == {"f1": {"f1": 0.5}} and first.slice == "news"
    assert (first.answer.finish_reason, first.answer.attempts, first.answer.flag) == ("length", 2, "truncated")
    assert second.stats == {"f1": {"f1": 1.0}} and second.slice is None and second.answer.finish_reason is None
    assert store.run("r").run_config.not_computed == {"ece": "why"}


def test_revision_0004_adds_run_notes_that_an_older_run_reads_as_none(store_url: str) -> None:
    """A store at 0003 has no ``runs.notes``; upgrading adds it, a run stored before reads as
    having no notes, and a run finished with notes keeps them (``finish_run`` without notes
    leaves what ``begin_run`` wrote)."""
    engine = _migrated(store_url, "0003")
    with engine.begin() as conn:
        assert "notes" not in {c["name"] for c in sa.inspect(conn).get_columns("runs")}
        conn.execute(sa.text(
            "INSERT INTO runs (id, batch_id, created_at, status, model, model_kind, model_identity, task, "
            "task_kind, task_version, task_fingerprint, scoring_mode, scoring_method, primary_metric, config, "
            "environment, tags, n_samples, n_errors, cache_hits, cache_misses, usage) VALUES ('old', 'old', "
            "'2025-01-01T00:00:00+00:00', 'complete', 'm', 'local', '{}', 't', 'qa', 1, 'f', 'generate', "
            "'greedy', 'f1', '{}', '{}', '[]', 1, 0, 0, 1, '{}')"))
    engine.dispose()
    store = ResultStore(store_url)
    with store.engine.connect() as conn:
        assert store_schema.current_revision(conn) == store_schema.HEAD
    assert store.run("old").notes == []
    note = "generation: the cache cannot be shared; transformers' generate ran instead"
    store.begin_run(info("noted"))
    store.finish_run("noted", status="complete", samples=[rec(0)], counts=COUNTS, metrics=[], notes=[note])
    store.begin_run(info("kept", notes=["imported as it was"]))
    finish(store, "kept")
    assert store.run("noted").notes == [note] and store.run("kept").notes == ["imported as it was"]
    assert store.export_json("noted")["run"]["notes"] == [note]
