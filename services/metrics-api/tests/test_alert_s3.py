"""alert_events on S3 (moto server on 127.0.0.1): the same cycles as on a local lake, read back
by the evaluator and by the API's reader (AWS runs the evaluator with an s3:// lake root); and a
denied prefix, which is a failed cycle and a 503, never an empty state read as "all clear"."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import numpy as np
import pandas as pd
import pytest
from alert_fixtures import T0, WINDOW, history, window_events, write_events
from fastapi.testclient import TestClient
from test_alert_evaluator_metrics import scrape  # its /metrics page, parsed

from signal_api.adapters.duckdb_engine import DuckDBEngine
from signal_api.alerts.reader import active_alerts
from signal_api.alerts.store import AlertStore, LocalAlertStore, S3AlertStore
from signal_api.app import create_app
from signal_api.core.errors import LakeUnreadableError
from signal_api.observability import EvaluatorMetrics, serve_metrics
from signal_api.settings import ApiSettings
from signal_api.wiring import LogNotifier, build_evaluator

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


# --- a denied prefix: moto enforcing IAM ---------------------------------------------------------
# moto server checks each request's SigV4 signature and the caller's IAM policies once told to
# through its documented /moto-api/reset-auth ("IAM-like Access Control", moto's docs): a
# request a policy denies gets S3's own 403 AccessDenied, the answer a bucket policy or a
# missing grant gives in AWS. (moto does not evaluate bucket policies for this, so the Deny is
# the user's policy; what the store sees, a ClientError AccessDenied, is the same.)
def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _set_auth(moto: str, initial_no_auth_actions: str) -> None:
    request = urllib.request.Request(
        f"{moto}/moto-api/reset-auth",
        data=initial_no_auth_actions.encode(),
        # not the form type urllib sends by default: moto reads the raw body
        headers={"Content-Type": "text/plain"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


@pytest.fixture
def users(moto_endpoint_url: str, bucket: str) -> Iterator[dict[str, Any]]:
    """S3 clients of three IAM users, with moto enforcing IAM until the test ends: `reader`
    may do anything on S3; `no_get` may not read alert_events' objects; `no_list` may not list
    the bucket."""
    iam = boto3.client("iam", endpoint_url=moto_endpoint_url, region_name="us-east-1")
    everything = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
    denials: dict[str, list[dict[str, Any]]] = {
        "reader": [],
        "no_get": [
            {
                "Effect": "Deny",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/lake/alert_events/*",
            }
        ],
        "no_list": [
            {"Effect": "Deny", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"}
        ],
    }
    clients: dict[str, Any] = {}
    for role, deny in denials.items():
        name = f"{role}-{uuid.uuid4().hex[:8]}"
        iam.create_user(UserName=name)
        iam.put_user_policy(
            UserName=name, PolicyName="s3", PolicyDocument=_policy(everything, *deny)
        )
        key = iam.create_access_key(UserName=name)["AccessKey"]
        clients[role] = boto3.client(
            "s3",
            endpoint_url=moto_endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
        )
        clients[f"{role}_key"] = key
    _set_auth(moto_endpoint_url, "0")
    try:
        yield clients
    finally:
        _set_auth(moto_endpoint_url, "inf")  # moto's default: no checks (the other tests)


def committed_cycles(root: Path, store: AlertStore) -> None:
    """An outage lake under `root` and its first cycles committed to `store`."""
    rng = np.random.default_rng(9)
    frames = [
        window_events(rng, code="2000", start=T0 + WINDOW * i, n=90, devices=12,
                      out_of_service_share=0.5)
        for i in range(12)
    ]  # fmt: skip
    write_events(root, pd.concat(frames, ignore_index=True))
    run(root, store)


@pytest.mark.parametrize(("user", "what"), [("no_get", "eval-"), ("no_list", "alert_events")])
def test_a_denied_alert_state_fails_the_cycle_loudly(
    tmp_path: Path, s3: Any, bucket: str, users: dict[str, Any], user: str, what: str
) -> None:
    committed_cycles(tmp_path, S3AlertStore(users["reader"], f"s3://{bucket}/lake"))
    reader = S3AlertStore(users["reader"], f"s3://{bucket}/lake")
    before = reader.cycles("2026-11-23")
    assert before == MOMENTS
    metrics = EvaluatorMetrics()
    server = serve_metrics(metrics.registry, host="127.0.0.1", port=0)
    settings = ApiSettings(lake_root=f"file://{tmp_path}", auth_enabled=False)
    engine = DuckDBEngine(settings.lake_root)
    try:
        evaluator = build_evaluator(
            settings,
            engine,
            store=S3AlertStore(users[user], f"s3://{bucket}/lake"),
            notifier=LogNotifier(),
            metrics=metrics,
        )
        with pytest.raises(LakeUnreadableError) as raised:
            evaluator.evaluate(MOMENTS[-1] + WINDOW)
        found = scrape(f"http://127.0.0.1:{server.server_port}/metrics")
    finally:
        engine.close()
        server.shutdown()
        server.server_close()
    message = str(raised.value)
    assert message.startswith("the alert state cannot be read: "), message
    assert what in message
    assert "AccessDenied" in message
    assert raised.value.code == "lake_unreadable"
    # counted as a failed cycle on the evaluator's /metrics, with no success recorded ...
    assert found[("signal_alert_cycles_total", (("outcome", "failed"),))] == 1.0
    assert ("signal_alert_cycles_total", (("outcome", "committed"),)) not in found
    assert found[("signal_alert_last_cycle_timestamp_seconds", ())] == 0.0
    # ... and nothing written: no cycle claims a state it could not read
    assert reader.cycles("2026-11-23") == before


@pytest.mark.parametrize("user", ["no_get", "no_list"])
@pytest.mark.parametrize("path", ["/v1/alerts", "/v1/alerts/history"])
def test_a_denied_alert_state_is_a_503_naming_it(
    tmp_path: Path,
    bucket: str,
    users: dict[str, Any],
    moto_endpoint_url: str,
    monkeypatch: pytest.MonkeyPatch,
    user: str,
    path: str,
) -> None:
    committed_cycles(tmp_path, S3AlertStore(users["reader"], f"s3://{bucket}/lake"))

    def get(role: str) -> httpx.Response:
        # the API builds its store from its settings and the process's credentials, as in ECS
        key = users[f"{role}_key"]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # it keeps the first credentials
        settings = ApiSettings(
            lake_root=f"s3://{bucket}/lake",
            s3_endpoint_url=moto_endpoint_url,
            aws_region="us-east-1",
            auth_enabled=False,
        )
        engine = DuckDBEngine(f"file://{tmp_path}")
        now = MOMENTS[-1] + dt.timedelta(seconds=20)
        try:
            client = TestClient(create_app(settings, engine, clock=lambda: now))
            query = {"from": T0.isoformat(), "to": now.isoformat()} if "history" in path else {}
            return client.get(path, params=query)
        finally:
            engine.close()

    granted = get("reader")
    assert granted.status_code == 200, granted.text  # the same request with the grant answers
    response = get(user)
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "lake_unreadable"
    assert "alert_events" in error["message"] or "eval-" in error["message"]
    assert "AccessDenied" in error["message"]
