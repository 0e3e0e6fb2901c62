"""Test data: deterministic event payloads and one malformed record per quarantine reason."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa

BASE_TIME = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
# Tests that put this fixed-date data on a real stream (arrival: today) allow events this far
# behind their arrival, so the data stays plausible in years to come; the implausible record in
# MALFORMED is dated ahead, which stays quarantined.
MAX_BEHIND_FOR_DATED_DATA_S = 20 * 365 * 86400.0


def make_event(i: int, **overrides: Any) -> dict[str, Any]:
    """A valid event payload, varied by `i` (deterministic)."""
    networks = ["2G", "3G", "4G", "5G"]
    statuses = ["IN_SERVICE", "IN_SERVICE", "IN_SERVICE", "OUT_OF_SERVICE", "EMERGENCY_ONLY"]
    event: dict[str, Any] = {
        "event_id": f"evt-{i:06d}",
        "device_id": f"dev-{i % 7}",
        "event_time": (BASE_TIME + dt.timedelta(seconds=7 * i)).isoformat().replace("+00:00", "Z"),
        "operator": ["Movistar", "Vodafone", "Orange"][i % 3],
        "network_type": networks[i % 4],
        "signal_dbm": -60 - (i * 7) % 70,
        "provider": ["gps", "network", "fused"][i % 3],
        "gps_precision_m": round(3.0 + (i * 13) % 500 / 7, 3),
        "latitude": 40.0 + (i % 11) / 100,
        "longitude": -3.7 - (i % 5) / 100,
        "postal_code": f"280{i % 4:02d}",
        "status": statuses[i % 5],
        "activity": ["STILL", "WALKING", "IN_VEHICLE"][i % 3],
        "speed_kmh": None if i % 4 == 0 else float(i % 90),
        "satellites": None if i % 3 == 1 else i % 12,
        "cell_id": 1000 + i % 50,
    }
    event.update(overrides)
    return event


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def source_batch(payloads: list[bytes], arrival: dt.datetime) -> pa.RecordBatch:
    """Source rows as the Kinesis source hands them to validation (shard 1, sequence 100…)."""
    n = len(payloads)
    return pa.RecordBatch.from_pydict(
        {
            "data": pa.array(payloads, pa.binary()),
            "shard_id": ["shardId-000000000001"] * n,
            "sequence_number": [str(100 + i) for i in range(n)],
            "sub_sequence_number": pa.array([0] * n, pa.int64()),
            "arrival_time": pa.array([arrival] * n, pa.timestamp("us", tz="UTC")),
            "read_time": pa.array([arrival] * n, pa.timestamp("us", tz="UTC")),
        }
    )


MALFORMED: list[tuple[bytes, str]] = [
    (b'{"event_id": "x"', "invalid_json"),
    (b"[1,2,3]", "not_an_object"),
    (encode({k: v for k, v in make_event(900).items() if k != "operator"}), "missing"),
    (encode(make_event(901, signal_dbm="-85")), "wrong_type"),
    (encode(make_event(902, latitude=123.0)), "out_of_range"),
    (encode(make_event(903, network_type="6G")), "unknown_enum"),
    (encode(make_event(904, colour="red")), "extra_field"),
    (b'{"pad": "' + b"x" * 20_000 + b'"}', "oversize"),
    # valid by the schema, dated years ahead of any arrival
    (encode(make_event(905, event_time="2031-01-01T00:00:00Z")), "implausible_time"),
]


def workload(n: int, *, seed: int = 7) -> tuple[list[bytes], list[dict[str, Any]], int]:
    """Payloads to send (valid, duplicates, late, malformed) and the unique valid events.

    Returns (payloads in send order, unique valid events, number of duplicate re-sends).
    """
    import random

    rng = random.Random(seed)
    events = [make_event(i) for i in range(n)]
    for e in rng.sample(events, max(1, n // 20)):  # late: minutes to hours behind
        late = dt.datetime.fromisoformat(e["event_time"].replace("Z", "+00:00"))
        e["event_time"] = (late - dt.timedelta(minutes=rng.choice([3, 45, 130, 300]))).isoformat()
    payloads = [encode(e) for e in events]
    duplicates = [encode(e) for e in rng.sample(events, max(1, n // 10))]
    payloads += duplicates + [raw for raw, _ in MALFORMED]
    rng.shuffle(payloads)
    return payloads, events, len(duplicates)


def oracle_frames(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Expected KPIs, computed with pandas straight from the events (independent of Spark)."""
    import pandas as pd

    df = pd.DataFrame(events)
    df["window_start"] = (
        pd.to_datetime(df["event_time"], utc=True, format="ISO8601")
        .dt.floor("min")
        .dt.tz_localize(None)
    )
    signal = (
        df.groupby(["window_start", "operator", "network_type"])["signal_dbm"]
        .agg(event_count="count", signal_sum="sum", signal_min="min", signal_max="max")
        .reset_index()
    )
    status = df.groupby(["window_start", "postal_code", "status"]).size().rename("event_count")
    gps = (
        df.groupby(["window_start", "provider"])
        .agg(
            event_count=("gps_precision_m", "count"),
            precision_sum=("gps_precision_m", "sum"),
            satellites_count=("satellites", "count"),
        )
        .reset_index()
    )
    return {"signal": signal, "status": status.reset_index(), "gps": gps}


