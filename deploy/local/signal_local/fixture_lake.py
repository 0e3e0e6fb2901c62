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
from pathlib import Path

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
    SIGNAL_STRENGTH_BY_OPERATOR,
    STATUS_COUNT,
    LakeTable,
    partition_path,
    table_arrow_schema,
)
from signal_common.quality import BAND_NAMES, DEFAULT_BANDS


def make_events(n: int, *, start: dt.datetime, hours: int, seed: int) -> pd.DataFrame:
    """Known events spread over `hours` from `start`, each in the micro-batch of its 10 minutes
    (`batch_id`), in the shape `write_kpi_partials` takes."""
    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.integers(0, hours * 3_600_000_000, n))
    networks = rng.choice(["3G", "4G", "5G"], n)
    signal = rng.integers(-125, -55, n)
    events = pd.DataFrame(
        {
            "event_time": pd.Timestamp(start) + pd.to_timedelta(offsets, unit="us"),
            "operator": rng.choice(["Orange", "Proximus", "Base"], n),
            "network_type": networks,
            "signal_dbm": signal,
            "provider": rng.choice(["gps", "network", "fused"], n),
            "gps_precision_m": np.round(rng.uniform(1, 60, n), 2),
            "satellites": np.where(rng.random(n) < 0.2, np.nan, rng.integers(0, 20, n)),
            "latitude": rng.uniform(49.5, 51.5, n),
            "longitude": rng.uniform(2.5, 6.4, n),
            "postal_code": rng.choice(["1000", "2000", "3000", "4000"], n),
            "status": rng.choice(["IN_SERVICE", "OUT_OF_SERVICE", "EMERGENCY_ONLY"], n),
            "batch_id": offsets // 600_000_000,
        }
    )
    events["band"] = [DEFAULT_BANDS[k].band(int(s)) for k, s in zip(networks, signal, strict=True)]
    # drawn last, so every column above is what it was before device ids (#24); 2 % report none
    devices = rng.integers(0, max(1, n // 20), n)
    missing = rng.random(n) < 0.02
    events["device_id"] = [None if m else f"dev-{d}" for m, d in zip(missing, devices, strict=True)]
    # drawn after the device ids for the same reason: a serving cell per event, 5 % report none
    cells = rng.integers(1, 41, n).astype(float)
    cells[rng.random(n) < 0.05] = np.nan
    events["cell_id"] = cells
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
