"""What responses say about themselves (#24): the bands definition at /v1/meta/bands, and every
data response's meta (watermark, newest batch, queries with their SQL hash and partitions),
each against an oracle: pandas over the fixture batches, or values written out by hand."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import END, START, api_settings, write_lake  # pants: no-infer-dep
from fastapi.testclient import TestClient
from pydantic import ValidationError

from signal_api.adapters.duckdb_engine import DuckDBEngine
from signal_api.app import create_app
from signal_api.core.models import BandsResponse, Meta
from signal_api.core.queries import Query
from signal_api.settings import ApiSettings
from signal_common.lake import PIPELINE_BATCHES
from signal_common.quality import BANDS_VERSION, DEFAULT_BANDS
from signal_testing.fixture_lake import write_table

Iso = Callable[[dt.datetime], str]
# An API clock just after the fixture's last batch: its batches lie in the meta's lookback.
API_NOW = END + dt.timedelta(minutes=10)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingEngine:
    """The real DuckDBEngine, recording the name of every query it runs."""

    name = "counting"

    def __init__(self, inner: DuckDBEngine) -> None:
        self.inner = inner
        self.names: list[str] = []

    def run(self, query: Query) -> list[dict[str, Any]]:
        self.names.append(query.name)
        return self.inner.run(query)

    def close(self) -> None:
        pass


def meta_batches(batches: pd.DataFrame) -> pd.DataFrame:
    """The fixture batches, with two the watermark must handle: one whose newest event is
    dated 90 s after its batch (a phone clock ahead) and a newest one without valid events
    (max_event_time NULL)."""
    frame = batches.copy()
    ahead = len(frame) - 1
    frame.loc[ahead, "max_event_time"] = frame.loc[ahead, "batch_time"] + pd.Timedelta(seconds=90)
    last = frame.tail(1).assign(
        batch_id=int(frame["batch_id"].max()) + 1,
        batch_time=frame["batch_time"].max() + pd.Timedelta(minutes=5),
        max_event_time=pd.Series([pd.NaT], dtype=frame["max_event_time"].dtype, index=[ahead]),
        valid_rows=0,
    )
    return pd.concat([frame, last], ignore_index=True)


def watermark_oracle(batches: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(watermark, newest batch time): the newest event time of any batch, each batch's
    capped at its batch time, a batch without events counting for nothing."""
    capped = batches[["max_event_time", "batch_time"]].min(axis=1, skipna=False)
    return capped.max(), batches["batch_time"].max()


@pytest.fixture(scope="module")
def meta_lake(
    tmp_path_factory: pytest.TempPathFactory, events: pd.DataFrame, batches: pd.DataFrame
) -> Path:
    root = tmp_path_factory.mktemp("meta-lake")
    write_lake(root, events, meta_batches(batches))
    return root


@pytest.fixture(scope="module")
def meta_engine(meta_lake: Path) -> Iterator[DuckDBEngine]:
    eng = DuckDBEngine(meta_lake.as_uri(), threads=1)
    yield eng
    eng.close()


def _app_client(
    lake: Path, engine: Any, *, now: dt.datetime = API_NOW, **overrides: Any
) -> TestClient:
    settings = api_settings(lake, **overrides)
    return TestClient(create_app(settings, engine, clock=lambda: now))


def _meta(body: dict[str, Any]) -> Meta:
    return Meta.model_validate(body["meta"])


# -- /v1/meta/bands ------------------------------------------------------------------------


