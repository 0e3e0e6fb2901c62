"""Service functions: validated parameters in, queries through a runner, response dicts out.

A runner runs a query and applies a `shape` function to its result off the event loop
(`await run(query, shape)`): shapes are pure and blocking, so a 25k-row answer never stalls
the loop that serves cached answers and health checks."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
from h3 import cell_to_latlng, latlng_to_cell

from signal_api.core import queries
from signal_api.core.params import Granularity, TimeRange, floor_minute, percentile_key
from signal_api.core.queries import Query
from signal_api.core.stats import (
    Suppression,
    normal_mean_interval,
    suppression,
    wilson_interval,
)
from signal_common import partials
from signal_common.lake import H3_RESOLUTIONS
from signal_common.partials import SIGNAL_HIST_BINS, SIGNAL_HIST_MIN
from signal_common.quality import BAND_NAMES
from signal_common.schema import QUARANTINE_REASONS

Rows = list[dict[str, Any]]
Columns = dict[str, list[Any]]
T = TypeVar("T")


class Runner(Protocol):
    """Runs a query; `shape` turns its rows into the result, in a worker thread."""

    def __call__(self, query: Query, shape: Callable[[Rows], T], /) -> Awaitable[T]: ...


class ColumnRunner(Protocol):
    """As Runner, with the result as one list per column."""

    def __call__(self, query: Query, shape: Callable[[Columns], T], /) -> Awaitable[T]: ...


def _first(rows: Rows) -> dict[str, Any]:
    return rows[0]


@dataclass(frozen=True, repr=False)
class EncodedJson:
    """A value already encoded as compact JSON text (spliced as is into the response body)."""

    text: str

    def __repr__(self) -> str:
        return f"EncodedJson(<{len(self.text)} chars>)"  # never copies megabytes of text


def _json_texts(values: list[Any], encode: Callable[[Any], Any] = lambda v: v) -> list[str]:
    """The JSON text of `encode(value)` for every value, each distinct value encoded once."""
    texts = {value: json.dumps(encode(value)) for value in set(values)}
    return list(map(texts.__getitem__, values))


def epoch_to_datetime(value: float | int | None) -> dt.datetime | None:
    """A UTC datetime from epoch seconds (None stays None)."""
    return None if value is None else dt.datetime.fromtimestamp(float(value), dt.UTC)


def bucket_labels() -> Callable[[float | int], str]:
    """Epoch seconds -> ISO-8601 'Z' text, memoised (a series repeats each bucket per key)."""
    memo: dict[float | int, str] = {}

    def label(epoch: float | int) -> str:
        text = memo.get(epoch)
        if text is None:
            text = memo[epoch] = (
                dt.datetime.fromtimestamp(float(epoch), dt.UTC).isoformat().replace("+00:00", "Z")
            )
        return text

    return label


def _ratio(numerator: float | int | None, denominator: float | int | None) -> float | None:
    if not denominator:
        return None
    return float(numerator or 0) / float(denominator)


def _share_fields(name: str, part: int, total: int) -> dict[str, float]:
    """`name`, `name_ci_low`, `name_ci_high`: a share of `total` events and its Wilson interval."""
    low, high = wilson_interval(part, total)
    return {name: part / total, f"{name}_ci_low": low, f"{name}_ci_high": high}


def _withheld(name: str) -> dict[str, None]:
    """A suppressed share: the share and its interval, all null."""
    return {name: None, f"{name}_ci_low": None, f"{name}_ci_high": None}


Devices = tuple[int, int, int] | tuple[None, None, None]
_NO_DEVICES: Devices = (None, None, None)


def _devices(sketches: str | None) -> Devices:
    """(estimate, low, high) distinct devices of the union of a row's sketches, from a query's
    base64 list (queries.DEVICE_SKETCHES); None each when a merged row had no sketch (unknown).
    The bounds are DataSketches' at 2 standard deviations (~95 %); all three rounded (in exact
    coupon mode the upper bound is the count plus a hair, which ceil would make one more)."""
    if sketches is None:
        return _NO_DEVICES
    blobs = [base64.b64decode(text) for text in sketches.split(",") if text]
    if not blobs:
        return 0, 0, 0
    union = blobs[0] if len(blobs) == 1 else partials.union_of(blobs)
    assert union is not None  # no blob is None
    low, high = partials.device_bounds(union, std_devs=2)
    return round(partials.device_estimate(union)), round(low), round(high)


def _sample(
    row: dict[str, Any], events: int, *, min_events: int, min_devices: int
) -> tuple[Devices, Suppression | None]:
    """A partial row's distinct devices and why it is withheld (None: served)."""
    devices = _devices(row["devices_hll"])
    return devices, suppression(
        events, min_events=min_events, devices=devices[0], min_devices=min_devices
    )


