"""alert_events on S3 (moto server on 127.0.0.1): the same cycles as on a local lake, read back
by the evaluator and by the API's reader (AWS runs the evaluator with an s3:// lake root)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from alert_fixtures import T0, WINDOW, history, window_events, write_events

from signal_api.adapters.duckdb_engine import DuckDBEngine
from signal_api.alerts.reader import active_alerts
from signal_api.alerts.store import AlertStore, LocalAlertStore, S3AlertStore
from signal_api.alerts.wiring import LogNotifier, build_evaluator
from signal_api.settings import ApiSettings

MOMENTS = [T0 + dt.timedelta(minutes=m) for m in range(31, 80, 5)]


def run(root: Path, store: AlertStore) -> None:
    settings = ApiSettings(lake_root=f"file://{root}", auth_enabled=False)
    engine = DuckDBEngine(settings.lake_root)
    try:
        evaluator = build_evaluator(settings, engine, store=store, notifier=LogNotifier())
        for moment in MOMENTS:
            evaluator.evaluate(moment)
    finally:
        engine.close()


def test_s3_store_records_what_the_local_one_does(tmp_path: Path, s3: Any, bucket: str) -> None:
    rng = np.random.default_rng(8)
    frames = [
        window_events(
            rng, code="2000", start=T0 + WINDOW * i, n=90, devices=12,
            weak_share=0.6 if 6 <= i < 10 else 0.0,
        )
        for i in range(16)
    ]  # fmt: skip
    write_events(tmp_path, pd.concat(frames, ignore_index=True))
    local = LocalAlertStore(f"file://{tmp_path}")
    remote = S3AlertStore(s3, f"s3://{bucket}/lake")
    run(tmp_path, local)
    run(tmp_path, remote)
    assert remote.days() == local.days() == ["2026-11-23"]
    assert remote.cycles("2026-11-23") == local.cycles("2026-11-23") == MOMENTS
    assert remote.read(T0) is None
    want = history(local, T0, MOMENTS[-1])
    assert {r["state"] for r in want} == {"pending", "firing", "resolved"}
    assert history(remote, T0, MOMENTS[-1]) == want
    keys = s3.list_objects_v2(Bucket=bucket, Prefix="lake/alert_events/")["Contents"]
    first = "lake/alert_events/dt=2026-11-23/eval-20261123T103100Z.parquet"
    assert keys[0]["Key"] == first
    now = MOMENTS[-1] + dt.timedelta(seconds=5)
    assert active_alerts(remote, now=now, stale_after_s=300) == active_alerts(
        local, now=now, stale_after_s=300
    )
