"""How KPI partial rows merge: the fold of each `Column.merge` rule, signal histograms and
nearest-rank percentiles, distinct-device sketches (pure: Arrow, NumPy and DataSketches only).

`signal_hist` is a fixed array of 131 counts, bin i for signal_dbm = -150 + i: histograms add
bin by bin, so percentiles are exact at any granularity and after compaction.

The stream processor (its per-partition kernels and the driver's fold) and the catalog
manager's compaction fold partial rows with `fold_partials`, so both merge every column by the
same rule; readers (the metrics API) use `histogram_percentile` and `device_estimate`.

Unknown is never zero. A partial row written before a column existed holds null there; a fold
that meets a null in a group gives null for that group (a sum, a histogram, a sketch alike), so
a figure over a range that includes such rows is unknown rather than silently too small.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasketches import hll_sketch, hll_union, tgt_hll_type

from signal_common.lake import Column
from signal_common.schema import EVENT_FIELDS

_SIGNAL = next(f for f in EVENT_FIELDS if f.name == "signal_dbm")
SIGNAL_HIST_MIN = int(_SIGNAL.minimum)  # type: ignore[arg-type]
"""The value of bin 0 of `signal_hist` (dBm); bin i counts signal_dbm == SIGNAL_HIST_MIN + i."""
SIGNAL_HIST_BINS = int(_SIGNAL.maximum) - SIGNAL_HIST_MIN + 1  # type: ignore[arg-type]
"""131: one bin per integer dBm of the event schema's range, -150..-20."""
HISTOGRAM_TYPE = pa.list_(pa.int64())
"""A fixed-length array of SIGNAL_HIST_BINS counts (measured smaller in Parquet than a sparse
map at every density tried: services/stream-processor/benchmarks/bench_histogram_layout.py)."""

HLL_LG_K = 12
"""log2 of the HLL sketch's registers (4,096). DataSketches' HLL has a relative standard error
of about 1.04 / sqrt(2^lg_k) = 1.63 % (estimate within ±3.25 % of the true count 95 % of the
time); below a few hundred devices the sketch keeps exact hash coupons and is far tighter."""
HLL_TYPE = tgt_hll_type.HLL_4
"""Compact register width (4 bits); unions are computed in HLL_8 and stored back as HLL_4."""
HLL_RSE = 1.04 / math.sqrt(2**HLL_LG_K)
HLL_95_RELATIVE_ERROR = 2 * HLL_RSE

_UNKNOWN_IS_NULL = pc.ScalarAggregateOptions(skip_nulls=False, min_count=0)


def row_groups(rows_per_group: pa.ChunkedArray | pa.ListArray, n_rows: int) -> np.ndarray:
    """For each of `n_rows` input rows, the index of its group, from a group_by's `list`
    aggregate of the row indices (`rows_per_group[g]` lists the rows of group g)."""
    lists = (
        rows_per_group.combine_chunks()
        if isinstance(rows_per_group, pa.ChunkedArray)
        else rows_per_group
    )
    groups = np.empty(n_rows, dtype=np.int64)
    lengths = np.diff(np.asarray(lists.offsets))
    groups[np.asarray(lists.flatten())] = np.repeat(np.arange(len(lists)), lengths)
    return groups


def _dense(counts: np.ndarray, unknown: np.ndarray) -> pa.ListArray:
    """(groups x bins) counts as a list array; null where `unknown`."""
    n_groups = counts.shape[0]
    offsets = pa.array(np.arange(n_groups + 1, dtype=np.int32) * SIGNAL_HIST_BINS, pa.int32())
    return pa.ListArray.from_arrays(
        offsets,
        pa.array(counts.reshape(-1), pa.int64()),
        type=HISTOGRAM_TYPE,
        mask=pa.array(unknown, pa.bool_()),
    )


def histograms(
    values: pa.Array | pa.ChunkedArray, groups: np.ndarray, n_groups: int
) -> pa.ListArray:
    """Per group, the SIGNAL_HIST_BINS-bin histogram of `values` (signal_dbm; nulls are not
    counted, a value outside the schema's range is a ValueError)."""
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    present = np.asarray(values.is_valid())
    bins = values.filter(pa.array(present)).to_numpy(zero_copy_only=False).astype(np.int64)
    bins -= SIGNAL_HIST_MIN
    if len(bins) and (bins.min() < 0 or bins.max() >= SIGNAL_HIST_BINS):
        raise ValueError("signal_dbm outside the event schema's range cannot be binned")
    flat = groups[present] * SIGNAL_HIST_BINS + bins
    counts = np.bincount(flat, minlength=n_groups * SIGNAL_HIST_BINS).astype(np.int64)
    return _dense(counts.reshape(n_groups, SIGNAL_HIST_BINS), np.zeros(n_groups, dtype=bool))


def add_histograms(
    hists: pa.ListArray | pa.ChunkedArray, groups: np.ndarray, n_groups: int
) -> pa.ListArray:
    """Per group, the bin-by-bin sum of its rows' histograms; null (unknown) if any is null."""
    hists = hists.combine_chunks() if isinstance(hists, pa.ChunkedArray) else hists
    known = np.asarray(hists.is_valid())
    unknown = np.zeros(n_groups, dtype=bool)
    unknown[groups[~known]] = True
    rows = hists.filter(pa.array(known))
    if len(rows) and set(pc.list_value_length(rows).unique().to_pylist()) != {SIGNAL_HIST_BINS}:
        raise ValueError(f"a signal histogram without {SIGNAL_HIST_BINS} bins cannot be merged")
    matrix = rows.flatten().to_numpy(zero_copy_only=False).reshape(-1, SIGNAL_HIST_BINS)
    counts = np.zeros((n_groups, SIGNAL_HIST_BINS), dtype=np.int64)
    np.add.at(counts, groups[known], matrix)
    counts[unknown] = 0
    return _dense(counts, unknown)