def lake_frames(lake_root: str) -> dict[str, Any]:
    """The lake's KPI partials merged per window and key, with DuckDB (as a reader would)."""
    import duckdb

    def read(table: str) -> str:
        return f"read_parquet('{lake_root}/{table}/**/*.parquet', hive_partitioning = true)"

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    signal = con.execute(
        f"""SELECT window_start::TIMESTAMP AS window_start, operator, network_type,
                   SUM(event_count) AS event_count, SUM(signal_sum) AS signal_sum,
                   MIN(signal_min) AS signal_min, MAX(signal_max) AS signal_max
            FROM {read("signal_strength_by_operator")} GROUP BY ALL"""
    ).df()
    status = con.execute(
        f"""SELECT window_start::TIMESTAMP AS window_start, postal_code, status,
                   SUM(event_count) AS event_count
            FROM {read("status_count")} GROUP BY ALL"""
    ).df()
    gps = con.execute(
        f"""SELECT window_start::TIMESTAMP AS window_start, provider,
                   SUM(event_count) AS event_count, SUM(precision_sum) AS precision_sum,
                   SUM(satellites_count) AS satellites_count
            FROM {read("gps_precision_by_provider")} GROUP BY ALL"""
    ).df()
    events = con.execute(
        f"SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM {read('events')}"
    ).fetchone()
    quarantine = (
        dict(
            con.execute(f"SELECT reason, count(*) FROM {read('quarantine')} GROUP BY 1").fetchall()
        )
        if any(Path(lake_root.removeprefix("file://"), "quarantine").rglob("*.parquet"))
        else {}
    )
    batches = con.execute(
        f"""SELECT coalesce(sum(rows_in), 0), coalesce(sum(duplicates_removed), 0), count(*),
                   coalesce(sum(late_dropped), 0), count(late_dropped)
            FROM {read("pipeline_batches")}"""
    ).fetchone()
    return {
        "signal": signal,
        "status": status,
        "gps": gps,
        "events": events,
        "quarantine": quarantine,
        "rows_in": int(batches[0]),
        "duplicates_removed": int(batches[1]),
        "batches": int(batches[2]),
        "late_dropped": int(batches[3]),
        "late_dropped_known": int(batches[4]),
    }


def assert_lake_matches_oracle(
    lake_root: str, events: list[dict[str, Any]], duplicates: int
) -> None:
    """Counts exact, sums exact (integers) or to 1e-9 (doubles), averages to 1e-9."""
    import pandas as pd

    got, want = lake_frames(lake_root), oracle_frames(events)
    assert got["events"] == (len(events), len(events))
    assert got["quarantine"] == {reason: 1 for _, reason in MALFORMED}
    assert got["duplicates_removed"] == duplicates
    assert got["late_dropped"] == 0
    assert got["late_dropped_known"] == got["batches"]  # measured in every batch
    keys = {"signal": ["window_start", "operator", "network_type"],
            "status": ["window_start", "postal_code", "status"],
            "gps": ["window_start", "provider"]}  # fmt: skip
    for name, key in keys.items():
        merged = pd.merge(want[name], got[name], on=key, how="outer", suffixes=("_want", "_got"),
                          indicator=True)  # fmt: skip
        assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"]
        for column in [c for c in want[name].columns if c not in key]:
            a, b = merged[f"{column}_want"], merged[f"{column}_got"]
            if column == "precision_sum":
                assert ((a - b).abs() <= 1e-9 * a.abs().clip(lower=1)).all()
            else:
                assert (a.astype("int64") == b.astype("int64")).all(), column
    signal = pd.merge(want["signal"], got["signal"], on=keys["signal"], suffixes=("_want", "_got"))
    avg_want = signal["signal_sum_want"] / signal["event_count_want"]
    avg_got = signal["signal_sum_got"].astype(float) / signal["event_count_got"].astype(float)
    assert ((avg_want - avg_got).abs() <= 1e-9).all()


