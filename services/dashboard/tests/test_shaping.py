"""Data shaping over API JSON: figures checked against hand-computed values."""

from __future__ import annotations

import datetime as dt
import io
import math

import fakes
import pandas as pd
import pytest

from signal_dashboard import charts
from signal_dashboard.core import shaping

NOW = dt.datetime(2026, 11, 24, 10, 0, 30, tzinfo=dt.UTC)


def test_overview_tiles_format_and_freshness_states() -> None:
    summary = {
        "window_start": "2026-11-24T09:58:00Z",
        "events_per_min": 1234,
        "avg_signal_dbm": -91.25,
        "out_of_service_share": 0.0321,
    }
    pipeline = {"quarantine_rate": 0.015, "newest_event_time": "2026-11-24T10:00:16Z"}
    tiles = {
        t.label: t
        for t in shaping.overview_tiles(summary, pipeline, now=NOW, warn_s=60, alert_s=300)
    }
    assert tiles["Events / min"].value == "1,234"
    assert tiles["Average signal"].value == "-91.2 dBm"  # -91.25 rounds half to even
    assert tiles["Out of service"].value == "3.2%"
    assert tiles["Quarantine rate"].value == "1.50%"
    assert tiles["Data freshness"].value == "newest event 14 s ago"
    assert tiles["Data freshness"].state == "ok"
    late = shaping.overview_tiles(
        summary, {"newest_event_time": "2026-11-24T09:58:00Z"}, now=NOW, warn_s=60, alert_s=300
    )
    assert (late[-1].value, late[-1].state) == ("newest event 2 min 30 s ago", "warn")
    empty = shaping.overview_tiles(None, None, now=NOW, warn_s=60, alert_s=300)
    assert [t.value for t in empty] == ["–", "–", "–", "–", "no events yet"]
    assert empty[-1].state == "alert"


@pytest.mark.parametrize(
    ("age", "state"), [(None, "alert"), (10, "ok"), (60, "ok"), (61, "warn"), (301, "alert")]
)
def test_freshness_state_thresholds(age: float | None, state: str) -> None:
    assert shaping.freshness_state(age, warn_s=60, alert_s=300) == state


def test_status_totals_sum_buckets_and_order_worst_first() -> None:
    rows = [
        {
            "bucket_start": "2026-11-24T09:00:00Z",
            "postal_code": "B",
            "status": "OUT_OF_SERVICE",
            "event_count": 3,
        },
        {
            "bucket_start": "2026-11-24T09:01:00Z",
            "postal_code": "B",
            "status": "OUT_OF_SERVICE",
            "event_count": 4,
        },
        {
            "bucket_start": "2026-11-24T09:00:00Z",
            "postal_code": "B",
            "status": "IN_SERVICE",
            "event_count": 10,
        },
        {
            "bucket_start": "2026-11-24T09:00:00Z",
            "postal_code": "A",
            "status": "IN_SERVICE",
            "event_count": 50,
        },
        {
            "bucket_start": "2026-11-24T09:00:00Z",
            "postal_code": "C",
            "status": "OUT_OF_SERVICE",
            "event_count": 7,
        },
    ]
    frame = shaping.status_totals({"rows": rows})
    assert frame.to_dict("records") == [
        {"postal_code": "B", "status": "IN_SERVICE", "event_count": 10},
        {"postal_code": "B", "status": "OUT_OF_SERVICE", "event_count": 7},
        {"postal_code": "C", "status": "OUT_OF_SERVICE", "event_count": 7},
        {"postal_code": "A", "status": "IN_SERVICE", "event_count": 50},
    ]


def test_status_series_share_per_bucket() -> None:
    rows = [
        {
            "bucket_start": "2026-11-24T09:00:00Z",
            "postal_code": "B",
            "status": "OUT_OF_SERVICE",
            "event_count": 3,
        },
        {
            "bucket_start": "2026-11-24T09:00:00Z",
            "postal_code": "B",
            "status": "IN_SERVICE",
            "event_count": 1,
        },
        {
            "bucket_start": "2026-11-24T09:01:00Z",
            "postal_code": "B",
            "status": "IN_SERVICE",
            "event_count": 5,
        },
        {
            "bucket_start": "2026-11-24T09:00:00Z",
            "postal_code": "Z",
            "status": "IN_SERVICE",
            "event_count": 9,
        },
    ]
    frame = shaping.status_series({"rows": rows}, "B")
    assert list(frame["event_count"]) == [1, 3, 5]
    assert list(frame["out_of_service_share"]) == [0.75, 0.75, 0.0]


