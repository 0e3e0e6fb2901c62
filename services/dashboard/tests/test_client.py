"""The API client: retries, error sentences, the key header, and typed routes against the real
metrics API over the fixture lake (figures checked against the known events)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from dashboard_support import API_KEY, evaluate_alerts_once
from lake import TROUBLE_CODE, write_lake

from signal_dashboard.adapters.api_client import ApiClient, ApiError, ApiRequest
from signal_local.endpoints import ManagedProcess, free_port, start_python_service


def client_with(handler, **kwargs) -> tuple[ApiClient, list[float]]:  # type: ignore[no-untyped-def]
    sleeps: list[float] = []
    client = ApiClient(
        "http://api.test", transport=httpx.MockTransport(handler), sleep=sleeps.append, **kwargs
    )
    return client, sleeps


def test_retries_5xx_with_bounded_backoff_then_succeeds() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) < 3:
            return httpx.Response(
                503, json={"error": {"code": "engine_unavailable", "message": "the engine is down"}}
            )
        return httpx.Response(200, json={"ok": True})

    client, sleeps = client_with(handler, retries=2, backoff_base_s=0.5, api_key="k")
    response = client.get(ApiRequest("/v1/summary"))
    assert response.body == {"ok": True}
    assert len(calls) == 3
    assert all(c.headers["X-API-Key"] == "k" for c in calls)
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.5
    assert 0 <= sleeps[1] <= 1.0


def test_gives_up_after_the_retries_with_the_apis_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            504,
            json={"error": {"code": "query_timeout", "message": "the query took longer than 20 s"}},
        )

    client, sleeps = client_with(handler, retries=1)
    with pytest.raises(ApiError) as caught:
        client.summary()
    assert str(caught.value) == "the metrics API answered 504: the query took longer than 20 s"
    assert caught.value.status == 504
    assert caught.value.code == "query_timeout"
    assert len(sleeps) == 1


def test_4xx_is_not_retried_and_names_the_allowed_values() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        body = {
            "error": {
                "code": "invalid_parameter",
                "parameter": "granularity",
                "message": "parameter 'granularity': invalid value",
                "allowed": ["1m", "5m"],
            }
        }
        return httpx.Response(422, json=body)

    client, _ = client_with(handler, retries=3)
    with pytest.raises(ApiError, match=r"422: parameter 'granularity'.*\(allowed: 1m, 5m\)"):
        client.get(ApiRequest("/v1/kpis/signal-strength", (("granularity", "2m"),)))
    assert len(calls) == 1


def test_alerts_not_evaluated_is_an_answer_not_retried() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        body = {"error": {"code": "alerts_not_evaluated", "message": "no alert cycle yet"}}
        return httpx.Response(503, json=body)

    client, sleeps = client_with(handler, retries=3)
    with pytest.raises(ApiError) as caught:
        client.alerts_active(postal_codes=("47014",))
    assert caught.value.code == "alerts_not_evaluated"
    assert [str(c.url) for c in calls] == ["http://api.test/v1/alerts/active?postal_code=47014"]
    assert sleeps == []


def test_rate_limit_and_non_json_errors_read_plainly() -> None:
    def limited(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429,
            headers={"Retry-After": "7"},
            json={"error": {"code": "rate_limited", "message": "too many requests"}},
        )

    client, _ = client_with(limited)
    with pytest.raises(ApiError, match="429: too many requests; retry after 7 s"):
        client.summary()
    client, _ = client_with(
        lambda r: httpx.Response(502, text="<html>bad gateway</html>"), retries=0
    )
    with pytest.raises(ApiError, match=r"answered 502 \(Bad Gateway\)"):
        client.summary()


def test_connection_refused_names_the_url() -> None:
    port = free_port()  # nothing listens here
    client = ApiClient(f"http://127.0.0.1:{port}", retries=1, backoff_base_s=0.01, timeout_s=2)
    with pytest.raises(ApiError, match=f"cannot reach the metrics API at http://127.0.0.1:{port}"):
        client.summary()


def test_request_url_and_curl_reproduce_the_call() -> None:
    request = ApiRequest(
        "/v1/coverage", (("from", "2026-11-24T08:00:00Z"), ("postal_code", "47 1"))
    )
    url = request.url("http://api:8080")
    assert url == "http://api:8080/v1/coverage?from=2026-11-24T08%3A00%3A00Z&postal_code=47+1"
    assert request.curl("http://api:8080") == f"curl -H 'X-API-Key: $SIGNAL_API_KEY' '{url}'"


def test_typed_routes_against_the_real_api(api: ManagedProcess, events: pd.DataFrame) -> None:
    client = ApiClient(api.url, api_key=API_KEY)
    start = events["event_time"].min().floor("h").to_pydatetime()
    end = (events["event_time"].max().floor("min") + pd.Timedelta(minutes=1)).to_pydatetime()
    strength = client.signal_strength(
        start, end, "5m", operators=("Orange",), by_network_type=False
    )
    rows = strength.body["rows"]
    orange = events[events["operator"] == "Orange"]
    buckets = orange.groupby(orange["event_time"].dt.floor("5min"))["signal_dbm"].agg(
        ["size", "mean"]
    )
    assert len(rows) == len(buckets)
    for row in rows:
        expected = buckets.loc[pd.Timestamp(row["bucket_start"])]
        assert row["event_count"] == row["events"] == expected["size"]
        if expected["size"] < 20:  # the API's default min_events: withheld, its count kept
            assert (row["suppressed"], row["avg_signal_dbm"]) == ("min_events", None)
            continue
        assert row["avg_signal_dbm"] == pytest.approx(expected["mean"], abs=1e-9)
    coverage = client.coverage(start, end, postal_codes=("47014",)).body["rows"]
    assert [r["event_count"] for r in coverage] == [int((events["postal_code"] == "47014").sum())]
    assert coverage[0]["signal_percentiles"] is None  # not asked
    (row,) = client.coverage(start, end, postal_codes=("47014",), percentiles=(10, 50)).body["rows"]
    # nearest rank over the raw events: the smallest value with at least p % of samples at or below
    signal = np.sort(events.loc[events["postal_code"] == "47014", "signal_dbm"].to_numpy())
    assert row["suppressed"] is None
    assert row["signal_percentiles"] == {
        f"p{p}": int(signal[-(-p * len(signal) // 100) - 1])
        for p in (10, 50)  # integer ceil
    }
    with pytest.raises(ApiError, match="granularity"):
        client.signal_strength(start, end, "2m")
    unauthorised = ApiClient(api.url, api_key="wrong")
    with pytest.raises(ApiError, match="403"):
        unauthorised.summary()
    assert isinstance(strength.received_at, dt.datetime)


def test_bands_and_meta_from_the_real_api(api: ManagedProcess, events: pd.DataFrame) -> None:
    from signal_common.quality import band_definition
    from signal_dashboard.core import shaping

    client = ApiClient(api.url, api_key=API_KEY)
    assert client.bands().body == band_definition()  # the API applies libs/common's defaults
    start = events["event_time"].min().floor("h").to_pydatetime()
    end = (events["event_time"].max().floor("min") + pd.Timedelta(minutes=1)).to_pydatetime()
    meta = client.coverage(start, end).body["meta"]
    # the fixture's batches: each batch's newest event, written a second after the last event
    newest_event = events["event_time"].max()
    assert abs(pd.Timestamp(meta["watermark"]) - newest_event) < pd.Timedelta(microseconds=2)
    newest_batch = newest_event + pd.Timedelta(seconds=1)
    assert abs(pd.Timestamp(meta["newest_batch_time"]) - newest_batch) < pd.Timedelta(
        microseconds=2
    )
    assert [q["name"] for q in meta["queries"]] == ["coverage"]
    text = shaping.data_as_of([{"meta": meta}])
    assert text is not None
    assert text.startswith(f"Data as of {newest_event:%Y-%m-%d %H:%M:%S} UTC")


def test_alert_routes_against_the_real_api_and_evaluator(
    tmp_path: Path, events: pd.DataFrame
) -> None:
    """A lake no evaluator has seen answers 503 alerts_not_evaluated; after one real cycle the
    active alerts, their history and the rules read back, figures checked against the events."""
    lake_dir = tmp_path / "lake"
    write_lake(lake_dir, events)
    proc = start_python_service(
        "metrics-api",
        "signal_api.main",
        port=(port := free_port()),
        env={
            "SIGNAL_API_LAKE_ROOT": f"file://{lake_dir}",
            "SIGNAL_API_PORT": str(port),
            "SIGNAL_API_AUTH_ENABLED": "false",
            "SIGNAL_API_CACHE_TTL_S": "0",
            "SIGNAL_API_LOG_JSON": "false",
        },
        log_dir=tmp_path / "logs",
        probe_path="/healthz",
    )
    try:
        client = ApiClient(proc.url, retries=2, backoff_base_s=0.01)
        with pytest.raises(ApiError) as caught:
            client.alerts_active()
        assert caught.value.status == 503
        assert caught.value.code == "alerts_not_evaluated"
        evaluate_alerts_once(lake_dir, tmp_path / "delivery")
        active = client.alerts_active(postal_codes=(TROUBLE_CODE,)).body
        assert active["stale"] is False
        assert {a["area"] for a in active["alerts"]} == {TROUBLE_CODE}
        outage = next(a for a in active["alerts"] if a["rule"] == "out_of_service")
        assert outage["state"] == "firing"
        # the oracle: the trouble code's events of the 15 minutes before the window's end
        end = pd.Timestamp(outage["window_end"])
        recent = events[
            (events["postal_code"] == TROUBLE_CODE)
            & (events["event_time"] >= end - pd.Timedelta(minutes=15))
            & (events["event_time"] < end)
        ]
        assert outage["sample_size"] == len(recent)
        assert outage["measures"]["out_of_service_share"] == pytest.approx(
            (recent["status"] == "OUT_OF_SERVICE").mean()
        )
        evaluated = pd.Timestamp(active["evaluated_at"]).to_pydatetime()
        history = client.alerts_history(
            evaluated - dt.timedelta(hours=1), evaluated + dt.timedelta(minutes=1)
        ).body
        firing = [
            t for t in history["transitions"]
            if t["alert_id"] == outage["alert_id"] and t["state"] == "firing"
        ]  # fmt: skip
        assert len(firing) == 1
        assert firing[0]["since"] == outage["since"]
        rules = client.alert_rules().body
        assert [r["rule"] for r in rules["rules"]] == [
            "out_of_service", "signal_drop", "coverage_hole",
        ]  # fmt: skip
        assert all(r["source"] for r in rules["rules"])
    finally:
        proc.stop()
