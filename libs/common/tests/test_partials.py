"""The merge rules of KPI partials against independent oracles: numpy's percentiles over raw
values, exact distinct counts, and null (unknown) never folding as zero."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pytest

from signal_common import partials
from signal_common.lake import COVERAGE_BY_POSTAL_CODE, Column
from signal_common.partials import (
    HLL_95_RELATIVE_ERROR,
    SIGNAL_HIST_BINS,
    SIGNAL_HIST_MIN,
    add_histograms,
    device_estimate,
    device_sketches,
    fold_partials,
    histogram_percentile,
    histograms,
    union_of,
    union_sketches,
)

PERCENTILES = (0.1, 1, 5, 10, 25, 33.3, 50, 66.7, 75, 90, 95, 99, 99.9, 100)


def _by_hand(values: np.ndarray) -> list[int]:
    return np.bincount(values - SIGNAL_HIST_MIN, minlength=SIGNAL_HIST_BINS).tolist()


def test_the_histogram_covers_the_event_schemas_signal_range() -> None:
    assert (SIGNAL_HIST_MIN, SIGNAL_HIST_BINS) == (-150, 131)
    column = COVERAGE_BY_POSTAL_CODE.column("signal_hist")
    assert (column.hive_type, column.merge, column.nullable) == ("array<bigint>", "hist_add", True)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 100, 1001, 20_000])
def test_nearest_rank_percentiles_equal_numpys_over_the_raw_values(n: int) -> None:
    rng = np.random.default_rng(n)
    values = np.clip(np.round(rng.normal(-95, 18, n)), -150, -20).astype(np.int64)
    hist = histograms(pa.array(values), np.zeros(n, dtype=np.int64), 1).to_pylist()[0]
    assert hist == _by_hand(values)
    ordered = np.sort(values)
    for p in PERCENTILES:
        # nearest rank over the raw values, in exact arithmetic: the ceil(p/100 * n)-th smallest
        expected = int(ordered[math.ceil(Fraction(str(p)) * n / 100) - 1])
        assert histogram_percentile(hist, p) == expected, p
        if p in (5, 10, 25, 50, 75, 90, 95) and n < 20_000:  # no float tie at these ranks
            assert expected == int(np.percentile(values, p, method="inverted_cdf"))


def test_percentiles_of_merged_histograms_equal_those_of_all_values() -> None:
    rng = np.random.default_rng(24)
    values = rng.integers(-150, -19, 5000)
    groups = rng.integers(0, 40, 5000)  # 40 partial rows of one key, merged into one
    parts = histograms(pa.array(values), groups, 40)
    merged = add_histograms(parts, np.zeros(40, dtype=np.int64), 1).to_pylist()[0]
    assert merged == _by_hand(values)
    for p in (10, 50, 90):
        assert histogram_percentile(merged, p) == int(np.sort(values)[p * 5000 // 100 - 1])


def test_percentile_edges() -> None:
    assert histogram_percentile([0] * SIGNAL_HIST_BINS, 50) is None
    one = _by_hand(np.array([-150, -20]))
    assert (histogram_percentile(one, 50), histogram_percentile(one, 50.01)) == (-150, -20)
    with pytest.raises(ValueError, match="not in"):
        histogram_percentile(one, 0)
    with pytest.raises(ValueError, match="outside"):
        histograms(pa.array([-151]), np.zeros(1, dtype=np.int64), 1)


def test_an_unknown_histogram_merges_to_unknown() -> None:
    known = _by_hand(np.array([-80, -80, -70]))
    hists = pa.array([known, None, known, known], partials.HISTOGRAM_TYPE)
    merged = add_histograms(hists, np.array([0, 0, 1, 1]), 2).to_pylist()
    assert merged[0] is None
    assert merged[1] == [2 * c for c in known]


def test_device_estimate_is_within_the_stated_bound_of_the_exact_count() -> None:
    assert pytest.approx(0.0325, abs=1e-4) == HLL_95_RELATIVE_ERROR
    rng = np.random.default_rng(7)
    for devices in (5, 300, 20_000, 100_000):
        ids = [f"dev-{d}" for d in rng.integers(0, devices * 3, devices * 4)]
        exact = len(set(ids))
        sketch = device_sketches(pa.array(ids), np.zeros(len(ids), dtype=np.int64), 1)[0]
        estimate = device_estimate(sketch.as_py())
        assert abs(estimate - exact) <= HLL_95_RELATIVE_ERROR * exact, (devices, estimate, exact)


@pytest.mark.parametrize("devices", [50, 2000, 50_000])
def test_the_union_of_partition_sketches_is_the_sketch_of_the_whole(devices: int) -> None:
    """However a batch is split, the union is the same sketch (HLL registers union exactly).
    Below about 400 devices (coupon mode) it is also the whole's; above, DataSketches estimates
    a directly built sketch with HIP and a union with its composite estimator, so the two
    differ, each within the stated bound of the exact count."""
    rng = np.random.default_rng(devices)
    ids = pa.array([f"dev-{d}" for d in rng.integers(0, devices, 120_000)])
    exact = len(set(ids.to_pylist()))
    six = union_of(device_sketches(ids, rng.integers(0, 6, len(ids)), 6).to_pylist())
    two = union_of(device_sketches(ids, rng.integers(0, 2, len(ids)), 2).to_pylist())
    assert six is not None
    assert two is not None
    whole = device_sketches(ids, np.zeros(len(ids), dtype=np.int64), 1)[0].as_py()
    assert device_estimate(six) == device_estimate(two)
    if devices <= 50:
        assert device_estimate(six) == device_estimate(whole)
        assert round(device_estimate(six)) == exact
    for sketch in (six, whole):
        assert abs(device_estimate(sketch) - exact) <= HLL_95_RELATIVE_ERROR * exact
    # the fold's union (per group) is union_of's
    groups = rng.integers(0, 6, len(ids))
    folded = union_sketches(device_sketches(ids, groups, 6), np.zeros(6, dtype=np.int64), 1)
    assert device_estimate(folded[0].as_py()) == device_estimate(six)


def test_events_without_a_device_id_are_not_counted() -> None:
    ids = pa.array(["a", None, "b", "a", None], pa.string())
    sketches = device_sketches(ids, np.array([0, 0, 0, 0, 1]), 2).to_pylist()
    assert [round(device_estimate(s)) for s in sketches] == [2, 0]


def test_an_unknown_sketch_unites_to_unknown() -> None:
    known = device_sketches(pa.array(["a"]), np.zeros(1, dtype=np.int64), 1)[0].as_py()
    united = union_sketches(pa.array([known, None, known], pa.binary()), np.array([0, 0, 1]), 2)
    assert united[0].as_py() is None
    assert round(device_estimate(united[1].as_py())) == 1
    assert union_of([known, None]) is None


def test_fold_applies_each_merge_rule_and_keeps_unknown_unknown() -> None:
    rows = pa.table(
        {
            "k": ["a", "a", "b", "b", "c"],
            "n": pa.array([1, 2, 3, 4, 5], pa.int64()),
            "sq": pa.array([1, None, 9, 16, 25], pa.int64()),  # row 2: a file older than sq
            "lo": pa.array([5, 3, 8, 9, 1], pa.int32()),
            "hist": pa.array(
                [_by_hand(np.array([-90])), _by_hand(np.array([-90, -60])), None,
                 _by_hand(np.array([-30])), _by_hand(np.array([-20]))],
                partials.HISTOGRAM_TYPE,
            ),
        }
    )  # fmt: skip
    measures = [
        Column("n", "bigint", "", merge="sum"),
        Column("sq", "bigint", "", merge="sum"),
        Column("lo", "int", "", merge="min"),
        Column("hist", "array<bigint>", "", merge="hist_add"),
    ]
    got = {r["k"]: r for r in fold_partials(rows, ["k"], measures).to_pylist()}
    assert {k: (r["n"], r["sq"], r["lo"]) for k, r in got.items()} == {
        "a": (3, None, 3),
        "b": (7, 25, 8),
        "c": (5, 25, 1),
    }
    assert got["a"]["hist"] == _by_hand(np.array([-90, -90, -60]))
    assert got["b"]["hist"] is None
    assert got["c"]["hist"] == _by_hand(np.array([-20]))