def test_quality_shares_long_form_in_band_order() -> None:
    body = {
        "rows": [
            {
                "operator": "O",
                "network_type": "4G",
                "event_count": 10,
                "band_counts": {"excellent": 1, "good": 2, "fair": 3, "poor": 4},
                "band_shares": {"excellent": 0.1, "good": 0.2, "fair": 0.3, "poor": 0.4},
            }
        ]
    }
    frame = shaping.quality_shares(body)
    assert list(frame["band"]) == ["excellent", "good", "fair", "poor"]
    assert list(frame["event_count"]) == [1, 2, 3, 4]
    assert frame["share"].sum() == pytest.approx(1.0)


def test_coverage_bands_sizes_and_worst_first() -> None:
    body = {
        "rows": [
            {
                "postal_code": "1",
                "event_count": 100,
                "latitude": 41.6,
                "longitude": -4.7,
                "avg_signal_dbm": -79.0,
                "out_of_service_share": 0.0,
            },
            {
                "postal_code": "2",
                "event_count": 25,
                "latitude": 41.7,
                "longitude": -4.8,
                "avg_signal_dbm": -100.0,
                "out_of_service_share": 0.0,
            },
            {
                "postal_code": "3",
                "event_count": 4,
                "latitude": 41.65,
                "longitude": -4.75,
                "avg_signal_dbm": -101.0,
                "out_of_service_share": 0.5,
            },
        ]
    }
    frame = shaping.coverage_table(body)
    assert list(frame["postal_code"]) == ["3", "2", "1"]
    assert list(frame["band"]) == ["poor", "fair", "excellent"]  # LTE: ≥-80, ≥-90, ≥-100
    assert list(frame["radius_m"]) == pytest.approx([150 + 750 * 0.2, 150 + 750 * 0.5, 900.0])
    assert frame["colour"].iloc[0] == list(shaping.BAND_COLOURS["poor"])
    lat, lon, zoom = shaping.map_view(frame)
    assert (lat, lon) == pytest.approx((41.65, -4.75))
    assert 8 < zoom < 12
    deck = charts.coverage_deck(frame)
    assert deck.map_style is None  # no base-map tiles: draws offline
    assert len(deck.layers[0].data) == 3


def test_pipeline_tiles_and_reasons() -> None:
    body = {
        "events_per_s": 2.5,
        "batches": 3,
        "rows_in": 1000,
        "valid_rows": 950,
        "quarantined_rows": 30,
        "duplicates_removed": 20,
        "late_dropped": 2,
        "millis_behind_latest": 1500,
        "event_freshness_s": 14.0,
        "batch_freshness_s": 200.0,
        "avg_processing_ms": 812.4,
        "quarantined_by_reason": {"invalid_json": 10, "missing": 20},
        "quarantine_rate_by_reason": {"invalid_json": 0.01, "missing": 0.02},
    }
    tiles = {t.label: t for t in shaping.pipeline_tiles(body)}
    # fewer than two batches' span in the body: no rate, never the range-wide figure
    assert tiles["Throughput (first to last batch)"].value == "–"
    spanned = {
        **body,
        "throughput_events_per_s": 20.04,
        "throughput_from": "2026-11-24T09:00:00Z",
        "throughput_to": "2026-11-24T09:10:00Z",
    }
    tile = shaping.pipeline_tiles(spanned)[0]
    assert (tile.label, tile.value, tile.raw) == (
        "Throughput (first to last batch)",
        "20.0 events/s",
        20.04,
    )
    assert "2026-11-24 09:00:00 UTC to 2026-11-24 09:10:00 UTC" in tile.help
    assert "whole range: 2.50 events/s" in tile.help
    assert tiles["Late (dropped)"].state == "warn"
    assert tiles["Consumer lag"].value == "1.5 s"
    assert tiles["Newest batch"].value == "3 min 20 s ago"
    reasons = shaping.quarantine_reasons(body)
    assert reasons.to_dict("records") == [
        {"reason": "missing", "records": 20, "rate": 0.02},
        {"reason": "invalid_json", "records": 10, "rate": 0.01},
    ]