def put_all(client: Any, stream: str, payloads: list[bytes]) -> None:
    for start in range(0, len(payloads), 500):
        chunk = payloads[start : start + 500]
        records = [{"PartitionKey": f"k{(start + i) % 17}", "Data": p} for i, p in enumerate(chunk)]
        assert client.put_records(StreamName=stream, Records=records)["FailedRecordCount"] == 0


def assert_sketch_columns_match_oracle(lake_root: str, events: list[dict[str, Any]]) -> None:
    """The #24 columns of every KPI partial the job wrote, folded per window and key (and per
    operator over the whole run: any granularity) against pandas over the unique events: sums
    of squares exact (integers) or to 1e-9 (doubles), histograms and their nearest-rank
    p10/p50/p90 exact, distinct devices within the sketch's 95 % bound."""
    import math

    import numpy as np
    import pandas as pd
    import pyarrow.dataset as ds
    from datasketches import hll_sketch, hll_union

    from signal_common.partials import HLL_95_RELATIVE_ERROR, histogram_percentile

    df = pd.DataFrame(events)
    df["window_start"] = pd.to_datetime(df["event_time"], utc=True, format="ISO8601").dt.floor(
        "min"
    )

    def partials(table: str) -> pd.DataFrame:
        root = f"{lake_root.removeprefix('file://')}/{table}"
        return ds.dataset(root, format="parquet", partitioning="hive").to_table().to_pandas()

    def devices(sketches: pd.Series) -> float:
        union = hll_union(12)
        for sketch in sketches:
            union.update(hll_sketch.deserialize(sketch))
        return float(union.get_result().get_estimate())

    def nearest_rank(values: pd.Series, p: int) -> int:
        return int(np.sort(values.to_numpy())[math.ceil(p * len(values) / 100) - 1])

    specs = {
        "signal_strength_by_operator": (["operator", "network_type"], "signal_dbm", "signal"),
        "coverage_by_postal_code": (["postal_code"], "signal_dbm", "signal"),
        "gps_precision_by_provider": (["provider"], "gps_precision_m", "precision"),
        "status_count": (["postal_code", "status"], None, None),
    }
    for table, (keys, measure, prefix) in specs.items():
        lake = partials(table)
        assert lake["devices_hll"].notna().all(), table
        for group in (["window_start", *keys], keys[:1]):
            got = lake.groupby(group)
            want = df.groupby(group)
            assert set(got.groups) == set(want.groups), (table, group)
            estimate = got["devices_hll"].apply(devices)
            exact = want["device_id"].nunique()
            error = (estimate - exact.reindex(estimate.index)).abs()
            assert (error <= HLL_95_RELATIVE_ERROR * exact.reindex(estimate.index)).all(), table
            if measure is None:
                continue
            squares = (df[measure].astype("float64") ** 2).groupby([df[g] for g in group]).sum()
            got_squares = got[f"{prefix}_sq_sum"].sum().astype("float64")
            assert np.allclose(got_squares, squares.reindex(got_squares.index), rtol=1e-9, atol=0)
            if prefix != "signal":
                continue
            assert (
                got["signal_sq_sum"].sum()
                == want["signal_dbm"]
                .apply(lambda s: int((s.astype("int64") ** 2).sum()))
                .reindex(got_squares.index)
            ).all()
            hists = got["signal_hist"].apply(lambda h: np.sum(np.stack(h.to_numpy()), axis=0))
            for key, hist in hists.items():
                values = want.get_group(key)["signal_dbm"]
                expected = np.bincount(values.to_numpy() + 150, minlength=131)
                assert hist.tolist() == expected.tolist(), (table, key)
                for p in (10, 50, 90):
                    assert histogram_percentile(hist.tolist(), p) == nearest_rank(values, p)