def test_bands_endpoint_publishes_the_libs_common_definition(client: TestClient) -> None:
    response = client.get("/v1/meta/bands")
    assert response.status_code == 200, response.text
    body = response.json()
    BandsResponse.model_validate(body)
    assert body["version"] == BANDS_VERSION
    assert body["overridden"] is False
    assert body["band_names"] == ["excellent", "good", "fair", "poor"]
    assert set(body["networks"]) == set(DEFAULT_BANDS)
    for network, bands in DEFAULT_BANDS.items():
        published = body["networks"][network]
        assert published["measure"] == bands.measure
        assert published["source"] == bands.source
        assert published["hole_source"] == bands.hole_source
        assert (
            published["excellent_min"],
            published["good_min"],
            published["fair_min"],
            published["hole_max_dbm"],
        ) == (bands.excellent_min, bands.good_min, bands.fair_min, bands.hole_max_dbm)
        assert published["overridden"] is False
    # the LTE thresholds as the sources state them, written out by hand
    lte = body["networks"]["4G"]
    assert (lte["excellent_min"], lte["good_min"], lte["fair_min"], lte["hole_max_dbm"]) == (
        -80,
        -90,
        -100,
        -110,
    )


def test_bands_endpoint_applies_the_overrides_the_processor_takes(
    lake: Path, engine: DuckDBEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the processor's setting is SIGNAL_PROCESSOR_QUALITY_BAND_OVERRIDES; the API's takes the
    # same JSON under its own prefix
    monkeypatch.setenv(
        "SIGNAL_API_QUALITY_BAND_OVERRIDES", '{"4G": {"excellent_min": -75, "hole_max_dbm": -115}}'
    )
    settings = ApiSettings(lake_root=lake.as_uri(), auth_enabled=False)
    assert settings.quality_band_overrides == {"4G": {"excellent_min": -75, "hole_max_dbm": -115}}
    with TestClient(create_app(settings, engine)) as c:
        body = c.get("/v1/meta/bands").json()
    assert body["overridden"] is True
    lte = body["networks"]["4G"]
    assert (lte["excellent_min"], lte["good_min"], lte["hole_max_dbm"]) == (-75, -90, -115)
    assert lte["overridden"] is True
    assert lte["source"].endswith("(overridden by settings)")
    assert lte["hole_source"].endswith("(overridden by settings)")
    assert body["networks"]["3G"]["overridden"] is False
    assert body["networks"]["3G"]["good_min"] == -85


def test_invalid_band_overrides_fail_at_startup_naming_the_problem(lake: Path) -> None:
    with pytest.raises(ValidationError, match="unknown network type '6G'"):
        ApiSettings(lake_root=lake.as_uri(), quality_band_overrides={"6G": {"good_min": -90}})
    with pytest.raises(ValidationError, match="excellent_min > good_min > fair_min"):
        ApiSettings(lake_root=lake.as_uri(), quality_band_overrides={"4G": {"good_min": -70}})


# -- meta of data responses ------------------------------------------------------------------


def test_meta_watermark_and_newest_batch_match_the_batches(
    meta_lake: Path, meta_engine: DuckDBEngine, batches: pd.DataFrame, iso: Iso
) -> None:
    watermark, newest = watermark_oracle(meta_batches(batches))
    # the oracle's own checks: the cap and the NULL matter to it
    assert watermark < meta_batches(batches)["max_event_time"].max()
    assert newest > watermark
    params = {"from": iso(START), "to": iso(END)}
    with _app_client(meta_lake, meta_engine) as c:
        for path in ("/v1/coverage", "/v1/kpis/signal-strength", "/v1/pipeline", "/v1/summary"):
            meta = _meta(c.get(path, params=params if path != "/v1/summary" else {}).json())
            assert pd.Timestamp(meta.watermark) == watermark, path
            assert pd.Timestamp(meta.newest_batch_time) == newest, path
    # nothing committed in the lookback (summary_lookback_hours, 6 h by default): both null
    with _app_client(meta_lake, meta_engine, now=END + dt.timedelta(hours=8)) as c:
        meta = _meta(c.get("/v1/coverage", params=params).json())
    assert meta.watermark is None
    assert meta.newest_batch_time is None


def test_meta_names_each_query_with_its_sql_hash_and_partitions(
    meta_lake: Path, meta_engine: DuckDBEngine, events: pd.DataFrame, iso: Iso
) -> None:
    start = dt.datetime(2026, 11, 22, 23, 40, 30, tzinfo=dt.UTC)
    end = dt.datetime(2026, 11, 23, 1, 10, tzinfo=dt.UTC)
    engine = CountingEngine(meta_engine)
    with _app_client(meta_lake, engine) as c:

        def queries_of(path: str, **params: Any) -> list[dict[str, Any]]:
            response = c.get(path, params={"from": iso(start), "to": iso(end), **params})
            assert response.status_code == 200, response.text
            return [q.model_dump() for q in _meta(response.json()).queries]

        (signal,) = queries_of("/v1/kpis/signal-strength", granularity="5m")
        assert signal["name"] == "signal_strength"
        assert re.fullmatch(r"[0-9a-f]{64}", signal["sql_sha256"])
        # the partitions, by hand: 23:40:30 on the 22nd to 01:10 (exclusive) on the 23rd
        assert signal["partitions"] == [
            {
                "table": "signal_strength_by_operator",
                "first": "dt=2026-11-22/hour=23",
                "last": "dt=2026-11-23/hour=1",
                "hours": 3,
            }
        ]
        # oracle: every event behind the answer lies in a partition the meta names
        minute = events["event_time"].dt.floor("min")
        used = events[(minute >= pd.Timestamp(start)) & (minute < pd.Timestamp(end))]
        read = minute[used.index]
        hours = set(zip(read.dt.strftime("%Y-%m-%d"), read.dt.hour, strict=True))
        assert hours == {("2026-11-22", 23), ("2026-11-23", 0), ("2026-11-23", 1)}

        again = queries_of("/v1/kpis/signal-strength", granularity="5m")[0]
        assert again["sql_sha256"] == signal["sql_sha256"]  # same query, same hash
        shifted = c.get(
            "/v1/kpis/signal-strength",
            params={"from": iso(START), "to": iso(END), "granularity": "5m"},
        ).json()
        # another range binds other values into the same text: the same hash, other partitions
        assert _meta(shifted).queries[0].sql_sha256 == signal["sql_sha256"]
        assert _meta(shifted).queries[0].partitions[0].first == "dt=2026-11-22/hour=22"
        # another bucket width or a filter is another text: another hash
        other = queries_of("/v1/kpis/signal-strength", granularity="15m")[0]
        assert other["sql_sha256"] != signal["sql_sha256"]
        filtered = queries_of("/v1/kpis/signal-strength", granularity="5m", operator="Orange")[0]
        assert filtered["sql_sha256"] != signal["sql_sha256"]

        # several queries: the summary's, in the order they ran
        summary = [q.model_dump() for q in _meta(c.get("/v1/summary").json()).queries]
        assert [q["name"] for q in summary] == ["latest_window", "pipeline", "window_totals"]
        assert [p["table"] for p in summary[2]["partitions"]] == [
            "signal_strength_by_operator",
            "coverage_by_postal_code",
        ]


def test_sql_hash_is_sha256_of_the_query_text() -> None:
    from signal_api.core import queries
    from signal_api.core.meta import query_meta
    from signal_api.core.params import Granularity, TimeRange

    window = TimeRange(START, END)
    query = queries.coverage(window, postal_codes=("1000",))
    # hashlib over the text, and a second hash of a text differing by one character
    assert query_meta(query)["sql_sha256"] == hashlib.sha256(query.sql.encode()).hexdigest()
    assert (
        query_meta(queries.coverage(TimeRange(START, START + dt.timedelta(hours=30))))["sql_sha256"]
        == query_meta(queries.coverage(window))["sql_sha256"]
    )
    assert query_meta(queries.signal_strength(window, Granularity.M1))["partitions"] == [
        {
            "table": "signal_strength_by_operator",
            "first": "dt=2026-11-22/hour=22",
            "last": "dt=2026-11-23/hour=1",
            "hours": 4,
        }
    ]


def test_a_cached_answer_keeps_its_own_meta_and_the_state_is_read_once_per_ttl(
    tmp_path: Path, events: pd.DataFrame, batches: pd.DataFrame, iso: Iso
) -> None:
    write_lake(tmp_path, events.head(500), batches)
    inner = DuckDBEngine(tmp_path.as_uri(), threads=1)
    engine = CountingEngine(inner)
    clock = Clock()
    settings = api_settings(tmp_path, cache_ttl_s=10)
    params = {"from": iso(START), "to": iso(END)}
    try:
        with TestClient(create_app(settings, engine, clock=lambda: API_NOW, monotonic=clock)) as c:
            first = c.get("/v1/coverage", params=params).json()
            assert engine.names == ["lake_state", "coverage"]
            _, newest = watermark_oracle(batches)
            assert pd.Timestamp(first["meta"]["newest_batch_time"]) == newest
            # a newer batch is committed
            added = batches.tail(1).copy()
            added["batch_id"] = 99
            added["batch_time"] = newest + pd.Timedelta(minutes=2)
            added["max_event_time"] = newest + pd.Timedelta(minutes=1)
            write_table(tmp_path, PIPELINE_BATCHES, added, "batch_time", tag="new")
            hit = c.get("/v1/coverage", params=params).json()
            assert hit["meta"] == {**first["meta"], "cached": True}  # its own meta, no query
            assert engine.names == ["lake_state", "coverage"]
            # another answer within the TTL: the state read for the first one serves
            c.get("/v1/coverage", params={**params, "postal_code": "1000"})
            assert engine.names == ["lake_state", "coverage", "coverage"]
            clock.now += 11
            fresh = c.get("/v1/coverage", params=params).json()
            assert engine.names[-2:] == ["lake_state", "coverage"]
            assert fresh["meta"]["cached"] is False
            assert pd.Timestamp(fresh["meta"]["newest_batch_time"]) == added["batch_time"].iloc[0]
            assert pd.Timestamp(fresh["meta"]["watermark"]) == added["max_event_time"].iloc[0]
    finally:
        inner.close()


# -- /v1/pipeline throughput ---------------------------------------------------------------


def test_throughput_is_rated_over_the_span_with_batches(
    client: TestClient, batches: pd.DataFrame, iso: Iso
) -> None:
    start, end = START, END
    sel = batches[
        (batches["batch_time"] >= pd.Timestamp(start)) & (batches["batch_time"] < pd.Timestamp(end))
    ].sort_values("batch_time")
    span_s = (sel["batch_time"].iloc[-1] - sel["batch_time"].iloc[0]).total_seconds()
    oracle = (sel["valid_rows"].sum() - sel["valid_rows"].iloc[0]) / span_s
    for padding in (dt.timedelta(0), dt.timedelta(hours=12)):
        body = client.get(
            "/v1/pipeline", params={"from": iso(start - padding), "to": iso(end + padding)}
        ).json()
        assert body["throughput_events_per_s"] == pytest.approx(oracle, rel=1e-12)
        assert pd.Timestamp(body["throughput_from"]) == sel["batch_time"].iloc[0]
        assert pd.Timestamp(body["throughput_to"]) == sel["batch_time"].iloc[-1]
    # the range-wide figure is what the tile showed: diluted by the hours without batches
    seconds = (end - start + 2 * dt.timedelta(hours=12)).total_seconds()
    assert body["events_per_s"] == pytest.approx(sel["valid_rows"].sum() / seconds, rel=1e-12)
    assert body["events_per_s"] < oracle / 5


def test_throughput_needs_two_batches(client: TestClient, batches: pd.DataFrame, iso: Iso) -> None:
    first = batches["batch_time"].min().to_pydatetime()
    one = {"from": iso(first), "to": iso(first + dt.timedelta(seconds=1))}
    body = client.get("/v1/pipeline", params=one).json()
    assert body["batches"] == 1
    assert body["throughput_events_per_s"] is None
    none = {"from": iso(END + dt.timedelta(hours=1)), "to": iso(END + dt.timedelta(hours=2))}
    body = client.get("/v1/pipeline", params=none).json()
    assert (body["batches"], body["throughput_events_per_s"], body["throughput_from"]) == (
        0,
        None,
        None,
    )
    assert np.isfinite(body["events_per_s"])