def test_csv_has_iso_times_and_every_row() -> None:
    frame = shaping.signal_series(
        {
            "rows": [
                {
                    "bucket_start": "2026-11-24T09:00:00Z",
                    "operator": "O",
                    "network_type": None,
                    "event_count": 5,
                    "devices": 4,
                    "avg_signal_dbm": -90.5,
                    "avg_signal_dbm_ci_low": -93.25,
                    "avg_signal_dbm_ci_high": -87.75,
                    "min_signal_dbm": -100,
                    "max_signal_dbm": -80,
                }
            ]
        }
    )
    text = shaping.csv_bytes(frame).decode()
    assert text.splitlines() == [
        "bucket_start,operator,network_type,event_count,devices,avg_signal_dbm,"
        "avg_signal_dbm_ci_low,avg_signal_dbm_ci_high,min_signal_dbm,max_signal_dbm,suppressed",
        "2026-11-24T09:00:00Z,O,,5,4,-90.5,-93.25,-87.75,-100,-80,",
    ]


def test_charts_draw_one_trace_per_operator() -> None:
    rows = [
        {
            "bucket_start": f"2026-11-24T09:0{m}:00Z",
            "operator": op,
            "network_type": None,
            "event_count": 1,
            "avg_signal_dbm": -90.0,
            "min_signal_dbm": -90,
            "max_signal_dbm": -90,
        }
        for m in range(3)
        for op in ("A", "B")
    ]
    figure = charts.signal_by_operator(shaping.signal_series({"rows": rows}))
    assert sorted(trace.name for trace in figure.data) == ["A", "B"]  # no interval: no band
    assert all(len(trace.x) == 3 for trace in figure.data)


def test_average_lines_carry_their_95_percent_interval_as_a_band() -> None:
    rows = [
        {
            "bucket_start": f"2026-11-24T09:0{m}:00Z",
            "provider": op,
            "event_count": 30,
            "devices": 12,
            "avg_precision_m": 10.0 + m,
            "avg_precision_m_ci_low": 9.0 + m if m != 1 else None,  # minute 1 withheld
            "avg_precision_m_ci_high": 11.5 + m if m != 1 else None,
            "suppressed": "min_devices" if m == 1 else None,
        }
        for m in range(3)
        for op in ("gps", "network")
    ]
    figure = charts.gps_by_provider(shaping.gps_series({"rows": rows}))
    lines = {t.name: t for t in figure.data if t.fill is None and t.name in ("gps", "network")}
    bands = {t.name: t for t in figure.data if t.fill == "tonexty"}
    assert sorted(bands) == ["gps 95 % interval", "network 95 % interval"]
    for provider, line in lines.items():
        band = bands[f"{provider} 95 % interval"]
        low = next(t for t in figure.data if t.name == f"{provider} 95 % low")
        assert list(low.y[::2]) == [9.0, 11.0]
        assert pd.isna(low.y[1])  # a gap where the point is withheld
        assert list(band.y[::2]) == [11.5, 13.5]
        assert pd.isna(band.y[1])
        assert band.legendgroup == line.legendgroup
        assert not band.showlegend
        assert band.fillcolor.startswith("rgba(")
        assert band.fillcolor.endswith(",0.18)")


def test_format_age() -> None:
    assert [shaping.format_age(s) for s in (0, 14.4, 89, 90, 3599, 3600, 7260)] == [
        "0 s",
        "14 s",
        "89 s",
        "1 min 30 s",
        "59 min 59 s",
        "1 h",
        "2 h 1 min",
    ]


META = {
    "stale": False,
    "cached": True,
    "watermark": "2026-11-24T09:12:41.250000Z",
    "newest_batch_time": "2026-11-24T09:12:50Z",
    "queries": [
        {
            "name": "signal_strength",
            "sql_sha256": "0f" * 32,
            "partitions": [
                {
                    "table": "signal_strength_by_operator",
                    "first": "dt=2026-11-24/hour=8",
                    "last": "dt=2026-11-24/hour=9",
                    "hours": 2,
                }
            ],
        }
    ],
}