def _device_fields(devices: Devices) -> dict[str, int | None]:
    return {"devices": devices[0], "devices_ci_low": devices[1], "devices_ci_high": devices[2]}


def _mean_interval(
    name: str, count: int, total: float | int, squares: float | int | None
) -> dict[str, float | None]:
    """`name_ci_low`, `name_ci_high`: the normal 95 % interval of a mean, null when the sum of
    squares is unknown (the range includes partials written before the column)."""
    if squares is None or count < 2:  # count < 2 only when min_events is set below 2
        return {f"{name}_ci_low": None, f"{name}_ci_high": None}
    low, high = normal_mean_interval(count, total, squares)
    return {f"{name}_ci_low": low, f"{name}_ci_high": high}


def _percentiles(histograms: str | None, asked: Sequence[float]) -> dict[str, int | None] | None:
    """The nearest-rank percentiles (as partials.histogram_percentile) of a row's histograms added
    bin by bin, from a query's text (queries.SIGNAL_HISTOGRAMS); None when not asked or a merged
    row had no histogram (unknown).

    Added here, not in SQL: an element-wise sum in SQL (UNNEST WITH ORDINALITY, then a group
    by bin) multiplies the rows the engine aggregates by 131, while at a 1-minute granularity
    each answer row merges one to three partial rows, so the partial histograms the API reads
    are about as many as the merged ones SQL would return."""
    if not asked or histograms is None:
        return None
    # np.fromstring's text mode parses in C (4x faster than str.split for a 24 h / 1m answer)
    counts = np.fromstring(histograms.replace(",", " "), dtype=np.int64, sep=" ")
    cumulative = np.cumsum(counts.reshape(-1, SIGNAL_HIST_BINS).sum(axis=0))
    n = int(cumulative[-1])
    if n == 0:
        return dict.fromkeys(map(percentile_key, asked))
    # partials.histogram_percentile's rule, with one cumulative sum for all the percentiles
    # asked (tests/test_partial_figures.py checks the two agree): ceil(p / 100 * n) in integers
    return {
        percentile_key(p): SIGNAL_HIST_MIN
        + int(np.searchsorted(cumulative, max(1, -(-round(p * 1_000_000) * n // 100_000_000))))
        for p in asked
    }


# Rows per vectorised pass of `_percentile_texts`: bounds its (rows x percentiles x 131) masks to
# a few MB whatever the answer's size.
_PERCENTILE_CHUNK = 2048


def _percentile_texts(histograms: Sequence[str | None], asked: Sequence[float]) -> list[str]:
    """Each row's `_percentiles` as JSON text (`json.dumps` of its dict; "null" when not asked or
    unknown), for a whole column at once: one parse, one bin-by-bin sum and one cumulative sum
    per chunk of rows. Per row, numpy's call overhead made the percentiles of a 24 h / 1m answer
    (~25k rows) cost more than everything else in them."""
    out = ["null"] * len(histograms)
    if not asked:
        return out
    keys = [percentile_key(p) for p in asked]
    template = "{" + ",".join(f"{json.dumps(key)}:%s" for key in keys) + "}"
    unknown = template % (("null",) * len(keys))
    per_million = np.array([round(p * 1_000_000) for p in asked], dtype=np.int64)
    known = [i for i, text in enumerate(histograms) if text is not None]
    for start in range(0, len(known), _PERCENTILE_CHUNK):
        rows = known[start : start + _PERCENTILE_CHUNK]
        texts = [histograms[i] or "" for i in rows]
        per_row = np.fromiter((t.count(",") + 1 for t in texts), dtype=np.int64, count=len(rows))
        counts = np.fromstring(  # one C parse of the whole chunk (see _percentiles)
            " ".join(texts).replace(",", " "), dtype=np.int64, sep=" "
        ).reshape(-1, SIGNAL_HIST_BINS)
        firsts = np.concatenate(([0], np.cumsum(per_row)[:-1]))
        cumulative = np.cumsum(np.add.reduceat(counts, firsts, axis=0), axis=1)
        totals = cumulative[:, -1]
        # _percentiles' rank, ceil(p / 100 * n) in integers, per row and percentile
        ranks = np.maximum(1, -(-per_million[None, :] * totals[:, None] // 100_000_000))
        # the first bin whose cumulative count reaches the rank (np.searchsorted, side "left")
        values = SIGNAL_HIST_MIN + (cumulative[:, None, :] < ranks[:, :, None]).sum(axis=2)
        for i, total, row in zip(rows, totals.tolist(), values.tolist(), strict=True):
            out[i] = template % tuple(row) if total else unknown
    return out


def _range(window: TimeRange, granularity: Granularity | None) -> dict[str, Any]:
    return {
        "from_": window.start,
        "to": window.end,
        "granularity": granularity.value if granularity else None,
    }


async def signal_strength(
    run: ColumnRunner,
    window: TimeRange,
    granularity: Granularity,
    *,
    operators: Sequence[str],
    network_types: Sequence[str],
    by_network_type: bool,
    min_events: int,
    min_devices: int = 0,
    percentiles: Sequence[float] = (),
) -> dict[str, Any]:
    """Avg/min/max signal, its interval, percentiles, events and devices per bucket × operator
    (× network type).

    A 24 h / 1m series has ~25k rows, so they are computed column-wise and encoded straight to
    JSON text (the same text `json.dumps` gives for the row dicts, without building them)."""
    query = queries.signal_strength(
        window,
        granularity,
        operators=operators,
        network_types=network_types,
        by_network_type=by_network_type,
        histograms=bool(percentiles),
    )
    return {
        **_range(window, granularity),
        "rows": await run(
            query,
            lambda columns: _signal_rows(
                columns, min_events=min_events, min_devices=min_devices, percentiles=percentiles
            ),
        ),
    }


def _json_number(value: float | int | None) -> str:
    """A number as json.dumps writes it (ints as ints, floats by float.__repr__), or null."""
    return "null" if value is None else repr(value)


def _signal_rows(
    columns: Columns, *, min_events: int, min_devices: int, percentiles: Sequence[float]
) -> EncodedJson:
    buckets = columns.get("bucket", [])
    n = len(buckets)
    counts = list(map(int, columns.get("event_count", [])))
    network = columns.get("network_type") or [None] * n
    encoded = []
    for bucket, operator, net, count, total, low, high, squares, sketches, found in zip(
        _json_texts(buckets, bucket_labels()),
        _json_texts(columns.get("operator", [])),
        _json_texts(network),
        counts,
        map(int, columns.get("signal_sum", [])),
        map(int, columns.get("signal_min", [])),
        map(int, columns.get("signal_max", [])),
        columns.get("signal_sq_sum") or [None] * n,
        columns.get("devices_hll") or [None] * n,
        _percentile_texts(columns.get("signal_hist") or [None] * n, percentiles),
        strict=True,
    ):
        devices = _devices(sketches)
        head = (bucket, operator, net, count, count, *map(_json_number, devices))
        withheld = suppression(
            count, min_events=min_events, devices=devices[0], min_devices=min_devices
        )
        if withheld:
            encoded.append(_SIGNAL_ROW_SUPPRESSED % (*head, withheld))
            continue
        interval = _mean_interval("x", count, total, None if squares is None else int(squares))
        encoded.append(
            _SIGNAL_ROW
            % (
                *head,
                repr(total / count),
                _json_number(interval["x_ci_low"]),
                _json_number(interval["x_ci_high"]),
                low,
                high,
                found,
            )
        )
    return EncodedJson(f"[{','.join(encoded)}]")


# One signal-strength row as `json.dumps(row, separators=(",", ":"))` writes it: the keys in
# SignalStrengthRow order, %d/%r as json writes ints and floats (float.__repr__).
_SIGNAL_HEAD = (
    '{"bucket_start":%s,"operator":%s,"network_type":%s,"event_count":%d,"events":%d,'
    '"devices":%s,"devices_ci_low":%s,"devices_ci_high":%s,'
)
_SIGNAL_ROW = _SIGNAL_HEAD + (
    '"suppressed":null,"avg_signal_dbm":%s,"avg_signal_dbm_ci_low":%s,'
    '"avg_signal_dbm_ci_high":%s,"min_signal_dbm":%d,"max_signal_dbm":%d,'
    '"signal_percentiles":%s}'
)
# ... and one withheld (stats.suppression's reason: too few events or devices).
_SIGNAL_ROW_SUPPRESSED = _SIGNAL_HEAD + (
    '"suppressed":"%s","avg_signal_dbm":null,"avg_signal_dbm_ci_low":null,'
    '"avg_signal_dbm_ci_high":null,"min_signal_dbm":null,"max_signal_dbm":null,'
    '"signal_percentiles":null}'
)


async def gps_precision(
    run: Runner,
    window: TimeRange,
    granularity: Granularity,
    *,
    providers: Sequence[str],
    min_events: int,
    min_devices: int = 0,
) -> dict[str, Any]:
    """Avg/min/max GPS precision, its interval, events and devices per bucket × provider."""
    query = queries.gps_precision(window, granularity, providers=providers)
    return {
        **_range(window, granularity),
        "rows": await run(
            query, lambda rows: _gps_rows(rows, min_events=min_events, min_devices=min_devices)
        ),
    }


def _gps_rows(rows: Rows, *, min_events: int, min_devices: int) -> list[dict[str, Any]]:
    label = bucket_labels()
    result = []
    for r in rows:
        count = int(r["event_count"])
        devices, withheld = _sample(r, count, min_events=min_events, min_devices=min_devices)
        head = {
            "bucket_start": label(r["bucket"]),
            "provider": r["provider"],
            "event_count": count,
            "events": count,
            **_device_fields(devices),
            "suppressed": withheld,
        }
        if withheld:
            values: dict[str, Any] = dict.fromkeys(_GPS_VALUES)
        else:
            total = float(r["precision_sum"])
            squares = r["precision_sq_sum"]
            values = {
                "avg_precision_m": total / count,
                **_mean_interval(
                    "avg_precision_m", count, total, None if squares is None else float(squares)
                ),
                "min_precision_m": float(r["precision_min"]),
                "max_precision_m": float(r["precision_max"]),
                "avg_satellites": _ratio(r["satellites_sum"], r["satellites_count"]),
            }
        result.append(head | values)
    return result


_GPS_VALUES = (
    "avg_precision_m",
    "avg_precision_m_ci_low",
    "avg_precision_m_ci_high",
    "min_precision_m",
    "max_precision_m",
    "avg_satellites",
)


async def status_counts(
    run: Runner,
    window: TimeRange,
    granularity: Granularity,
    *,
    postal_codes: Sequence[str],
    statuses: Sequence[str],
    top: int | None,
) -> dict[str, Any]:
    """Counts per bucket × postal code × status (optionally the top-N by OUT_OF_SERVICE)."""
    query = queries.status_counts(
        window, granularity, postal_codes=postal_codes, statuses=statuses, top=top
    )
    return {**_range(window, granularity), "rows": await run(query, _status_rows)}


def _status_rows(rows: Rows) -> EncodedJson:
    """Encoded straight to JSON text: with 1,000 postal codes a 48 h / 1m answer has ~200k rows,
    and a dict per row would hold several times the bytes of the text."""
    encoded = [
        _STATUS_ROW % (*row, *map(_json_number, _devices(sketches)))
        for *row, sketches in zip(
            _json_texts([r["bucket"] for r in rows], bucket_labels()),
            _json_texts([r["postal_code"] for r in rows]),
            _json_texts([r["status"] for r in rows]),
            [int(r["event_count"]) for r in rows],
            [int(r["event_count"]) for r in rows],
            [r["devices_hll"] for r in rows],
            strict=True,
        )
    ]
    return EncodedJson(f"[{','.join(encoded)}]")


# One status-counts row as json.dumps writes it (keys in StatusCountsRow order).
_STATUS_ROW = (
    '{"bucket_start":%s,"postal_code":%s,"status":%s,"event_count":%d,"events":%d,'
    '"devices":%s,"devices_ci_low":%s,"devices_ci_high":%s}'
)


async def signal_quality(
    run: Runner,
    window: TimeRange,
    *,
    operators: Sequence[str],
    network_types: Sequence[str],
    min_events: int,
    min_devices: int = 0,
) -> dict[str, Any]:
    """Share of events per quality band per operator × network type over the range."""
    query = queries.signal_quality(window, operators=operators, network_types=network_types)
    return {
        **_range(window, None),
        "rows": await run(
            query,
            lambda rows: _quality_rows(rows, min_events=min_events, min_devices=min_devices),
        ),
    }


def _quality_rows(rows: Rows, *, min_events: int, min_devices: int) -> list[dict[str, Any]]:
    result = []
    for r in rows:
        total = int(r["event_count"])
        devices, withheld = _sample(r, total, min_events=min_events, min_devices=min_devices)
        row: dict[str, Any] = {
            "operator": r["operator"],
            "network_type": r["network_type"],
            "event_count": total,
            "events": total,
            **_device_fields(devices),
            "suppressed": withheld,
        }
        if withheld:
            row.update(dict.fromkeys(("band_counts", *_withheld("band_shares"))))
        else:
            counts = {band: int(r[f"band_{band}_count"]) for band in BAND_NAMES}
            intervals = {band: wilson_interval(n, total) for band, n in counts.items()}
            row.update(
                band_counts=counts,
                band_shares={band: n / total for band, n in counts.items()},
                band_shares_ci_low={band: low for band, (low, _) in intervals.items()},
                band_shares_ci_high={band: high for band, (_, high) in intervals.items()},
            )
        result.append(row)
    return result


async def coverage(
    run: Runner,
    window: TimeRange,
    *,
    postal_codes: Sequence[str],
    min_events: int,
    min_devices: int = 0,
    percentiles: Sequence[float] = (),
) -> dict[str, Any]:
    """Per postal code: centroid, events, devices, avg signal with its interval and
    percentiles, out-of-service share."""
    query = queries.coverage(window, postal_codes=postal_codes, histograms=bool(percentiles))
    return {
        **_range(window, None),
        "rows": await run(
            query,
            lambda rows: _coverage_rows(
                rows, min_events=min_events, min_devices=min_devices, percentiles=percentiles
            ),
        ),
    }


_COVERAGE_VALUES = (
    "latitude",
    "longitude",
    "avg_signal_dbm",
    "avg_signal_dbm_ci_low",
    "avg_signal_dbm_ci_high",
    "signal_percentiles",
)


def _coverage_rows(
    rows: Rows, *, min_events: int, min_devices: int, percentiles: Sequence[float]
) -> list[dict[str, Any]]:
    result = []
    for r in rows:
        count = int(r["event_count"])
        devices, withheld = _sample(r, count, min_events=min_events, min_devices=min_devices)
        row: dict[str, Any] = {
            "postal_code": r["postal_code"],
            "event_count": count,
            "events": count,
            **_device_fields(devices),
            "suppressed": withheld,
        }
        if withheld:
            row.update(dict.fromkeys(_COVERAGE_VALUES))
            row.update(_withheld("out_of_service_share"))
        else:
            total = int(r["signal_sum"])
            squares = r["signal_sq_sum"]
            row.update(
                latitude=float(r["latitude_sum"]) / count,
                longitude=float(r["longitude_sum"]) / count,
                avg_signal_dbm=total / count,
                **_mean_interval(
                    "avg_signal_dbm", count, total, None if squares is None else int(squares)
                ),
                signal_percentiles=_percentiles(r.get("signal_hist"), percentiles),
                **_share_fields("out_of_service_share", int(r["out_of_service_count"]), count),
            )
        result.append(row)
    return result


# The quality bands from worst to best: a cell's band is that of its median event.
_BANDS_WORST_FIRST = ("poor", "fair", "good", "excellent")
assert set(_BANDS_WORST_FIRST) == set(BAND_NAMES)
_H3_VALUES = (
    "avg_signal_dbm",
    "avg_signal_dbm_ci_low",
    "avg_signal_dbm_ci_high",
    "signal_percentiles",
    "band",
    "band_counts",
)


async def coverage_h3(
    run: Runner,
    window: TimeRange,
    *,
    resolution: int,
    min_events: int,
    min_devices: int = 0,
    percentiles: Sequence[float] = (50,),
) -> dict[str, Any]:
    """Per H3 cell of `resolution`: events, devices, avg signal with its interval, percentiles
    (p50 always), the median event's quality band, out-of-service share."""
    asked = tuple(dict.fromkeys((50.0, *percentiles)))
    query = queries.coverage_h3(window, resolution)
    return {
        **_range(window, None),
        "resolution": resolution,
        "rows": await run(
            query,
            lambda rows: _h3_rows(
                rows, resolution, min_events=min_events, min_devices=min_devices, asked=asked
            ),
        ),
    }


def median_band(counts: dict[str, int]) -> str | None:
    """The band of the median event (nearest rank, bands ordered worst to best); None for none."""
    total = sum(counts.values())
    if total == 0:
        return None
    rank = -(-total // 2)  # ceil(n / 2)
    seen = 0
    for band in _BANDS_WORST_FIRST:
        seen += counts[band]
        if seen >= rank:
            return band
    raise AssertionError("unreachable: the counts reach their total")


def _h3_rows(
    rows: Rows, resolution: int, *, min_events: int, min_devices: int, asked: Sequence[float]
) -> list[dict[str, Any]]:
    result = []
    for r in rows:
        count = int(r["event_count"])
        devices, withheld = _sample(r, count, min_events=min_events, min_devices=min_devices)
        latitude, longitude = cell_to_latlng(r["h3_cell"])
        row: dict[str, Any] = {
            "h3_cell": r["h3_cell"],
            "h3_resolution": resolution,
            "latitude": latitude,
            "longitude": longitude,
            "events": count,
            **_device_fields(devices),
            "suppressed": withheld,
        }
        if withheld:
            row.update(dict.fromkeys(_H3_VALUES))
            row.update(_withheld("out_of_service_share"))
        else:
            total = int(r["signal_sum"])
            squares = r["signal_sq_sum"]
            counts = {band: int(r[f"band_{band}_count"]) for band in BAND_NAMES}
            row.update(
                avg_signal_dbm=total / count,
                **_mean_interval(
                    "avg_signal_dbm", count, total, None if squares is None else int(squares)
                ),
                signal_percentiles=_percentiles(r.get("signal_hist"), asked),
                band=median_band(counts),
                band_counts=counts,
                **_share_fields("out_of_service_share", int(r["out_of_service_count"]), count),
            )
        result.append(row)
    return result


async def worst_cells(
    run: Runner,
    window: TimeRange,
    *,
    top: int,
    min_events: int,
    min_devices: int = 0,
) -> dict[str, Any]:
    """The `top` serving cells ranked worst first: out-of-service share (highest first), then
    p10 signal (weakest first); withheld cells after every served one."""
    return {
        **_range(window, None),
        **await run(
            queries.cells(window),
            lambda rows: _worst_cells(
                rows, top=top, min_events=min_events, min_devices=min_devices
            ),
        ),
    }


def merged_percentiles(histogram: str | None, asked: Sequence[float]) -> dict[str, int | None]:
    """Nearest-rank percentiles of one merged histogram's text (queries.MERGED_HISTOGRAM)."""
    result = _percentiles(histogram, asked)
    return result if result is not None else dict.fromkeys(map(percentile_key, asked))


def _worst_cells(rows: Rows, *, top: int, min_events: int, min_devices: int) -> dict[str, Any]:
    served: list[dict[str, Any]] = []
    withheld: list[dict[str, Any]] = []
    for r in rows:
        count = int(r["event_count"])
        devices, reason = _sample(r, count, min_events=min_events, min_devices=min_devices)
        row: dict[str, Any] = {
            "operator": r["operator"],
            "network_type": r["network_type"],
            "cell_id": int(r["cell_id"]),
            "events": count,
            **_device_fields(devices),
            "suppressed": reason,
        }
        if reason:
            row.update(dict.fromkeys(_CELL_VALUES))
            row.update(_withheld("out_of_service_share"))
            withheld.append(row)
            continue
        total, squares = int(r["signal_sum"]), r["signal_sq_sum"]
        latitude = float(r["latitude_sum"]) / count
        longitude = float(r["longitude_sum"]) / count
        found = merged_percentiles(r.get("signal_hist"), (10.0, 50.0))
        row.update(
            latitude=latitude,
            longitude=longitude,
            h3_cell=latlng_to_cell(latitude, longitude, max(H3_RESOLUTIONS)),
            avg_signal_dbm=total / count,
            **_mean_interval(
                "avg_signal_dbm", count, total, None if squares is None else int(squares)
            ),
            signal_p10=found["p10"],
            signal_p50=found["p50"],
            **_share_fields("out_of_service_share", int(r["out_of_service_count"]), count),
        )
        served.append(row)
    # worst first: highest share, then weakest p10 (unknown p10 last), then the cell's keys
    served.sort(
        key=lambda c: (
            -c["out_of_service_share"],
            c["signal_p10"] is None,
            c["signal_p10"] if c["signal_p10"] is not None else 0,
            c["operator"], c["network_type"], c["cell_id"],
        )
    )  # fmt: skip
    withheld.sort(key=lambda c: (-c["events"], c["operator"], c["network_type"], c["cell_id"]))
    ranked = (served + withheld)[:top]
    for rank, row in enumerate(ranked, start=1):
        row["rank"] = rank
    return {"cells": len(rows), "withheld": len(withheld), "top": top, "rows": ranked}


_CELL_VALUES = (
    "latitude",
    "longitude",
    "h3_cell",
    "avg_signal_dbm",
    "avg_signal_dbm_ci_low",
    "avg_signal_dbm_ci_high",
    "signal_p10",
    "signal_p50",
)


async def summary(
    run: Runner, at: dt.datetime, *, lookback_hours: int, complete_after_s: int, min_events: int
) -> dict[str, Any]:
    """The latest complete 1-minute window: events/min, avg signal, out-of-service share."""
    newest_complete = floor_minute(at - dt.timedelta(seconds=complete_after_s + 60))
    search = TimeRange(
        newest_complete - dt.timedelta(hours=lookback_hours),
        newest_complete + dt.timedelta(minutes=1),
    )
    latest = (await run(queries.latest_window(search), _first))["latest"]
    batch = await run(
        queries.pipeline(TimeRange(at - dt.timedelta(hours=lookback_hours), at)), _first
    )
    result: dict[str, Any] = {
        "as_of": at,
        "window_start": None,
        "events_per_min": 0,
        "events": 0,
        "suppressed": None,
        **_withheld("avg_signal_dbm"),
        **_withheld("out_of_service_share"),
        "freshness_s": None,
        "newest_batch_time": epoch_to_datetime(batch["newest_batch_time"]),
    }
    if latest is None:
        return result
    start = epoch_to_datetime(latest)
    assert start is not None
    totals = await run(
        queries.window_totals(TimeRange(start, start + dt.timedelta(minutes=1))), _first
    )
    events = int(totals["event_count"] or 0)
    coverage_events = int(totals["coverage_count"] or 0)
    # the share's sample is the coverage table's count (the same events, another partial)
    withheld = suppression(min(events, coverage_events), min_events=min_events)
    result.update(
        window_start=start,
        events_per_min=events,
        events=events,
        suppressed=withheld,
        freshness_s=(at - (start + dt.timedelta(minutes=1))).total_seconds(),
    )
    if not withheld:
        squares = totals["signal_sq_sum"]
        result.update(
            avg_signal_dbm=_ratio(totals["signal_sum"], events),
            **_mean_interval(
                "avg_signal_dbm",
                events,
                int(totals["signal_sum"]),
                None if squares is None else int(squares),
            ),
            **_share_fields(
                "out_of_service_share", int(totals["out_of_service_count"] or 0), coverage_events
            ),
        )
    return result


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


async def pipeline(run: Runner, window: TimeRange, *, at: dt.datetime) -> dict[str, Any]:
    """Freshness, throughput, consumer lag, quarantine rate by reason, duplicates and late drops
    over a batch-time range."""
    r = await run(queries.pipeline(window), _first)
    rows_in = int(r["rows_in"] or 0)
    quarantined = int(r["quarantined_rows"] or 0)
    by_reason = {reason: int(r[f"q_{i}"] or 0) for i, reason in enumerate(QUARANTINE_REASONS)}
    other = quarantined - sum(by_reason.values())
    if other > 0:
        by_reason["other"] = other
    batches = int(r["batches"] or 0)
    newest_batch = epoch_to_datetime(r["newest_batch_time"])
    oldest_batch = epoch_to_datetime(r["oldest_batch_time"])
    newest_event = epoch_to_datetime(r["newest_event_time"])
    throughput = None
    if batches >= 2 and newest_batch is not None and oldest_batch is not None:
        span_s = (newest_batch - oldest_batch).total_seconds()
        after_first = int(r["valid_rows"] or 0) - int(r["first_batch_valid_rows"] or 0)
        throughput = after_first / span_s if span_s > 0 else None
    return {
        "from_": window.start,
        "to": window.end,
        "as_of": at,
        "batches": batches,
        "rows_in": rows_in,
        "valid_rows": int(r["valid_rows"] or 0),
        "quarantined_rows": quarantined,
        "duplicates_removed": int(r["duplicates_removed"] or 0),
        "late_dropped": int(r["late_dropped"] or 0),
        "millis_behind_latest": _int_or_none(r["millis_behind_latest"]),
        "max_millis_behind_latest": _int_or_none(r["max_millis_behind_latest"]),
        "events_per_s": int(r["valid_rows"] or 0) / window.seconds,
        "throughput_events_per_s": throughput,
        "throughput_from": oldest_batch,
        "throughput_to": newest_batch,
        "quarantine_rate": _ratio(quarantined, rows_in),
        "quarantine_rate_by_reason": {k: v / rows_in for k, v in by_reason.items()}
        if rows_in
        else {},
        "quarantined_by_reason": by_reason,
        "avg_processing_ms": _ratio(r["processing_ms"], batches),
        "max_lateness_s": None if r["max_lateness_s"] is None else float(r["max_lateness_s"]),
        "newest_batch_time": newest_batch,
        "newest_event_time": newest_event,
        "batch_freshness_s": None if newest_batch is None else (at - newest_batch).total_seconds(),
        "event_freshness_s": None if newest_event is None else (at - newest_event).total_seconds(),
    }
