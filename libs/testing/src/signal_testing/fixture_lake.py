"""Test support shared by the services' tests: write a lake of KPI partials from known events.

The partials are laid out exactly as the stream processor writes them (signal_common.lake):
Hive-style `dt=/hour=` directories of the window start, one Parquet file per micro-batch. Each
event carries the `batch_id` it was "processed" in, so a window+key pair is usually split over
several rows in several files. The events frame needs the columns event_time (UTC), operator,
network_type, signal_dbm, provider, gps_precision_m, satellites (NaN when absent), latitude,
longitude, postal_code, status, batch_id and band (its quality band), and may carry device_id
(without it, every `devices_hll` is null: unknown, as in files written before the column). Every
row carries the lineage columns as the processor stamps them: commit_seq = batch_id + 1,
compacted = false.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h3
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from signal_common import partials
from signal_common.lake import (
    COVERAGE_BY_CELL,
    COVERAGE_BY_H3,
    COVERAGE_BY_POSTAL_CODE,
    GPS_PRECISION_BY_PROVIDER,
    H3_RESOLUTIONS,
    PIPELINE_BATCHES,
    SIGNAL_STRENGTH_BY_OPERATOR,
    STATUS_COUNT,
    LakeTable,
    partition_path,
    table_arrow_schema,
)
from signal_common.quality import BAND_NAMES, DEFAULT_BANDS

# The draws of make_events, each one call of the random generator, in the order a caller names:
# a seed gives the same events only in the same order, so each fixture keeps the order it was
# first written in. This one is the fixture lake's own.
FIXTURE_ORDER = (
    "event_time",
    "network_type",
    "signal_dbm",
    "operator",
    "provider",
    "gps_precision_m",
    "satellites_missing",
    "satellites",
    "latitude",
    "longitude",
    "postal_code",
    "status",
    "batch_id",
    "device_id",
    "device_missing",
    "cell_id",
    "cell_missing",
)
# every draw a caller may name: the fixture lake's, an outage's and a rare place's
DRAWS = frozenset((*FIXTURE_ORDER, "outage", "rare"))


@dataclass(frozen=True)
class Outage:
    """From `since` on, each event of `postal_code` is OUT_OF_SERVICE with probability `share`
    and `drop_db` weaker; every signal is then clipped to `clip` (drawn at "outage")."""

    postal_code: str
    since: dt.datetime
    share: float
    drop_db: int
    clip: tuple[int, int]


@dataclass(frozen=True)
class RarePlace:
    """`count` events of `from_code`, drawn last ("rare"), moved to `code` at `at` (lat, lon)."""

    code: str
    count: int
    from_code: str
    at: tuple[float, float]


def make_events(
    n: int,
    *,
    start: dt.datetime,
    seed: int,
    hours: int | None = None,
    until: dt.datetime | None = None,
    order: Sequence[str] = FIXTURE_ORDER,
    operators: Sequence[str] = ("Orange", "Proximus", "Base"),
    networks: Sequence[str] = ("3G", "4G", "5G"),
    providers: Sequence[str] = ("gps", "network", "fused"),
    postal_codes: Sequence[str] | Mapping[str, tuple[float, float]] = (
        "1000",
        "2000",
        "3000",
        "4000",
    ),
    statuses: Sequence[str] = ("IN_SERVICE", "OUT_OF_SERVICE", "EMERGENCY_ONLY"),
    status_weights: Sequence[float] | None = None,
    signal_dbm: tuple[int, int] = (-125, -55),
    precision_m: tuple[float, float] = (1, 60),
    precision_decimals: int = 2,
    satellites: tuple[int, int] = (0, 20),
    satellites_missing: float = 0.2,
    latitude: tuple[float, float] = (49.5, 51.5),
    longitude: tuple[float, float] = (2.5, 6.4),
    jitter_deg: tuple[float, float] | None = None,
    batches: int | None = None,
    device_ids: bool = True,
    devices: int | None = None,
    cells: int | None = 40,
    outage: Outage | None = None,
    rare: RarePlace | None = None,
) -> pd.DataFrame:
    """Known events from `start` over `hours` (or up to `until`, exclusive), in the shape
    `write_kpi_partials` takes, drawn in `order` (see FIXTURE_ORDER).

    Each column's values are drawn uniformly from its keyword's choices or range (`status_weights`
    weighs the statuses); positions are uniform in `latitude` x `longitude`, or, with
    `jitter_deg` (sd in degrees), normal around the centre `postal_codes` maps each code to.
    `batch_id` is drawn from `batches` micro-batches, or without it is the event's 10 minutes.
    `device_id` (2 % none) is one of `devices` (default one per 20 events), `cell_id` (5 % none)
    one of `cells`; either column is left out when turned off (`device_ids=False`, `cells=None`).
    """
    unknown = set(order) - DRAWS
    if unknown:
        raise ValueError(f"unknown draws {sorted(unknown)}; known: {sorted(DRAWS)}")
    rng = np.random.default_rng(seed)
    if until is not None:
        span_us = (until - start) // dt.timedelta(microseconds=1)
    else:
        assert hours is not None, "make_events needs hours or until"
        span_us = hours * 3_600_000_000
    codes = list(postal_codes)
    drawn: dict[str, Any] = {}
    offsets = np.empty(0, dtype=np.int64)
    for step in order:
        if step == "event_time":
            offsets = np.sort(rng.integers(0, span_us, n))
            drawn[step] = pd.Timestamp(start) + pd.to_timedelta(offsets, unit="us")
        elif step == "operator":
            drawn[step] = rng.choice(operators, n)
        elif step == "network_type":
            drawn[step] = rng.choice(networks, n)
        elif step == "provider":
            drawn[step] = rng.choice(providers, n)
        elif step == "postal_code":
            drawn[step] = rng.choice(codes, n)
        elif step == "status":
            drawn[step] = rng.choice(statuses, n, p=status_weights)
        elif step == "signal_dbm":
            drawn[step] = rng.integers(*signal_dbm, n)
        elif step == "outage" and outage is not None:
            hit = (drawn["postal_code"] == outage.postal_code) & (
                drawn["event_time"] >= pd.Timestamp(outage.since)
            )
            down = hit & (rng.random(n) < outage.share)
            drawn["status"] = np.where(down, "OUT_OF_SERVICE", drawn["status"])
            weaker = np.where(hit, drawn["signal_dbm"] - outage.drop_db, drawn["signal_dbm"])
            drawn["signal_dbm"] = weaker.clip(*outage.clip)
        elif step == "gps_precision_m":
            drawn[step] = np.round(rng.uniform(*precision_m, n), precision_decimals)
        elif step == "satellites":
            drawn[step] = rng.integers(*satellites, n).astype(float)
        elif step == "satellites_missing":
            drawn[step] = rng.random(n) < satellites_missing
        elif step in ("latitude", "longitude"):
            axis = 0 if step == "latitude" else 1
            if jitter_deg is not None:
                centres = postal_codes  # a Mapping when positions jitter around centres
                assert isinstance(centres, Mapping), "jitter_deg needs postal code centres"
                middle = np.array([centres[c][axis] for c in drawn["postal_code"]])
                drawn[step] = middle + rng.normal(0, jitter_deg[axis], n)
            else:
                drawn[step] = rng.uniform(*(latitude if axis == 0 else longitude), n)
        elif step == "batch_id" and batches is not None:
            drawn[step] = rng.integers(0, batches, n)
        elif step == "device_id" and device_ids:
            drawn[step] = rng.integers(0, devices or max(1, n // 20), n)
        elif step == "device_missing" and device_ids:
            drawn[step] = rng.random(n) < 0.02
        elif step == "cell_id" and cells is not None:
            drawn[step] = rng.integers(1, cells + 1, n).astype(float)
        elif step == "cell_missing" and cells is not None:
            drawn[step] = rng.random(n) < 0.05
        elif step == "rare" and rare is not None:
            pool = np.flatnonzero(drawn["postal_code"] == rare.from_code)
            drawn[step] = rng.choice(pool, rare.count, replace=False)
    satellite_count = drawn["satellites"]
    satellite_count[drawn["satellites_missing"]] = np.nan
    events = pd.DataFrame(
        {
            "event_time": drawn["event_time"],
            "operator": drawn["operator"],
            "network_type": drawn["network_type"],
            "signal_dbm": drawn["signal_dbm"].astype(np.int64),
            "provider": drawn["provider"],
            "gps_precision_m": drawn["gps_precision_m"],
            "satellites": satellite_count,
            "latitude": drawn["latitude"],
            "longitude": drawn["longitude"],
            "postal_code": drawn["postal_code"],
            "status": drawn["status"],
            "batch_id": drawn["batch_id"] if batches is not None else offsets // 600_000_000,
        }
    )
    events["band"] = [
        DEFAULT_BANDS[k].band(int(s))
        for k, s in zip(events["network_type"], events["signal_dbm"], strict=True)
    ]
    if device_ids:
        ids, missing = drawn["device_id"], drawn["device_missing"]
        events["device_id"] = [None if m else f"dev-{d}" for m, d in zip(missing, ids, strict=True)]
    if cells is not None:
        cell_ids = drawn["cell_id"]
        cell_ids[drawn["cell_missing"]] = np.nan
        events["cell_id"] = cell_ids
    if rare is not None:
        events.loc[drawn["rare"], "postal_code"] = rare.code
        events.loc[drawn["rare"], "latitude"] = rare.at[0]
        events.loc[drawn["rare"], "longitude"] = rare.at[1]
    return events


def write_table(
    root: Path, table: LakeTable, frame: pd.DataFrame, time_column: str, *, tag: str = ""
) -> int:
    """Write `frame` as one file per (partition of `time_column`, batch); return files written."""
    files = 0
    frame = frame.assign(
        _dt=frame[time_column].dt.strftime("%Y-%m-%d"), _hour=frame[time_column].dt.hour
    )
    for (dt_value, hour, batch), part in frame.groupby(["_dt", "_hour", "batch_id"]):
        directory = root / partition_path(table, str(dt_value), int(hour))
        directory.mkdir(parents=True, exist_ok=True)
        part = part.assign(commit_seq=part["batch_id"].astype("int64") + 1, compacted=False)
        data = pa.Table.from_pandas(
            part[list(table.column_names)], schema=table_arrow_schema(table), preserve_index=False
        )
        pq.write_table(data, directory / f"part-{tag}{int(batch):05d}-{files}.parquet")
        files += 1
    return files


def kpi_partials(events: pd.DataFrame) -> dict[LakeTable, pd.DataFrame]:
    """Every KPI table's partials of `events`: one row per window minute, key and batch, with
    the processor's aggregates (vectorized: indicator columns summed, no per-group Python)."""
    ev = events.assign(
        window_start=events["event_time"].dt.floor("min"),
        oos=(events["status"] == "OUT_OF_SERVICE").astype(np.int64),
        sat_value=events["satellites"].fillna(0).astype(np.int64),
        sat_present=events["satellites"].notna().astype(np.int64),
        signal_sq=events["signal_dbm"].astype(np.int64) ** 2,
        precision_sq=events["gps_precision_m"].astype(np.float64) ** 2,
        **{f"is_{b}": (events["band"] == b).astype(np.int64) for b in BAND_NAMES},
    )
    specs: dict[LakeTable, tuple[list[str], dict[str, tuple[str, str]]]] = {
        SIGNAL_STRENGTH_BY_OPERATOR: (
            ["operator", "network_type"],
            {
                "event_count": ("signal_dbm", "size"),
                "signal_sum": ("signal_dbm", "sum"),
                "signal_min": ("signal_dbm", "min"),
                "signal_max": ("signal_dbm", "max"),
                **{f"band_{b}_count": (f"is_{b}", "sum") for b in BAND_NAMES},
                "signal_sq_sum": ("signal_sq", "sum"),
            },
        ),
        GPS_PRECISION_BY_PROVIDER: (
            ["provider"],
            {
                "event_count": ("gps_precision_m", "size"),
                "precision_sum": ("gps_precision_m", "sum"),
                "precision_min": ("gps_precision_m", "min"),
                "precision_max": ("gps_precision_m", "max"),
                "satellites_sum": ("sat_value", "sum"),
                "satellites_count": ("sat_present", "sum"),
                "precision_sq_sum": ("precision_sq", "sum"),
            },
        ),
        STATUS_COUNT: (["postal_code", "status"], {"event_count": ("status", "size")}),
        COVERAGE_BY_POSTAL_CODE: (
            ["postal_code"],
            {
                "event_count": ("latitude", "size"),
                "latitude_sum": ("latitude", "sum"),
                "longitude_sum": ("longitude", "sum"),
                "signal_sum": ("signal_dbm", "sum"),
                "out_of_service_count": ("oos", "sum"),
                "signal_sq_sum": ("signal_sq", "sum"),
            },
        ),
    }
    specs[COVERAGE_BY_H3] = (
        ["h3_resolution", "h3_cell"],
        {
            "event_count": ("signal_dbm", "size"),
            "signal_sum": ("signal_dbm", "sum"),
            "out_of_service_count": ("oos", "sum"),
            **{f"band_{b}_count": (f"is_{b}", "sum") for b in BAND_NAMES},
            "signal_sq_sum": ("signal_sq", "sum"),
        },
    )
    hexagons = with_h3_cells(ev).assign(window_start=lambda f: f["event_time"].dt.floor("h"))
    frames = {COVERAGE_BY_H3: hexagons}
    if "cell_id" in ev.columns:  # the events that report a serving cell, in their hour
        reporting = ev[ev["cell_id"].notna()]
        frames[COVERAGE_BY_CELL] = reporting.assign(
            window_start=reporting["event_time"].dt.floor("h"),
            cell_id=reporting["cell_id"].astype(np.int64),
        )
        specs[COVERAGE_BY_CELL] = (
            ["operator", "network_type", "cell_id"],
            {
                "event_count": ("signal_dbm", "size"),
                "latitude_sum": ("latitude", "sum"),
                "longitude_sum": ("longitude", "sum"),
                "signal_sum": ("signal_dbm", "sum"),
                "out_of_service_count": ("oos", "sum"),
                "signal_sq_sum": ("signal_sq", "sum"),
            },
        )
    tables = {}
    for table, (keys, aggs) in specs.items():
        group = ["window_start", *keys, "batch_id"]
        rows = frames.get(table, ev)
        out = rows.groupby(group, as_index=False).agg(**aggs)
        out["window_end"] = out["window_start"] + pd.Timedelta(table.window)
        if "signal_hist" in table.column_names:
            out["signal_hist"] = _histograms(rows, group, "signal_dbm")
        out["devices_hll"] = _device_sketches(rows, group)
        tables[table] = out
    return tables