def test_csv_carries_the_meta_as_comment_lines_pandas_skips() -> None:
    frame = pd.DataFrame(
        {
            "bucket_start": pd.to_datetime(["2026-11-24T09:00:00Z", "2026-11-24T09:01:00Z"]),
            "operator": ["Orange #2", "O"],  # a '#' in the data must stay data
            "event_count": [5, 7],
        }
    )
    header = shaping.meta_lines(
        {"meta": META},
        request="GET http://api/v1/kpis/signal-strength?from=x",
        received_at=dt.datetime(2026, 11, 24, 9, 13, 2, tzinfo=dt.UTC),
    )
    text = shaping.csv_bytes(frame, header=header).decode()
    assert text.splitlines()[:7] == [
        "# request: GET http://api/v1/kpis/signal-strength?from=x",
        "# received_at: 2026-11-24T09:13:02Z",
        "# watermark: 2026-11-24T09:12:41.250000Z",
        "# newest_batch_time: 2026-11-24T09:12:50Z",
        "# cached: true",
        "# stale: false",
        "# query: signal_strength sql_sha256=" + "0f" * 32
        + " signal_strength_by_operator/dt=2026-11-24/hour=8..dt=2026-11-24/hour=9 (2 h)",
    ]  # fmt: skip
    read = pd.read_csv(io.StringIO(text), comment="#")
    assert read["operator"].tolist() == ["Orange #2", "O"]
    assert read["event_count"].tolist() == [5, 7]
    assert read["bucket_start"].tolist() == ["2026-11-24T09:00:00Z", "2026-11-24T09:01:00Z"]
    # without a '#' in the data the table is written as before, under the same comments
    plain = shaping.csv_bytes(frame.assign(operator=["A", "B"]), header=header).decode()
    assert plain.splitlines()[7:] == [
        "bucket_start,operator,event_count",
        "2026-11-24T09:00:00Z,A,5",
        "2026-11-24T09:01:00Z,B,7",
    ]


def test_data_as_of_is_the_oldest_watermark_of_the_answers() -> None:
    older = {
        **META,
        "watermark": "2026-11-24T09:10:00Z",
        "newest_batch_time": "2026-11-24T09:10:05Z",
    }
    text = shaping.data_as_of([{"meta": META}, {"meta": older}, {"no": "meta"}])
    assert text is not None
    assert text.startswith("Data as of 2026-11-24 09:10:00 UTC: the newest event time processed")
    assert "newest batch 09:12:50 UTC" in text
    unknown = shaping.data_as_of([{"meta": {**META, "watermark": None}}])
    assert unknown is not None
    assert unknown.startswith("Data as of: unknown")
    assert shaping.data_as_of([{"rows": []}]) is None


def test_band_definition_from_the_api_and_the_fallback() -> None:
    from signal_common.quality import band_definition

    body = band_definition()
    body["networks"]["4G"].update(excellent_min=-70, overridden=True)
    body["overridden"] = True
    definition = shaping.band_definition(body)
    assert definition.from_api
    assert definition.map_bands.excellent_min == -70
    assert definition.map_bands.band(-72) == "good"
    assert shaping.band_ranges(definition.map_bands)["good"] == "-90 to -71 dBm"
    assert shaping.definition_note(definition) == (
        "the metrics API's band definition v2, overridden by settings"
    )
    table = shaping.bands_table(definition)
    assert table["network_type"].tolist() == ["2G", "3G", "4G", "5G"]
    assert table.loc[2, "hole_max_dbm"] == -110
    fallback = shaping.band_definition(None)
    assert not fallback.from_api
    assert fallback.map_bands.excellent_min == -80


def test_alert_timeline_spans_each_state_to_the_next_transition() -> None:
    t, now = fakes.HISTORY_TIMES, fakes.NOW
    frame = shaping.alert_timeline(fakes.canned("/v1/alerts/history"), now)
    spans = {(row.area, row.state): (row.start, row.end) for row in frame.itertuples()}
    assert spans == {
        ("47008 · signal_drop", "pending"): (t["47008_pending"], t["47008_firing"]),
        ("47008 · signal_drop", "firing"): (t["47008_firing"], t["47008_resolved"]),
        ("47014 · out_of_service", "pending"): (t["47014_pending"], t["47014_firing"]),
        ("47014 · out_of_service", "firing"): (t["47014_firing"], now),  # still firing
    }
    assert frame.loc[frame["state"] == "firing", "correction"].tolist() == [False, True]
    figure = charts.alert_timeline(frame, start=now - dt.timedelta(hours=1), end=now).to_dict()
    names = [trace["name"] for trace in figure["data"]]
    assert set(names) == {"pending", "firing", "episode start (since)"}
    marker = figure["data"][names.index("episode start (since)")]
    assert len(marker["x"]) == 2  # one per episode: 47008's and 47014's
    assert [pd.Timestamp(x) for x in figure["layout"]["xaxis"]["range"]] == [
        pd.Timestamp(now - dt.timedelta(hours=1)),
        pd.Timestamp(now),
    ]
    assert shaping.describe_measures({"events": 9, "baseline_events": 40, "odd": 1.5}) == (
        "9 events, 40 baseline events, odd=1.5"
    )


