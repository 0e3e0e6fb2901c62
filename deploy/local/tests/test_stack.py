"""The local stack's wiring: the compaction service, the alert evaluator and the refusal of an
older lake."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from signal_local.stack import _parse_args, lake_without_lineage, services


class _Stack:
    def env(self) -> dict[str, str]:
        return {"SIGNAL_KINESIS_ENDPOINT_URL": "http://127.0.0.1:1"}


def test_the_stack_compacts_the_lake_on_a_schedule(tmp_path: Path) -> None:
    args = _parse_args(["--data-dir", str(tmp_path), "--compact-every", "120"])
    compaction = next(s for s in services(_Stack(), args) if s.name == "lake-compaction")  # type: ignore[arg-type]
    assert (compaction.module, compaction.args) == (
        "signal_catalog.cli",
        ("compact", "--every", "120.0"),
    )
    assert compaction.env["SIGNAL_CATALOG_LAKE_ROOT"] == f"file://{tmp_path.resolve()}/lake"
    assert compaction.env["SIGNAL_CATALOG_COMPACT_GRACE_S"] == "3600.0"


def test_the_stack_runs_one_alert_evaluator_over_the_apis_lake(tmp_path: Path) -> None:
    args = _parse_args(["--data-dir", str(tmp_path)])
    planned = services(_Stack(), args)  # type: ignore[arg-type]
    evaluators = [s for s in planned if s.args[:2] == ("alerts", "evaluate")]
    assert [(s.name, s.module) for s in evaluators] == [("alert-evaluator", "signal_api.main")]
    api = next(s for s in planned if s.name == "metrics-api")
    assert evaluators[0].env["SIGNAL_API_LAKE_ROOT"] == api.env["SIGNAL_API_LAKE_ROOT"]


def test_a_lake_written_before_the_lineage_columns_is_named(tmp_path: Path) -> None:
    part = tmp_path / "status_count" / "dt=2026-11-23" / "hour=7"
    part.mkdir(parents=True)
    assert lake_without_lineage(tmp_path) is None
    pq.write_table(pa.table({"event_count": [1], "commit_seq": [1]}), part / "new.parquet")
    assert lake_without_lineage(tmp_path) is None
    pq.write_table(pa.table({"event_count": [1]}), part / "old.parquet")
    assert lake_without_lineage(tmp_path) == part / "old.parquet"