def with_h3_cells(events: pd.DataFrame) -> pd.DataFrame:
    """`events` once per resolution of H3_RESOLUTIONS, with `h3_resolution` and `h3_cell` (each
    cell from `h3.latlng_to_cell` itself, as an oracle must)."""
    return pd.concat(
        [
            events.assign(
                h3_resolution=np.int32(res),
                h3_cell=[
                    h3.latlng_to_cell(a, b, res)
                    for a, b in zip(events["latitude"], events["longitude"], strict=True)
                ],
            )
            for res in H3_RESOLUTIONS
        ],
        ignore_index=True,
    )


def _histograms(events: pd.DataFrame, group: list[str], column: str) -> list[list[int]]:
    """Per group (in groupby's sorted order), the counts of `column` per integer dBm from
    partials.SIGNAL_HIST_MIN (partials.SIGNAL_HIST_BINS bins), as the processor writes them."""
    codes = events.groupby(group, sort=True).ngroup().to_numpy()
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    bins = events[column].to_numpy(dtype=np.int64) - partials.SIGNAL_HIST_MIN
    counts = np.zeros((n_groups, partials.SIGNAL_HIST_BINS), dtype=np.int64)
    np.add.at(counts, (codes, bins), 1)
    return counts.tolist()


def _device_sketches(events: pd.DataFrame, group: list[str]) -> list[bytes | None]:
    """Per group (in groupby's sorted order), the HLL sketch of its device ids; all None when
    the events carry no device_id (unknown)."""
    codes = events.groupby(group, sort=True).ngroup().to_numpy()
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    if "device_id" not in events.columns:
        return [None] * n_groups
    ids = pa.array(events["device_id"], pa.string(), from_pandas=True)
    return partials.device_sketches(ids, codes.astype(np.int64), n_groups).to_pylist()


def write_kpi_partials(root: Path, events: pd.DataFrame, *, tag: str = "") -> dict[str, int]:
    """Write every KPI table's partials of `events` under `root`; files written per table."""
    tables = kpi_partials(events)
    return {
        table.name: write_table(root, table, frame, "window_start", tag=tag)
        for table, frame in tables.items()
    }


def write_lake(
    root: Path, events: pd.DataFrame, batches: pd.DataFrame, *, tag: str = ""
) -> dict[str, int]:
    """Write every KPI table's partials of `events` and the `batches` rows of pipeline_batches
    under `root`; files written per table."""
    written = write_kpi_partials(root, events, tag=tag)
    written[PIPELINE_BATCHES.name] = write_table(
        root, PIPELINE_BATCHES, batches, "batch_time", tag=tag
    )
    return written