def test_area_link_picks_the_shortest_range_holding_the_episode() -> None:
    now = dt.datetime(2026, 12, 2, 7, 0, tzinfo=dt.UTC)
    link = shaping.area_link
    assert link("postal_code", "47014", now - dt.timedelta(minutes=45), now) == (
        "coverage?pc=47014&range=1h"
    )
    assert link("postal_code", "47014", now - dt.timedelta(minutes=46), now) == (
        "coverage?pc=47014&range=6h"
    )
    assert link("postal_code", "47014", now - dt.timedelta(hours=7), now).endswith("range=24h")
    assert link("h3", "8928308280fffff", now, now) == "coverage?range=1h"


def test_coverage_greys_withheld_rows_and_shows_the_interval() -> None:
    served = {
        "postal_code": "1",
        "event_count": 40,
        "events": 40,
        "suppressed": None,
        "latitude": 41.6,
        "longitude": -4.7,
        "avg_signal_dbm": -95.0,
        "out_of_service_share": 0.25,
        "out_of_service_share_ci_low": 0.1419,
        "out_of_service_share_ci_high": 0.4019,
    }
    frame = shaping.coverage_table({"rows": [fakes.withheld_coverage_row("2", 12), served]})
    assert list(frame["postal_code"]) == ["1", "2"]  # withheld last: it has no share
    assert list(frame["band"]) == ["fair", "withheld"]
    assert frame["colour"].iloc[1] == [160, 160, 160]
    assert list(frame["out_of_service_ci"]) == ["14.2%–40.2%", ""]
    assert frame["note"].iloc[0] == ""
    # an answer without the thresholds in its meta (metrics-api before 0.8.0) names the setting
    assert frame["note"].iloc[1] == (
        "withheld: 12 events, fewer events than the API's minimum (SIGNAL_API_MIN_EVENTS)"
    )
    # the map draws only what has a centroid
    assert len(charts.coverage_deck(frame).layers[0].data) == 1
    assert shaping.map_view(frame)[:2] == pytest.approx((41.6, -4.7))
    styles = shaping.grey_withheld(frame[["postal_code", "note"]])._compute().ctx
    assert styles[(1, 0)] == [("color", "#8a8a8a"), ("background-color", "#f0f0f0")]
    assert (0, 0) not in styles or styles[(0, 0)] in ([], [("", "")])
    # the error bars span the interval around the share
    bars = charts.out_of_service_bars(frame).data[0]
    assert list(bars.x) == ["1"]
    assert list(bars.error_y.array) == pytest.approx([0.4019 - 0.25])
    assert list(bars.error_y.arrayminus) == pytest.approx([0.25 - 0.1419])


def test_quality_shares_and_tiles_of_withheld_rows() -> None:
    body = {
        "rows": [
            {
                "operator": "O",
                "network_type": "2G",
                "event_count": 3,
                "events": 3,
                "suppressed": "min_events",
                "band_counts": None,
                "band_shares": None,
                "band_shares_ci_low": None,
                "band_shares_ci_high": None,
            }
        ]
    }
    frame = shaping.quality_shares({**body, "meta": {"min_events": 20, "min_devices": 5}})
    assert len(frame) == 4
    assert frame["share"].isna().all()
    assert frame["note"].iloc[0] == "withheld: 3 events, fewer than the API's minimum of 20 events"
    assert charts.quality_bars(frame).layout.annotations[0].text.startswith("no operator")
    summary = {
        "window_start": "2026-11-24T09:58:00Z",
        "events_per_min": 9,
        "events": 9,
        "suppressed": "min_events",
        "avg_signal_dbm": None,
        "out_of_service_share": None,
    }
    tiles = {
        t.label: t for t in shaping.overview_tiles(summary, None, now=NOW, warn_s=60, alert_s=300)
    }
    assert tiles["Out of service"].value == "withheld"
    assert "withheld: 9 events" in tiles["Out of service"].help
    served = {
        **summary,
        "suppressed": None,
        "out_of_service_share": 0.1,
        "out_of_service_share_ci_low": 0.0536,
        "out_of_service_share_ci_high": 0.1795,
    }
    tiles = {
        t.label: t for t in shaping.overview_tiles(served, None, now=NOW, warn_s=60, alert_s=300)
    }
    assert "(95 % interval 5.4%–17.9%)" in tiles["Out of service"].help


