"""Core Spark transforms against hand-computed expected outputs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from processor_testdata import MALFORMED, encode, make_event
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from signal_common.quality import DEFAULT_BANDS
from signal_processor.core import aggregates as agg
from signal_processor.core.validate import VALIDATED_DDL, validate_batches

T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
W0, W1, W2 = T0, T0 + dt.timedelta(minutes=1), T0 + dt.timedelta(minutes=2)
BATCH = 7


def _at(seconds: int) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).isoformat()


EVENTS = [
    make_event(1, event_time=_at(10), operator="Movistar", network_type="4G", signal_dbm=-75,
               provider="gps", gps_precision_m=5.0, satellites=8, postal_code="28001",
               status="IN_SERVICE", latitude=40.0, longitude=-3.0),
    make_event(2, event_time=_at(50), operator="Movistar", network_type="4G", signal_dbm=-95,
               provider="network", gps_precision_m=50.0, satellites=None, postal_code="28001",
               status="OUT_OF_SERVICE", latitude=40.2, longitude=-3.2),
    make_event(3, event_time=_at(65), operator="Movistar", network_type="4G", signal_dbm=-85,
               provider="gps", gps_precision_m=3.0, satellites=10, postal_code="28002",
               status="IN_SERVICE", latitude=40.4, longitude=-3.4),
    make_event(4, event_time=_at(30), operator="Orange", network_type="5G", signal_dbm=-110,
               provider="fused", gps_precision_m=20.0, satellites=4, postal_code="28001",
               status="IN_SERVICE", latitude=40.1, longitude=-3.1),
    make_event(5, event_time=_at(59), operator="Movistar", network_type="4G", signal_dbm=-101,
               provider="gps", gps_precision_m=7.0, satellites=None, postal_code="28001",
               status="IN_SERVICE", latitude=40.3, longitude=-3.3),
]  # fmt: skip


@pytest.fixture(scope="module")
def validated(spark: Any) -> Any:
    payloads = [encode(e) for e in EVENTS] + [MALFORMED[0][0], MALFORMED[3][0]]
    arrival = T0 + dt.timedelta(minutes=5)
    raw = spark.createDataFrame(
        [(p, "shardId-0", str(i), 0, arrival) for i, p in enumerate(payloads)],
        "data binary, shard_id string, sequence_number string, sub_sequence_number bigint, "
        "arrival_time timestamp",
    )
    return raw.mapInArrow(validate_batches, VALIDATED_DDL).cache()


def _common(window: dt.datetime) -> dict[str, Any]:
    return {
        "window_start": window.replace(tzinfo=None),
        "window_end": (window + dt.timedelta(minutes=1)).replace(tzinfo=None),
        "batch_id": BATCH,
        "dt": "2026-11-23",
        "hour": 10,
    }


def _in_order(got: Any, rows: list[Row]) -> list[Row]:
    """Expected rows with their fields in the DataFrame's column order."""
    return [Row(**{c: r[c] for c in got.columns}) for r in (r.asDict() for r in rows)]


def test_signal_strength_partials(validated: Any) -> None:
    got = agg.signal_strength_partials(agg.valid_events(validated), DEFAULT_BANDS, BATCH)
    expected = [
        Row(**_common(W0), operator="Movistar", network_type="4G", event_count=3,
            signal_sum=-271, signal_min=-101, signal_max=-75, band_excellent_count=1,
            band_good_count=0, band_fair_count=1, band_poor_count=1),
        Row(**_common(W0), operator="Orange", network_type="5G", event_count=1,
            signal_sum=-110, signal_min=-110, signal_max=-110, band_excellent_count=0,
            band_good_count=0, band_fair_count=1, band_poor_count=0),
        Row(**_common(W1), operator="Movistar", network_type="4G", event_count=1,
            signal_sum=-85, signal_min=-85, signal_max=-85, band_excellent_count=0,
            band_good_count=1, band_fair_count=0, band_poor_count=0),
    ]  # fmt: skip
    assertDataFrameEqual(got, _in_order(got, expected), checkRowOrder=False)


def test_gps_precision_partials(validated: Any) -> None:
    got = agg.gps_precision_partials(agg.valid_events(validated), BATCH)
    expected = [
        Row(**_common(W0), provider="gps", event_count=2, precision_sum=12.0,
            precision_min=5.0, precision_max=7.0, satellites_sum=8, satellites_count=1),
        Row(**_common(W0), provider="network", event_count=1, precision_sum=50.0,
            precision_min=50.0, precision_max=50.0, satellites_sum=0, satellites_count=0),
        Row(**_common(W0), provider="fused", event_count=1, precision_sum=20.0,
            precision_min=20.0, precision_max=20.0, satellites_sum=4, satellites_count=1),
        Row(**_common(W1), provider="gps", event_count=1, precision_sum=3.0,
            precision_min=3.0, precision_max=3.0, satellites_sum=10, satellites_count=1),
    ]  # fmt: skip
    assertDataFrameEqual(got, _in_order(got, expected), checkRowOrder=False)


def test_status_and_coverage_partials(validated: Any) -> None:
    events = agg.valid_events(validated)
    status = agg.status_count_partials(events, BATCH)
    coverage = agg.coverage_partials(events, BATCH)
    assertDataFrameEqual(
        status,
        _in_order(
            status,
            [
                Row(**_common(W0), postal_code="28001", status="IN_SERVICE", event_count=3),
                Row(**_common(W0), postal_code="28001", status="OUT_OF_SERVICE", event_count=1),
                Row(**_common(W1), postal_code="28002", status="IN_SERVICE", event_count=1),
            ],
        ),
        checkRowOrder=False,
    )
    assertDataFrameEqual(
        coverage,
        _in_order(
            coverage,
            [
                Row(
                    **_common(W0),
                    postal_code="28001",
                    event_count=4,
                    latitude_sum=160.6,
                    longitude_sum=-12.6,
                    signal_sum=-381,
                    out_of_service_count=1,
                ),
                Row(
                    **_common(W1),
                    postal_code="28002",
                    event_count=1,
                    latitude_sum=40.4,
                    longitude_sum=-3.4,
                    signal_sum=-85,
                    out_of_service_count=0,
                ),
            ],
        ),
        checkRowOrder=False,
        rtol=1e-12,
    )


def test_quarantine_and_events_tables(validated: Any) -> None:
    quarantine = agg.quarantine_table(validated, BATCH).collect()
    assert sorted(r["reason"] for r in quarantine) == ["invalid_json", "wrong_type"]
    assert all((r["dt"], r["hour"], r["batch_id"]) == ("2026-11-23", 10, BATCH) for r in quarantine)
    events = agg.events_table(validated)
    assert events.count() == 5
    assert events.columns[-2:] == ["dt", "hour"]
    assert {r["event_id"] for r in events.collect()} == {e["event_id"] for e in EVENTS}


def test_quality_band_expression_matches_the_python_bands(spark: Any) -> None:
    rows = [(n, s) for n in ("2G", "3G", "4G", "5G") for s in range(-130, -50, 3)]
    df = spark.createDataFrame(rows, "network_type string, signal_dbm int")
    got = {(r[0], r[1]): r[2] for r in df.select("*", agg.quality_band(DEFAULT_BANDS)).collect()}
    assert got == {(n, s): DEFAULT_BANDS[n].band(s) for n, s in rows}