def histogram_percentile(counts: Sequence[int], p: float) -> int | None:
    """The nearest-rank p-th percentile (dBm) of the values a `signal_hist` counts: the
    smallest value v whose cumulative count reaches ceil(p / 100 * n), for p in (0, 100];
    None when n is 0.

    Over raw values this is numpy's `percentile(values, p, method="inverted_cdf")` (one of the
    observed values, no interpolation), computed here in integers: where p / 100 * n is a whole
    number, numpy's floating-point product can overshoot it by one rank."""
    if not 0 < p <= 100:
        raise ValueError(f"percentile {p} is not in (0, 100]")
    cumulative = np.cumsum(np.asarray(counts, dtype=np.int64))
    n = int(cumulative[-1]) if len(cumulative) else 0
    if n == 0:
        return None
    # exact rank: ceil(p * n / 100) in integers (a float product can overshoot an integer rank)
    rank = max(1, -(-round(p * 1_000_000) * n // 100_000_000))
    return SIGNAL_HIST_MIN + int(np.searchsorted(cumulative, rank))


def device_sketches(
    device_ids: pa.Array | pa.ChunkedArray, groups: np.ndarray, n_groups: int
) -> pa.BinaryArray:
    """Per group, the compact HLL sketch (lg_k HLL_LG_K) of its distinct non-null device ids;
    a group whose events all lack a device id gets an empty sketch (0 devices, not unknown)."""
    ids = device_ids.combine_chunks() if isinstance(device_ids, pa.ChunkedArray) else device_ids
    present = np.asarray(ids.is_valid())
    pairs = (
        pa.table({"g": pa.array(groups[present], pa.int64()), "d": ids.filter(pa.array(present))})
        .group_by(["g", "d"], use_threads=False)
        .aggregate([])
    )  # each device once per group
    sketches = [hll_sketch(HLL_LG_K, HLL_TYPE) for _ in range(n_groups)]
    for g, device in zip(pairs["g"].to_pylist(), pairs["d"].to_pylist(), strict=True):
        sketches[g].update(device)
    return pa.array([s.serialize_compact() for s in sketches], pa.binary())


def union_sketches(
    sketches: pa.BinaryArray | pa.ChunkedArray, groups: np.ndarray, n_groups: int
) -> pa.BinaryArray:
    """Per group, the union of its rows' sketches; null (unknown) if any of them is null."""
    values = sketches.to_pylist()
    unions: list[hll_union | None] = [hll_union(HLL_LG_K) for _ in range(n_groups)]
    for g, value in zip(groups.tolist(), values, strict=True):
        union = unions[g]
        if union is None:
            continue
        if value is None:
            unions[g] = None
        else:
            union.update(hll_sketch.deserialize(value))
    return pa.array(
        [None if u is None else u.get_result(HLL_TYPE).serialize_compact() for u in unions],
        pa.binary(),
    )


def union_of(sketches: Iterable[bytes | None]) -> bytes | None:
    """The union of serialized sketches (None if any is None: unknown stays unknown)."""
    union = hll_union(HLL_LG_K)
    for value in sketches:
        if value is None:
            return None
        union.update(hll_sketch.deserialize(value))
    return bytes(union.get_result(HLL_TYPE).serialize_compact())


def device_estimate(sketch: bytes) -> float:
    """The estimated number of distinct devices of a serialized sketch."""
    return float(hll_sketch.deserialize(sketch).get_estimate())


def device_bounds(sketch: bytes, *, std_devs: int = 2) -> tuple[float, float]:
    """DataSketches' (lower, upper) bound on the distinct devices at 1, 2 or 3 standard
    deviations (2: about 95 %)."""
    sketch_ = hll_sketch.deserialize(sketch)
    return float(sketch_.get_lower_bound(std_devs)), float(sketch_.get_upper_bound(std_devs))


_SCALAR = ("sum", "min", "max")


def fold_partials(rows: pa.Table, keys: Sequence[str], measures: Sequence[Column]) -> pa.Table:
    """One row per distinct `keys` of `rows`, each measure merged by its `Column.merge` rule
    (sum, min, max, hist_add, hll_union; a null in a group makes the group's value null).
    Columns: `keys` then `measures`, in that order; rows in group_by's order."""
    n = rows.num_rows
    scalar = [c for c in measures if c.merge in _SCALAR]
    indexed = rows.select([*keys, *(c.name for c in scalar)]).append_column(
        "_row", pa.array(np.arange(n, dtype=np.int64))
    )
    grouped = indexed.group_by(list(keys), use_threads=False).aggregate(
        [*((c.name, c.merge, _UNKNOWN_IS_NULL) for c in scalar), ("_row", "list")]
    )
    groups = row_groups(grouped["_row_list"], n)
    n_groups = grouped.num_rows
    out: dict[str, pa.Array | pa.ChunkedArray] = {k: grouped[k] for k in keys}
    for c in measures:
        if c.merge in _SCALAR:
            out[c.name] = grouped[f"{c.name}_{c.merge}"]
        elif c.merge == "hist_add":
            out[c.name] = add_histograms(rows[c.name], groups, n_groups)
        elif c.merge == "hll_union":
            out[c.name] = union_sketches(rows[c.name], groups, n_groups)
        else:
            raise ValueError(f"column {c.name} has no merge rule ({c.merge!r})")
    return pa.table(out)