def test_series_say_how_many_points_the_api_withheld() -> None:
    row = {"bucket_start": "2026-11-24T09:58:00Z", "operator": "O", "network_type": None}
    served = {**row, "event_count": 25, "events": 25, "suppressed": None, "avg_signal_dbm": -90.0}
    withheld = {
        **row,
        "bucket_start": "2026-11-24T09:59:00Z",
        "event_count": 4,
        "events": 4,
        "suppressed": "min_events",
        "avg_signal_dbm": None,
    }
    frame = shaping.signal_series({"rows": [served, withheld]})
    assert shaping.withheld_caption(frame, what="points").startswith(
        "1 of 2 points withheld by the API (1 fewer events than the API's minimum "
        "(SIGNAL_API_MIN_EVENTS)): gaps"
    )
    few_devices = {**withheld, "bucket_start": "2026-11-24T10:00:00Z", "suppressed": "min_devices"}
    frame = shaping.signal_series({"rows": [served, withheld, few_devices]})
    meta = {"min_events": 30, "min_devices": 4}  # the thresholds the answer says it applied
    assert shaping.withheld_caption(frame, what="points", meta=meta).startswith(
        "2 of 3 points withheld by the API (1 fewer than the API's minimum of 4 distinct devices; "
        "1 fewer than the API's minimum of 30 events): gaps"
    )
    assert shaping.withheld_note("min_devices", 50, meta) == (
        "withheld: 50 events, fewer than the API's minimum of 4 distinct devices"
    )
    assert shaping.withheld_rule(meta) == "fewer than 30 events or 4 distinct devices"
    assert shaping.withheld_rule(None) == (
        "fewer events or distinct devices than the API's minimums"
    )
    assert shaping.withheld_caption(shaping.signal_series({"rows": [served]}), what="x") == ""
    assert pd.isna(charts.signal_by_operator(frame).data[0].y[1])  # a gap, not a zero


def test_the_worst_code_line_leaves_out_what_the_answer_does_not_have() -> None:
    row = {
        "postal_code": "47014", "out_of_service_share": 0.8, "out_of_service_ci": "76.3%–83.3%",
        "avg_signal_dbm": -130.04, "signal_p50": -131.0, "signal_p10": -141.0,
        "event_count": 500, "devices": 61.0,
    }  # fmt: skip
    assert shaping.worst_code_line(row) == (
        "Worst: **47014**, 80.0% out of service (95 % interval 76.3%–83.3%), average -130.0 dBm "
        "(median -131, p10 -141 dBm) over 500 events from 61 devices."
    )
    unknown = {**row, "signal_p50": math.nan, "signal_p10": math.nan, "devices": None}
    assert shaping.worst_code_line(unknown).endswith("average -130.0 dBm over 500 events.")


def test_the_coverage_table_reads_the_asked_percentiles() -> None:
    served = {
        "postal_code": "1", "event_count": 40, "events": 40, "devices": 12, "suppressed": None,
        "latitude": 41.6, "longitude": -4.7, "avg_signal_dbm": -95.0,
        "out_of_service_share": 0.25, "signal_percentiles": {"p10": -110, "p50": -94},
    }  # fmt: skip
    frame = shaping.coverage_table({"rows": [served, fakes.withheld_coverage_row("2", 12)]})
    assert list(frame["signal_p50"].iloc[:1]) == [-94.0]
    assert list(frame["signal_p10"].iloc[:1]) == [-110.0]
    assert frame[["signal_p50", "signal_p10", "devices"]].iloc[1].isna().all()
