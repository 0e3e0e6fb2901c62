"""Core transforms (validated Arrow batch -> lake tables) against hand-computed outputs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from processor_testdata import MALFORMED, encode, make_event, source_batch

from signal_common.lake import (
    COVERAGE_BY_POSTAL_CODE,
    GPS_PRECISION_BY_PROVIDER,
    QUARANTINE,
    SIGNAL_STRENGTH_BY_OPERATOR,
    STATUS_COUNT,
    LakeTable,
    table_arrow_schema,
)
from signal_common.lake import (
    EVENTS as EVENTS_TABLE,
)
from signal_common.partials import device_estimate
from signal_common.quality import BAND_NAMES, DEFAULT_BANDS
from signal_processor.core import aggregates as agg
from signal_processor.core.validate import validate_batch

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
               status="IN_SERVICE", latitude=40.3, longitude=-3.3, device_id="dev-1"),
]  # fmt: skip
# devices: events 1 and 5 come from dev-1, the others from dev-2, dev-3 and dev-4


def _hist(*signals: int) -> list[int]:
    """The lake's 131-bin signal histogram of `signals`, by hand: bin i counts -150 + i dBm."""
    bins = [0] * 131
    for s in signals:
        bins[s + 150] += 1
    return bins


@pytest.fixture(scope="module")
def validated() -> pa.Table:
    payloads = [encode(e) for e in EVENTS] + [MALFORMED[0][0], MALFORMED[3][0]]
    return validate_batch(source_batch(payloads, T0 + dt.timedelta(minutes=5)))


@pytest.fixture(scope="module")
def events(validated: pa.Table) -> pa.Table:
    return agg.valid_events(validated)


def _common(window: dt.datetime) -> dict[str, Any]:
    return {
        "window_start": window,
        "window_end": window + dt.timedelta(minutes=1),
        "batch_id": BATCH,
        "dt": "2026-11-23",
        "hour": 10,
    }


def _assert_rows(got: pa.Table, table: LakeTable, expected: list[dict[str, Any]]) -> None:
    """`got` has the table's layout schema and the expected rows (any order; floats to 1e-12)."""
    assert got.schema == table_arrow_schema(table, with_partitions=True, with_lineage=False)
    key = lambda row: sorted(  # noqa: E731
        (k, str(v)) for k, v in row.items() if not isinstance(v, float | bytes)
    )
    rows = got.to_pylist()
    for row in rows:  # a sketch is compared by its estimate (exact at these few devices)
        row["devices_hll"] = round(device_estimate(row["devices_hll"]))
    rows = sorted(rows, key=key)
    want = sorted(({c: row[c] for c in got.column_names} for row in expected), key=key)
    assert len(rows) == len(want)
    for row, expected_row in zip(rows, want, strict=True):
        assert row == pytest.approx(expected_row, rel=1e-12)


def test_signal_strength_partials(events: pa.Table) -> None:
    got = agg.signal_strength_partials(events, DEFAULT_BANDS, BATCH)
    expected = [
        dict(**_common(W0), operator="Movistar", network_type="4G", event_count=3,
             signal_sum=-271, signal_min=-101, signal_max=-75, band_excellent_count=1,
             band_good_count=0, band_fair_count=1, band_poor_count=1,
             signal_sq_sum=75**2 + 95**2 + 101**2, signal_hist=_hist(-75, -95, -101),
             devices_hll=2),
        dict(**_common(W0), operator="Orange", network_type="5G", event_count=1,
             signal_sum=-110, signal_min=-110, signal_max=-110, band_excellent_count=0,
             band_good_count=0, band_fair_count=1, band_poor_count=0,
             signal_sq_sum=110**2, signal_hist=_hist(-110), devices_hll=1),
        dict(**_common(W1), operator="Movistar", network_type="4G", event_count=1,
             signal_sum=-85, signal_min=-85, signal_max=-85, band_excellent_count=0,
             band_good_count=1, band_fair_count=0, band_poor_count=0,
             signal_sq_sum=85**2, signal_hist=_hist(-85), devices_hll=1),
    ]  # fmt: skip
    _assert_rows(got, SIGNAL_STRENGTH_BY_OPERATOR, expected)


def test_gps_precision_partials(events: pa.Table) -> None:
    got = agg.gps_precision_partials(events, BATCH)
    expected = [
        dict(**_common(W0), provider="gps", event_count=2, precision_sum=12.0,
             precision_min=5.0, precision_max=7.0, satellites_sum=8, satellites_count=1,
             precision_sq_sum=25.0 + 49.0, devices_hll=1),
        dict(**_common(W0), provider="network", event_count=1, precision_sum=50.0,
             precision_min=50.0, precision_max=50.0, satellites_sum=0, satellites_count=0,
             precision_sq_sum=2500.0, devices_hll=1),
        dict(**_common(W0), provider="fused", event_count=1, precision_sum=20.0,
             precision_min=20.0, precision_max=20.0, satellites_sum=4, satellites_count=1,
             precision_sq_sum=400.0, devices_hll=1),
        dict(**_common(W1), provider="gps", event_count=1, precision_sum=3.0,
             precision_min=3.0, precision_max=3.0, satellites_sum=10, satellites_count=1,
             precision_sq_sum=9.0, devices_hll=1),
    ]  # fmt: skip
    _assert_rows(got, GPS_PRECISION_BY_PROVIDER, expected)


