"""Quality bands and lake layout."""

from __future__ import annotations

import datetime as dt

import pytest

from signal_common.lake import (
    ALL_TABLES,
    EVENTS,
    TABLES_BY_NAME,
    local_path,
    partition_path,
    partition_values,
    table_uri,
)
from signal_common.quality import DEFAULT_BANDS, bands_with_overrides
from signal_common.schema import EVENT_FIELD_NAMES


@pytest.mark.parametrize(
    ("network", "dbm", "band"),
    [
        ("4G", -80, "excellent"),
        ("4G", -81, "good"),
        ("4G", -90, "good"),
        ("4G", -91, "fair"),
        ("4G", -100, "fair"),
        ("4G", -101, "poor"),
        ("3G", -70, "excellent"),
        ("3G", -71, "good"),
        ("3G", -86, "fair"),
        ("3G", -101, "poor"),
        ("5G", -85, "excellent"),
        ("5G", -86, "good"),
        ("5G", -106, "fair"),
        ("5G", -121, "poor"),
        ("2G", -100, "fair"),
    ],
)
def test_band_edges(network: str, dbm: int, band: str) -> None:
    assert DEFAULT_BANDS[network].band(dbm) == band


def test_every_band_names_its_source_and_the_source_states_its_thresholds() -> None:
    # written from the sources' own ranges, independently of the band values in quality.py
    expected_thresholds = {
        "2G": ("RSSI",),
        "3G": ("RSCP", "-70", "-85", "-100"),
        "4G": ("RSRP", "-80", "-90", "-100"),
        "5G": ("SS-RSRP", "-85", "-105", "-120"),
    }
    assert set(DEFAULT_BANDS) == set(expected_thresholds)
    for network, words in expected_thresholds.items():
        source = DEFAULT_BANDS[network].source
        for word in words:
            assert word in source, (network, word, source)
    assert bands_with_overrides({"4G": {"excellent_min": -75}})["4G"].source.endswith(
        "(overridden by settings)"
    )


def test_overrides() -> None:
    bands = bands_with_overrides({"4G": {"excellent_min": -75}})
    assert bands["4G"].band(-78) == "good"
    assert bands["3G"] == DEFAULT_BANDS["3G"]
    with pytest.raises(ValueError, match="unknown network type '6G'"):
        bands_with_overrides({"6G": {"good_min": -90}})
    with pytest.raises(ValueError, match="excellent_min > good_min > fair_min"):
        bands_with_overrides({"4G": {"good_min": -70}})


def test_layout() -> None:
    assert [t.name for t in ALL_TABLES] == [
        "events",
        "quarantine",
        "signal_strength_by_operator",
        "gps_precision_by_provider",
        "status_count",
        "coverage_by_postal_code",
        "coverage_by_h3",
        "coverage_by_cell",
        "pipeline_batches",
    ]
    assert all([k.name for k in t.partition_keys] == ["dt", "hour"] for t in ALL_TABLES)
    assert EVENTS.column_names[: len(EVENT_FIELD_NAMES)] == EVENT_FIELD_NAMES
    assert TABLES_BY_NAME["status_count"].column("hour").hive_type == "int"
    moment = dt.datetime(2026, 11, 23, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert partition_values(moment) == ("2026-11-22", 22)
    assert partition_path(EVENTS, "2026-11-22", 7) == "events/dt=2026-11-22/hour=7"
    assert table_uri("s3://bucket/lake/", EVENTS) == "s3://bucket/lake/events"
    assert local_path("file:///tmp/lake/events") == "/tmp/lake/events"
    with pytest.raises(ValueError, match="not a local path"):
        local_path("s3://bucket/lake")


def test_arrow_schemas_cover_every_table() -> None:
    import pyarrow as pa

    from signal_common.lake import PIPELINE_BATCHES, SIGNAL_STRENGTH_BY_OPERATOR, table_arrow_schema

    for table in ALL_TABLES:
        assert table_arrow_schema(table).names == list(table.column_names)
    kpi = table_arrow_schema(SIGNAL_STRENGTH_BY_OPERATOR)
    assert kpi.field("window_start").type == pa.timestamp("us", tz="UTC")
    assert kpi.field("signal_min").type == pa.int32()
    batches = table_arrow_schema(PIPELINE_BATCHES, with_partitions=True)
    assert batches.field("quarantined_by_reason").type == pa.map_(pa.string(), pa.int64())
    assert batches.names[-2:] == ["dt", "hour"]


def test_hole_thresholds_are_data_with_sources_and_overridable() -> None:
    assert DEFAULT_BANDS["4G"].hole_max_dbm == -110
    assert DEFAULT_BANDS["4G"].is_weak(-110)
    assert not DEFAULT_BANDS["4G"].is_weak(-109)
    assert all(b.hole_source for b in DEFAULT_BANDS.values())
    bands = bands_with_overrides({"4G": {"hole_max_dbm": -115}})
    assert bands["4G"].hole_max_dbm == -115
    assert bands["4G"].hole_source.endswith("(overridden by settings)")
    assert bands["5G"].hole_source == DEFAULT_BANDS["5G"].hole_source
    with pytest.raises(ValueError, match="hole_max_dbm"):
        bands_with_overrides({"4G": {"hole_max_dbm": -10}})


def test_band_definition_is_plain_json_of_every_threshold_with_its_source() -> None:
    import json

    from signal_common.quality import BANDS_VERSION, band_definition

    definition = band_definition()
    assert json.loads(json.dumps(definition)) == definition  # plain JSON, nothing lost
    assert definition["version"] == BANDS_VERSION
    assert definition["overridden"] is False
    assert definition["band_names"] == ["excellent", "good", "fair", "poor"]
    # the LTE entry written out by hand from the documented ranges (not read from quality.py)
    assert definition["networks"]["4G"] == {
        "measure": "RSRP",
        "unit": "dBm",
        "excellent_min": -80,
        "good_min": -90,
        "fair_min": -100,
        "source": DEFAULT_BANDS["4G"].source,
        "hole_max_dbm": -110,
        "hole_source": DEFAULT_BANDS["4G"].hole_source,
        "overridden": False,
    }
    assert set(definition["networks"]) == {"2G", "3G", "4G", "5G"}
    assert [definition["networks"][n]["hole_max_dbm"] for n in ("2G", "3G", "5G")] == [
        -100,
        -105,
        -110,
    ]


def test_band_definition_marks_overrides_per_network_and_overall() -> None:
    from signal_common.quality import band_definition

    definition = band_definition(bands_with_overrides({"3G": {"hole_max_dbm": -108}}))
    assert definition["overridden"] is True
    assert definition["networks"]["3G"]["overridden"] is True
    assert definition["networks"]["3G"]["hole_max_dbm"] == -108
    assert definition["networks"]["3G"]["good_min"] == -85  # the rest stays the default
    assert definition["networks"]["4G"]["overridden"] is False
    assert band_definition(bands_with_overrides({}))["overridden"] is False