def assert_h3_partials_match_oracle(lake_root: str, events: list[dict[str, Any]]) -> None:
    """coverage_by_h3 folded per window, resolution and cell (and per cell over the whole run)
    against pandas over the unique events, each in its hour and placed by `h3.latlng_to_cell`
    itself: counts, signal sums, out-of-service and band counts, histograms exact; devices
    within the sketch's 95 % bound."""
    import h3
    import numpy as np
    import pandas as pd
    import pyarrow.dataset as ds
    from datasketches import hll_sketch, hll_union

    from signal_common.lake import H3_RESOLUTIONS
    from signal_common.partials import HLL_95_RELATIVE_ERROR
    from signal_common.quality import DEFAULT_BANDS

    df = pd.DataFrame(events)
    df["window_start"] = pd.to_datetime(df["event_time"], utc=True, format="ISO8601").dt.floor("h")
    df["band"] = [
        DEFAULT_BANDS[n].band(int(s))
        for n, s in zip(df["network_type"], df["signal_dbm"], strict=True)
    ]
    df["oos"] = (df["status"] == "OUT_OF_SERVICE").astype("int64")
    want_all = pd.concat(
        df.assign(
            h3_resolution=res,
            h3_cell=[
                h3.latlng_to_cell(a, b, res)
                for a, b in zip(df["latitude"], df["longitude"], strict=True)
            ],
        )
        for res in H3_RESOLUTIONS
    )
    root = f"{lake_root.removeprefix('file://')}/coverage_by_h3"
    lake = ds.dataset(root, format="parquet", partitioning="hive").to_table().to_pandas()
    assert set(lake["h3_resolution"]) == set(H3_RESOLUTIONS)
    window = lake["window_end"] - lake["window_start"]
    assert (window == pd.Timedelta(hours=1)).all()

    def devices(sketches: pd.Series) -> float:
        union = hll_union(12)
        for sketch in sketches:
            union.update(hll_sketch.deserialize(sketch))
        return float(union.get_result().get_estimate())

    for group in (["window_start", "h3_resolution", "h3_cell"], ["h3_resolution", "h3_cell"]):
        got, want = lake.groupby(group), want_all.groupby(group)
        assert set(got.groups) == set(want.groups), group
        assert (got["event_count"].sum() == want.size().reindex(got.size().index)).all()
        assert (got["signal_sum"].sum() == want["signal_dbm"].sum().reindex(got.size().index)).all()
        assert (
            got["out_of_service_count"].sum() == want["oos"].sum().reindex(got.size().index)
        ).all()
        for band in ("excellent", "good", "fair", "poor"):
            exact = want["band"].apply(lambda b, band=band: int((b == band).sum()))
            assert (got[f"band_{band}_count"].sum() == exact.reindex(got.size().index)).all(), band
        hists = got["signal_hist"].apply(lambda h: np.sum(np.stack(h.to_numpy()), axis=0))
        for key, hist in hists.items():
            values = want.get_group(key)["signal_dbm"].to_numpy()
            assert hist.tolist() == np.bincount(values + 150, minlength=131).tolist(), key
        estimate = got["devices_hll"].apply(devices)
        exact_devices = want["device_id"].nunique().reindex(estimate.index)
        assert ((estimate - exact_devices).abs() <= HLL_95_RELATIVE_ERROR * exact_devices).all()


def assert_cell_partials_match_oracle(lake_root: str, events: list[dict[str, Any]]) -> None:
    """coverage_by_cell folded per hour and serving cell (and per cell over the run) against
    pandas over the unique events that report a cell_id: counts, sums, out-of-service counts
    and histograms exact, latitude sums to 1e-9."""
    import numpy as np
    import pandas as pd
    import pyarrow.dataset as ds

    df = pd.DataFrame(events)
    df = df[df["cell_id"].notna()].assign(cell_id=lambda f: f["cell_id"].astype("int64"))
    df["window_start"] = pd.to_datetime(df["event_time"], utc=True, format="ISO8601").dt.floor("h")
    df["oos"] = (df["status"] == "OUT_OF_SERVICE").astype("int64")
    root = f"{lake_root.removeprefix('file://')}/coverage_by_cell"
    lake = ds.dataset(root, format="parquet", partitioning="hive").to_table().to_pandas()
    cell = ["operator", "network_type", "cell_id"]
    for group in (["window_start", *cell], cell):
        got, want = lake.groupby(group), df.groupby(group)
        assert set(got.groups) == set(want.groups), group
        index = got.size().index
        assert (got["event_count"].sum() == want.size().reindex(index)).all()
        assert (got["signal_sum"].sum() == want["signal_dbm"].sum().reindex(index)).all()
        assert (got["out_of_service_count"].sum() == want["oos"].sum().reindex(index)).all()
        lat = got["latitude_sum"].sum() - want["latitude"].sum().reindex(index)
        assert (lat.abs() <= 1e-9 * want["latitude"].sum().abs().reindex(index)).all()
        hists = got["signal_hist"].apply(lambda h: np.sum(np.stack(h.to_numpy()), axis=0))
        for key, hist in hists.items():
            values = want.get_group(key)["signal_dbm"].to_numpy()
            assert hist.tolist() == np.bincount(values + 150, minlength=131).tolist(), key