def test_status_and_coverage_partials(events: pa.Table) -> None:
    _assert_rows(
        agg.status_count_partials(events, BATCH),
        STATUS_COUNT,
        [
            dict(
                **_common(W0),
                postal_code="28001",
                status="IN_SERVICE",
                event_count=3,
                devices_hll=2,
            ),
            dict(
                **_common(W0),
                postal_code="28001",
                status="OUT_OF_SERVICE",
                event_count=1,
                devices_hll=1,
            ),
            dict(
                **_common(W1),
                postal_code="28002",
                status="IN_SERVICE",
                event_count=1,
                devices_hll=1,
            ),
        ],
    )
    _assert_rows(
        agg.coverage_partials(events, BATCH),
        COVERAGE_BY_POSTAL_CODE,
        [
            dict(**_common(W0), postal_code="28001", event_count=4, latitude_sum=160.6,
                 longitude_sum=-12.6, signal_sum=-381, out_of_service_count=1,
                 signal_sq_sum=75**2 + 95**2 + 110**2 + 101**2,
                 signal_hist=_hist(-75, -95, -110, -101), devices_hll=3),
            dict(**_common(W1), postal_code="28002", event_count=1, latitude_sum=40.4,
                 longitude_sum=-3.4, signal_sum=-85, out_of_service_count=0,
                 signal_sq_sum=85**2, signal_hist=_hist(-85), devices_hll=1),
        ],
    )  # fmt: skip


def test_quarantine_and_events_tables(validated: pa.Table) -> None:
    quarantine = agg.quarantine_table(validated, BATCH)
    assert quarantine.schema == table_arrow_schema(
        QUARANTINE, with_partitions=True, with_lineage=False
    )
    rows = quarantine.to_pylist()
    assert sorted(r["reason"] for r in rows) == ["invalid_json", "wrong_type"]
    assert all((r["dt"], r["hour"], r["batch_id"]) == ("2026-11-23", 10, BATCH) for r in rows)
    events = agg.events_table(validated)
    assert events.schema == table_arrow_schema(
        EVENTS_TABLE, with_partitions=True, with_lineage=False
    )
    assert events.num_rows == 5
    assert {r["event_id"] for r in events.to_pylist()} == {e["event_id"] for e in EVENTS}
    assert {(r["dt"], r["hour"]) for r in events.to_pylist()} == {("2026-11-23", 10)}


def test_batch_quality(validated: pa.Table) -> None:
    quality = agg.batch_quality(validated)
    assert quality.valid_rows == 5
    assert quality.quarantined_by_reason == {"invalid_json": 1, "wrong_type": 1}
    assert quality.quarantined_rows == 2
    assert quality.max_event_time == T0 + dt.timedelta(seconds=65)
    assert quality.max_lateness_s == 290.0  # arrival T0+5 min, oldest event T0+10 s


def test_batch_quality_of_a_batch_without_valid_rows(validated: pa.Table) -> None:
    quality = agg.batch_quality(validated.filter(~pc.field("is_valid")))
    assert (quality.valid_rows, quality.quarantined_rows) == (0, 2)
    assert quality.max_lateness_s is None
    assert quality.max_event_time is None


def test_partitions_follow_the_utc_window_start_across_midnight() -> None:
    late = [make_event(i, event_time=t) for i, t in enumerate(
        ["2026-11-23T23:59:59.999+00:00", "2026-11-24T00:00:00+00:00",
         "2026-11-24T01:30:00+02:00"])]  # fmt: skip
    arrival = dt.datetime(2026, 11, 24, 0, 10, tzinfo=dt.UTC)  # plausible for every event
    source = source_batch([encode(e) for e in late], arrival)
    status = agg.status_count_partials(agg.valid_events(validate_batch(source)), BATCH)
    got = sorted((r["window_start"], r["dt"], r["hour"]) for r in status.to_pylist())
    midnight = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    assert got == sorted(
        [
            (midnight - dt.timedelta(minutes=1), "2026-11-23", 23),
            (midnight, "2026-11-24", 0),
            (midnight - dt.timedelta(minutes=30), "2026-11-23", 23),
        ]
    )


def _bands_of(table: pa.Table) -> list[str | None]:
    masks = agg.band_masks(table, DEFAULT_BANDS)
    per_row = zip(*(masks[b].to_pylist() for b in BAND_NAMES), strict=True)
    return [
        next((b for b, hit in zip(BAND_NAMES, hits, strict=True) if hit), None)
        if sum(hits) <= 1
        else "several"
        for hits in per_row
    ]


def test_band_masks_match_the_python_bands() -> None:
    rows = [(n, s) for n in ("2G", "3G", "4G", "5G") for s in range(-130, -50, 3)]
    table = pa.table(
        {
            "network_type": [n for n, _ in rows],
            "signal_dbm": pa.array([s for _, s in rows], pa.int32()),
        }
    )
    assert _bands_of(table) == [DEFAULT_BANDS[n].band(s) for n, s in rows]


def test_no_band_for_a_network_without_bands() -> None:
    table = pa.table({"network_type": ["4G", "6G"], "signal_dbm": pa.array([-70, -70], pa.int32())})
    assert _bands_of(table) == ["excellent", None]
