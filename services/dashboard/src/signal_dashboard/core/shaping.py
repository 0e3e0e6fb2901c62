"""All data shaping of the dashboard: pure functions from the metrics API's JSON to tables.

Nothing here recomputes a KPI the API already merged exactly (averages stay Σsum/Σcount as the
API returned them); the only arithmetic is adding integer counts (status counts over a range)
and shares of those integer sums.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pandas as pd

from signal_common.quality import BAND_NAMES, BANDS_VERSION, DEFAULT_BANDS, QualityBands

# The map colours a postal code's average signal with the LTE (RSRP) bands: 4G carries most
# events, and one legend across the map is readable where per-technology colours are not.
MAP_NETWORK = "4G"
MAP_BANDS = DEFAULT_BANDS[MAP_NETWORK]
BAND_COLOURS: dict[str, tuple[int, int, int]] = {
    "excellent": (26, 150, 65),
    "good": (166, 217, 106),
    "fair": (253, 174, 97),
    "poor": (215, 25, 28),
}
OUT_OF_SERVICE = "OUT_OF_SERVICE"
# A row the API withholds (`"suppressed"`, issue 24) is drawn grey and says why.
WITHHELD_BAND = "withheld"
WITHHELD_COLOUR = (160, 160, 160)
# What each reason means; the thresholds are the ones the answer's `meta` says the API applied
# (metrics-api 0.8.0+), else named by their setting.
_WITHHELD_WHY = {
    "min_events": ("events", "min_events", "SIGNAL_API_MIN_EVENTS"),
    "min_devices": ("distinct devices", "min_devices", "SIGNAL_API_MIN_DEVICES"),
}


def withheld_why(reason: str, meta: Mapping[str, Any] | None = None) -> str:
    """Why the API withholds a row for `reason`, with its threshold when `meta` publishes it."""
    if reason not in _WITHHELD_WHY:
        return reason
    what, field, setting = _WITHHELD_WHY[reason]
    threshold = (meta or {}).get(field)
    if threshold:
        return f"fewer than the API's minimum of {int(threshold):,} {what}"
    return f"fewer {what} than the API's minimum ({setting})"


def withheld_rule(meta: Mapping[str, Any] | None) -> str:
    """Both withholding thresholds in words: "fewer than 20 events or 5 distinct devices"."""
    meta = meta or {}
    events, devices = meta.get("min_events"), meta.get("min_devices")
    if events and devices:
        return f"fewer than {int(events):,} events or {int(devices):,} distinct devices"
    return "fewer events or distinct devices than the API's minimums"


def withheld_note(reason: str | None, events: int, meta: Mapping[str, Any] | None = None) -> str:
    """Why the API withheld a row's figures, in words ("" when it served them)."""
    if not reason:
        return ""
    return f"withheld: {events:,} events, {withheld_why(reason, meta)}"


def interval_text(low: float | None, high: float | None) -> str:
    """A share's 95 % interval as "low–high" in percent ("" when there is none)."""
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return ""
    return f"{low:.1%}–{high:.1%}"


@dataclass(frozen=True)
class Tile:
    """One headline figure: label, formatted value, state (ok / warn / alert / none), help."""

    label: str
    value: str
    state: str = "ok"
    help: str = ""
    raw: float | None = None


def _time(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _frame(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=list(columns))
    if "bucket_start" in frame.columns:
        frame["bucket_start"] = pd.to_datetime(frame["bucket_start"], utc=True)
    return frame


def format_age(seconds: float) -> str:
    """A human age: 14 s, 3 min 5 s, 2 h 10 min."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, rest = divmod(round(seconds) // 60, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def freshness_state(age_s: float | None, *, warn_s: float, alert_s: float) -> str:
    """ok below warn_s, warn up to alert_s, alert beyond (and when nothing has arrived)."""
    if age_s is None or age_s > alert_s:
        return "alert"
    return "warn" if age_s > warn_s else "ok"


def overview_tiles(
    summary: Mapping[str, Any] | None,
    pipeline: Mapping[str, Any] | None,
    *,
    now: dt.datetime,
    warn_s: float,
    alert_s: float,
) -> list[Tile]:
    """The Overview's five tiles from `/v1/summary` and `/v1/pipeline`."""
    tiles: list[Tile] = []
    summary = summary or {}
    window_start = _time(summary.get("window_start"))
    minute = f"minute from {window_start:%H:%M} UTC" if window_start else "no complete minute yet"
    events = summary.get("events_per_min")
    tiles.append(
        Tile(
            "Events / min",
            f"{events:,}" if events is not None else "–",
            "ok" if events else "none",
            f"Valid events in the latest complete {minute}.",
            float(events) if events is not None else None,
        )
    )
    avg = summary.get("avg_signal_dbm")
    tiles.append(
        Tile(
            "Average signal",
            f"{avg:.1f} dBm" if avg is not None else "–",
            "none" if avg is None else "ok",
            f"Σsignal / Σevents over the {minute}.",
            avg,
        )
    )
    oos = summary.get("out_of_service_share")
    interval = interval_text(
        summary.get("out_of_service_share_ci_low"), summary.get("out_of_service_share_ci_high")
    )
    withheld = withheld_note(
        summary.get("suppressed"), int(summary.get("events") or 0), summary.get("meta")
    )
    tiles.append(
        Tile(
            "Out of service",
            f"{oos:.1%}" if oos is not None else "withheld" if withheld else "–",
            "none" if oos is None else "ok",
            f"Share of OUT_OF_SERVICE events in the {minute}"
            + (f" (95 % interval {interval})." if interval else ".")
            + (f" The API {withheld}." if withheld else ""),
            oos,
        )
    )
    pipeline = pipeline or {}
    rate = pipeline.get("quarantine_rate")
    tiles.append(
        Tile(
            "Quarantine rate",
            f"{rate:.2%}" if rate is not None else "–",
            "none" if rate is None else "ok",
            "Quarantined / records read over the selected range (Pipeline health: by reason).",
            rate,
        )
    )
    newest = _time(pipeline.get("newest_event_time"))
    age = (now - newest).total_seconds() if newest else None
    tiles.append(
        Tile(
            "Data freshness",
            f"newest event {format_age(age)} ago" if age is not None else "no events yet",
            freshness_state(age, warn_s=warn_s, alert_s=alert_s),
            f"Amber past {format_age(warn_s)}, red past {format_age(alert_s)}.",
            age,
        )
    )
    return tiles


def signal_series(body: Mapping[str, Any]) -> pd.DataFrame:
    """`/v1/kpis/signal-strength` rows as a table, ordered by bucket and operator."""
    frame = _frame(
        body.get("rows", []),
        (
            "bucket_start",
            "operator",
            "network_type",
            "event_count",
            "devices",
            "avg_signal_dbm",
            "avg_signal_dbm_ci_low",
            "avg_signal_dbm_ci_high",
            "min_signal_dbm",
            "max_signal_dbm",
            "suppressed",
        ),
    )
    return frame.sort_values(["bucket_start", "operator"], kind="stable").reset_index(drop=True)


def gps_series(body: Mapping[str, Any]) -> pd.DataFrame:
    """`/v1/kpis/gps-precision` rows as a table, ordered by bucket and provider."""
    frame = _frame(
        body.get("rows", []),
        (
            "bucket_start",
            "provider",
            "event_count",
            "devices",
            "avg_precision_m",
            "avg_precision_m_ci_low",
            "avg_precision_m_ci_high",
            "min_precision_m",
            "max_precision_m",
            "avg_satellites",
            "suppressed",
        ),
    )
    return frame.sort_values(["bucket_start", "provider"], kind="stable").reset_index(drop=True)


def withheld_caption(
    frame: pd.DataFrame, *, what: str, meta: Mapping[str, Any] | None = None
) -> str:
    """How many of a series' points the API withheld and why, or "" when none."""
    if "suppressed" not in frame.columns or frame.empty:
        return ""
    reasons = frame["suppressed"].dropna()
    if reasons.empty:
        return ""
    why = "; ".join(
        f"{count:,} {withheld_why(str(reason), meta)}"
        for reason, count in reasons.value_counts(sort=False).sort_index().items()
    )
    return (
        f"{len(reasons):,} of {len(frame):,} {what} withheld by the API ({why}): gaps in the "
        "lines. A coarser granularity has more events per point."
    )


def status_totals(body: Mapping[str, Any]) -> pd.DataFrame:
    """`/v1/kpis/status-counts` summed over the range: one row per postal code × status.

    Postal codes are ordered worst first (most OUT_OF_SERVICE events, ties by code, like the
    API's `top`), statuses alphabetically within a code.
    """
    rows = body.get("rows", [])
    frame = _frame(rows, ("bucket_start", "postal_code", "status", "event_count"))
    if frame.empty:
        return pd.DataFrame(columns=["postal_code", "status", "event_count"])
    totals = (
        frame.groupby(["postal_code", "status"], as_index=False)["event_count"]
        .sum()
        .astype({"event_count": "int64"})
    )
    oos = (
        totals[totals["status"] == OUT_OF_SERVICE].set_index("postal_code")["event_count"]
        if (totals["status"] == OUT_OF_SERVICE).any()
        else pd.Series(dtype="int64")
    )
    order = sorted(totals["postal_code"].unique(), key=lambda code: (-int(oos.get(code, 0)), code))
    totals["_rank"] = totals["postal_code"].map({code: i for i, code in enumerate(order)})
    return totals.sort_values(["_rank", "status"]).drop(columns="_rank").reset_index(drop=True)


def status_series(body: Mapping[str, Any], postal_code: str) -> pd.DataFrame:
    """One postal code's counts per bucket × status, plus its out-of-service share per bucket."""
    frame = _frame(body.get("rows", []), ("bucket_start", "postal_code", "status", "event_count"))
    frame = frame[frame["postal_code"] == postal_code]
    if frame.empty:
        return pd.DataFrame(
            columns=["bucket_start", "status", "event_count", "out_of_service_share"]
        )
    per_bucket = frame.groupby("bucket_start")["event_count"].transform("sum")
    oos = frame.assign(_oos=(frame["status"] == OUT_OF_SERVICE) * frame["event_count"])
    oos_per_bucket = oos.groupby("bucket_start")["_oos"].transform("sum")
    result = frame.assign(out_of_service_share=oos_per_bucket / per_bucket)
    return (
        result[["bucket_start", "status", "event_count", "out_of_service_share"]]
        .sort_values(["bucket_start", "status"])
        .reset_index(drop=True)
    )


def quality_shares(body: Mapping[str, Any]) -> pd.DataFrame:
    """`/v1/kpis/signal-quality` as long rows: operator, network type, band, count, share."""
    records = []
    for row in body.get("rows", []):
        # a withheld row (too few events) has no counts or shares: its bands stay empty
        counts, shares = row.get("band_counts") or {}, row.get("band_shares") or {}
        lows, highs = row.get("band_shares_ci_low") or {}, row.get("band_shares_ci_high") or {}
        for band in BAND_NAMES:
            records.append(
                {
                    "operator": row["operator"],
                    "network_type": row["network_type"],
                    "band": band,
                    "event_count": counts.get(band),
                    "share": shares.get(band),
                    "share_ci_low": lows.get(band),
                    "share_ci_high": highs.get(band),
                    "note": withheld_note(
                        row.get("suppressed"), int(row.get("events") or 0), body.get("meta")
                    ),
                }
            )
    frame = pd.DataFrame(
        records,
        columns=[
            "operator", "network_type", "band", "event_count", "share",
            "share_ci_low", "share_ci_high", "note",
        ],
    )  # fmt: skip
    frame["band"] = pd.Categorical(frame["band"], categories=list(BAND_NAMES), ordered=True)
    return frame.sort_values(["operator", "network_type", "band"]).reset_index(drop=True)


def operators_of(*bodies: Mapping[str, Any] | None) -> list[str]:
    """Operator names present in any of the given responses' rows, sorted."""
    names = {
        row["operator"]
        for body in bodies
        if body
        for row in body.get("rows", [])
        if row.get("operator")
    }
    return sorted(names)


COVERAGE_PERCENTILES = (10, 50)
"""The signal percentiles the Coverage page asks for: the median (Ookla's headline figure) and
p10 (the weak tail an engineer looks at first)."""


def _with_interval_and_note(
    frame: pd.DataFrame, body: Mapping[str, Any], *, events: str
) -> pd.DataFrame:
    """`frame` (rows of an answer with `suppressed` and the out-of-service interval) with
    `out_of_service_ci` as text and why each row is withheld (`note`, in words from the answer's
    meta and the row's `events` column; "" for a served row)."""
    frame["out_of_service_ci"] = [
        interval_text(low, high)
        for low, high in zip(
            frame["out_of_service_share_ci_low"], frame["out_of_service_share_ci_high"], strict=True
        )
    ]
    frame["note"] = [
        withheld_note(reason if isinstance(reason, str) else None, int(count), body.get("meta"))
        for reason, count in zip(frame["suppressed"], frame[events], strict=True)
    ]
    return frame


def coverage_table(body: Mapping[str, Any], bands: QualityBands = MAP_BANDS) -> pd.DataFrame:
    """`/v1/coverage` rows with each code's signal band, map colour and point radius, the
    out-of-service share's 95 % interval as text, its signal percentiles (`signal_p10`,
    `signal_p50`), and why a row is withheld (`note`).

    Ordered worst first: highest out-of-service share, then weakest average signal; rows the
    API withheld (too few events: no share, no centroid) last.
    """
    frame = pd.DataFrame(
        list(body.get("rows", [])),
        columns=[
            "postal_code",
            "event_count",
            "latitude",
            "longitude",
            "avg_signal_dbm",
            "out_of_service_share",
            "out_of_service_share_ci_low",
            "out_of_service_share_ci_high",
            "devices",
            "signal_percentiles",
            "suppressed",
        ],
    )
    # the exact percentiles the page asked (COVERAGE_PERCENTILES); null where withheld or unknown
    for p in COVERAGE_PERCENTILES:
        frame[f"signal_p{p}"] = [
            float(found[f"p{p}"]) if isinstance(found, Mapping) and f"p{p}" in found else math.nan
            for found in frame["signal_percentiles"]
        ]
    frame = frame.drop(columns=["signal_percentiles"])
    withheld = frame["suppressed"].notna()
    frame["band"] = [
        WITHHELD_BAND if w else bands.band(v)
        for w, v in zip(withheld, frame["avg_signal_dbm"], strict=True)
    ]
    frame["colour"] = [list(BAND_COLOURS.get(b, WITHHELD_COLOUR)) for b in frame["band"]]
    largest = float(frame["event_count"].max()) if not frame.empty else 1.0
    # area proportional to events: radius ∝ sqrt(count), 150 m to 900 m
    frame["radius_m"] = [150.0 + 750.0 * math.sqrt(c / largest) for c in frame["event_count"]]
    frame = _with_interval_and_note(frame, body, events="event_count")
    return frame.sort_values(
        ["out_of_service_share", "avg_signal_dbm", "postal_code"],
        ascending=[False, True, True],
        na_position="last",
    ).reset_index(drop=True)


H3_RESOLUTIONS = (9, 7)
"""The hexagon resolutions the Coverage page offers (the API's res): 9 first, the FCC's."""


def h3_table(body: Mapping[str, Any]) -> pd.DataFrame:
    """`/v1/coverage/h3` rows with each cell's map colour (its median event's band; grey when
    withheld), the median signal (`signal_p50`), the out-of-service interval as text and why a
    cell is withheld (`note`). Withheld cells stay: drawn grey, their reason in the tooltip.
    Ordered worst first, as `coverage_table`; withheld cells last."""
    frame = pd.DataFrame(
        list(body.get("rows", [])),
        columns=[
            "h3_cell", "latitude", "longitude", "events", "devices", "avg_signal_dbm",
            "signal_percentiles", "band", "out_of_service_share", "out_of_service_share_ci_low",
            "out_of_service_share_ci_high", "suppressed",
        ],
    )  # fmt: skip
    frame["signal_p50"] = [
        float(found["p50"]) if isinstance(found, Mapping) and found.get("p50") is not None
        else math.nan
        for found in frame["signal_percentiles"]
    ]  # fmt: skip
    frame = frame.drop(columns=["signal_percentiles"])
    withheld = frame["suppressed"].notna()
    frame["band"] = [
        WITHHELD_BAND if w else str(b) for w, b in zip(withheld, frame["band"], strict=True)
    ]
    frame["colour"] = [list(BAND_COLOURS.get(b, WITHHELD_COLOUR)) for b in frame["band"]]
    frame = _with_interval_and_note(frame, body, events="events")
    return frame.sort_values(
        ["out_of_service_share", "avg_signal_dbm", "h3_cell"],
        ascending=[False, True, True],
        na_position="last",
    ).reset_index(drop=True)


def worst_cells_table(body: Mapping[str, Any]) -> pd.DataFrame:
    """`/v1/cells/worst` rows, in the API's rank, with the out-of-service interval as text, why
    a cell is withheld (`note`) and a `map` link to its resolution-9 hexagon on the Coverage
    page (`coverage?areas=hexagons&focus=<h3 cell>`; none for a withheld cell, whose place the
    API withholds too)."""
    frame = pd.DataFrame(
        list(body.get("rows", [])),
        columns=[
            "rank", "operator", "network_type", "cell_id", "out_of_service_share",
            "out_of_service_share_ci_low", "out_of_service_share_ci_high", "signal_p10",
            "signal_p50", "events", "devices", "h3_cell", "suppressed",
        ],
    )  # fmt: skip
    frame = _with_interval_and_note(frame, body, events="events")
    frame["map"] = [
        f"coverage?areas=hexagons&focus={cell}" if isinstance(cell, str) else None
        for cell in frame["h3_cell"]
    ]
    return frame


def worst_code_line(row: Mapping[str, Any]) -> str:
    """The Coverage page's one line on its worst served postal code (a `coverage_table` row);
    a figure the answer does not have (devices or percentiles unknown) is left out."""
    signal = f"average {row['avg_signal_dbm']:.1f} dBm"
    named = (("median", "signal_p50"), ("p10", "signal_p10"))
    tail = [f"{name} {row[col]:.0f}" for name, col in named if not pd.isna(row.get(col))]
    if tail:
        signal += f" ({', '.join(tail)} dBm)"
    devices = row.get("devices")
    sample = f"{int(row['event_count']):,} events"
    if devices is not None and not pd.isna(devices):
        sample += f" from {int(devices):,} devices"
    return (
        f"Worst: **{row['postal_code']}**, {row['out_of_service_share']:.1%} out of service "
        f"(95 % interval {row['out_of_service_ci']}), {signal} over {sample}."
    )


def grey_withheld(frame: pd.DataFrame) -> Any:
    """`frame` styled with the rows whose `note` says they are withheld in grey (a Styler)."""
    notes = frame["note"] if "note" in frame.columns else pd.Series("", index=frame.index)

    def row_style(row: pd.Series) -> list[str]:
        grey = bool(notes.loc[row.name])
        return ["color: #8a8a8a; background-color: #f0f0f0" if grey else ""] * len(row)

    return frame.style.apply(row_style, axis=1)


def map_view(frame: pd.DataFrame) -> tuple[float, float, float]:
    """Centre latitude, longitude and a zoom level showing every point."""
    frame = frame.dropna(subset=["latitude", "longitude"])  # withheld rows have no centroid
    if frame.empty:
        return 0.0, 0.0, 1.0
    lat_min, lat_max = frame["latitude"].min(), frame["latitude"].max()
    lon_min, lon_max = frame["longitude"].min(), frame["longitude"].max()
    extent = max(lat_max - lat_min, (lon_max - lon_min) * math.cos(math.radians(lat_min)), 1e-3)
    zoom = max(1.0, min(15.0, math.log2(360.0 / extent) - 0.9))
    return float((lat_min + lat_max) / 2), float((lon_min + lon_max) / 2), zoom


def pipeline_tiles(body: Mapping[str, Any]) -> list[Tile]:
    """Pipeline health tiles from `/v1/pipeline`."""
    lag = body.get("millis_behind_latest")
    freshness = body.get("event_freshness_s")
    batch_freshness = body.get("batch_freshness_s")
    processing = body.get("avg_processing_ms")
    return [
        _throughput(body),
        Tile("Batches", f"{body.get('batches', 0):,}", help="Micro-batches committed."),
        Tile("Records read", f"{body.get('rows_in', 0):,}"),
        Tile("Valid events", f"{body.get('valid_rows', 0):,}"),
        Tile("Quarantined", f"{body.get('quarantined_rows', 0):,}"),
        Tile("Duplicates removed", f"{body.get('duplicates_removed', 0):,}"),
        Tile("Late (dropped)", f"{body.get('late_dropped', 0):,}",
             "ok" if not body.get("late_dropped") else "warn",
             "Records dedup dropped as older than its watermark (0 in a healthy job)."),
        Tile("Consumer lag", f"{lag / 1000:.1f} s" if lag is not None else "–",
             help="MillisBehindLatest of the newest batch."),
        Tile("Newest event", f"{format_age(freshness)} ago" if freshness is not None else "–"),
        Tile("Newest batch",
             f"{format_age(batch_freshness)} ago" if batch_freshness is not None else "–"),
        Tile("Avg batch time", f"{processing:,.0f} ms" if processing is not None else "–"),
    ]  # fmt: skip


def _throughput(body: Mapping[str, Any]) -> Tile:
    """Valid rows per second between the first and the last batch of the range (the API's
    `throughput_events_per_s`): over the span that had batches, not the whole range, which
    a range longer than the data (or a stopped processor) would dilute."""
    rate = body.get("throughput_events_per_s")
    label = "Throughput (first to last batch)"
    if rate is None:
        return Tile(label, "–", "none", "Needs two batches in the range.")
    span = f"{_clock(body.get('throughput_from'))} to {_clock(body.get('throughput_to'))}"
    return Tile(
        label,
        f"{rate:,.1f} events/s",
        help=f"Valid rows per second between the first and the last batch in the range "
        f"({span}); over the whole range: {body.get('events_per_s', 0.0):,.2f} events/s.",
        raw=float(rate),
    )


def quarantine_reasons(body: Mapping[str, Any]) -> pd.DataFrame:
    """Quarantined records per reason over the range, with the rate of records read."""
    counts: Mapping[str, int] = body.get("quarantined_by_reason", {})
    rates: Mapping[str, float] = body.get("quarantine_rate_by_reason", {})
    frame = pd.DataFrame(
        [
            {"reason": reason, "records": int(count), "rate": float(rates.get(reason, 0.0))}
            for reason, count in counts.items()
        ],
        columns=["reason", "records", "rate"],
    )
    return frame.sort_values(["records", "reason"], ascending=[False, True]).reset_index(drop=True)


def csv_bytes(frame: pd.DataFrame, *, header: Sequence[str] = ()) -> bytes:
    """A table as UTF-8 CSV (timestamps in ISO-8601 UTC), after `header`'s lines as `# `
    comments: `pandas.read_csv(..., comment="#")` reads the table and skips them. A table with
    a `#` in any text is written with its text quoted, where the comment character is data."""
    quoting = csv.QUOTE_MINIMAL
    text_columns = frame.select_dtypes(include=["object", "string"])
    if any(text_columns[c].astype(str).str.contains("#", regex=False).any() for c in text_columns):
        quoting = csv.QUOTE_NONNUMERIC
    lines = "".join(f"# {line}\n" for line in header)
    text: str = frame.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%SZ", quoting=quoting)
    return (lines + text).encode("utf-8")


def _clock(text: str | None) -> str:
    moment = _time(text)
    return "–" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def meta_lines(body: Mapping[str, Any], *, request: str, received_at: dt.datetime) -> list[str]:
    """What an answer says about itself, one `key: value` line each, for a CSV's header: the
    request, when it arrived, the data's watermark and newest batch, and each query with its
    SQL hash and the partitions it read."""
    meta: Mapping[str, Any] = body.get("meta") or {}
    lines = [
        f"request: {request}",
        f"received_at: {received_at.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ}",
        f"watermark: {meta.get('watermark') or 'unknown'}",
        f"newest_batch_time: {meta.get('newest_batch_time') or 'unknown'}",
        f"cached: {str(bool(meta.get('cached'))).lower()}",
        f"stale: {str(bool(meta.get('stale'))).lower()}",
    ]
    for query in meta.get("queries") or []:
        partitions = " ".join(
            f"{p['table']}/{p['first']}..{p['last']} ({p['hours']} h)"
            for p in query.get("partitions", [])
        )
        lines.append(f"query: {query['name']} sql_sha256={query['sql_sha256']} {partitions}")
    return lines


def data_as_of(bodies: Sequence[Mapping[str, Any]]) -> str | None:
    """ "Data as of …" for a page from its answers' meta: the oldest watermark among them (the
    figures include every batch up to it), and the newest batch; None without an answer."""
    metas = [b["meta"] for b in bodies if isinstance(b.get("meta"), Mapping)]
    if not metas:
        return None
    watermarks = [t for t in (_time(m.get("watermark")) for m in metas) if t is not None]
    if not watermarks:
        return (
            "Data as of: unknown, no batch committed recently (the API found none in its "
            "lookback: is the stream processor running?)."
        )
    batches = [t for t in (_time(m.get("newest_batch_time")) for m in metas) if t is not None]
    newest_batch = f"; newest batch {max(batches):%H:%M:%S} UTC" if batches else ""
    return (
        f"Data as of {min(watermarks):%Y-%m-%d %H:%M:%S} UTC: the newest event time processed "
        f"(watermark){newest_batch}. Late events dated before it may still fold in."
    )


@dataclass(frozen=True)
class BandDefinition:
    """The quality bands the API applies (from `/v1/meta/bands`), or libs/common's defaults
    when the API could not say (`from_api` False)."""

    bands: Mapping[str, QualityBands]
    version: int
    overridden: bool
    from_api: bool

    @property
    def map_bands(self) -> QualityBands:
        """The bands the map colours with (the LTE ones)."""
        return self.bands.get(MAP_NETWORK, MAP_BANDS)


def band_definition(body: Mapping[str, Any] | None) -> BandDefinition:
    """`/v1/meta/bands` as QualityBands per network type (libs/common's defaults without it)."""
    body = body or {}
    networks = body.get("networks")
    if not networks:
        return BandDefinition(DEFAULT_BANDS, BANDS_VERSION, overridden=False, from_api=False)
    bands = {
        network: QualityBands(
            str(n["measure"]),
            excellent_min=int(n["excellent_min"]),
            good_min=int(n["good_min"]),
            fair_min=int(n["fair_min"]),
            source=str(n["source"]),
            hole_max_dbm=int(n["hole_max_dbm"]),
            hole_source=str(n["hole_source"]),
        )
        for network, n in networks.items()
    }
    return BandDefinition(
        bands, int(body.get("version", 0)), bool(body.get("overridden")), from_api=True
    )


def band_ranges(bands: QualityBands) -> dict[str, str]:
    """Each band's dBm range in words, best first."""
    return {
        "excellent": f"≥ {bands.excellent_min} dBm",
        "good": f"{bands.good_min} to {bands.excellent_min - 1} dBm",
        "fair": f"{bands.fair_min} to {bands.good_min - 1} dBm",
        "poor": f"< {bands.fair_min} dBm",
    }


def definition_note(definition: BandDefinition) -> str:
    """Where the bands shown come from, in words."""
    origin = (
        f"the metrics API's band definition v{definition.version}"
        if definition.from_api
        else f"libs/common's default bands v{definition.version} (the API's definition is "
        "unavailable)"
    )
    return origin + (", overridden by settings" if definition.overridden else "")


def bands_table(definition: BandDefinition) -> pd.DataFrame:
    """Per network type: measure, band lower bounds, hole threshold and the sources."""
    return pd.DataFrame(
        [
            {
                "network_type": network,
                "measure": b.measure,
                "excellent_min": b.excellent_min,
                "good_min": b.good_min,
                "fair_min": b.fair_min,
                "hole_max_dbm": b.hole_max_dbm,
                "source": b.source,
                "hole_source": b.hole_source,
            }
            for network, b in sorted(definition.bands.items())
        ],
        columns=[
            "network_type", "measure", "excellent_min", "good_min", "fair_min",
            "hole_max_dbm", "source", "hole_source",
        ],
    )  # fmt: skip


def tiles_table(items: Sequence[Tile]) -> pd.DataFrame:
    """Tiles as a table (label, shown value, raw number) for the CSV download."""
    return pd.DataFrame(
        [{"figure": t.label, "value": t.value, "raw": t.raw} for t in items],
        columns=["figure", "value", "raw"],
    )


# -- the alert evaluator's view (#25: /v1/alerts/active, /history, /rules) -------------------

ALERT_STATES = ("firing", "pending")
# How a measure reads in the alerts table (the API's measure names → text).
_MEASURE_FORMATS: dict[str, str] = {
    "events": "{:.0f} events",
    "out_of_service_share": "{:.1%} out of service",
    "recent_avg_signal_dbm": "recent {:.1f} dBm",
    "baseline_avg_signal_dbm": "baseline {:.1f} dBm",
    "baseline_events": "{:.0f} baseline events",
    "signal_drop_db": "drop {:.1f} dB",
    "weak": "{:.0f} weak",
    "weak_share": "{:.1%} weak",
    "devices": "{:.0f} devices",
}
_LINK_RANGES = (("1h", dt.timedelta(hours=1)), ("6h", dt.timedelta(hours=6)))
_LINK_MARGIN = dt.timedelta(minutes=15)


def area_link(area_kind: str, area: str, since: dt.datetime | None, now: dt.datetime) -> str:
    """The Coverage page filtered to the area (relative, as the sidebar writes it): the
    shortest preset range holding the episode plus 15 min (as the delivery's generatorURL)."""
    span = (now - since if since else dt.timedelta()) + _LINK_MARGIN
    range_key = next((key for key, width in _LINK_RANGES if span <= width), "24h")
    if area_kind != "postal_code":  # the dashboard filters postal codes only
        return f"coverage?range={range_key}"
    return "coverage?" + urlencode({"pc": area, "range": range_key})


def describe_measures(measures: Mapping[str, float]) -> str:
    """A window's measures in words, in the API's order (unknown names as name=value)."""
    parts = []
    for name, value in measures.items():
        if value is None:
            continue
        template = _MEASURE_FORMATS.get(name)
        parts.append(template.format(value) if template else f"{name}={value:g}")
    return ", ".join(parts)


def active_alerts_table(body: Mapping[str, Any], now: dt.datetime) -> pd.DataFrame:
    """`/v1/alerts/active` as a table, in the API's order (firing first, oldest first)."""
    rows = []
    for alert in body.get("alerts", []):
        since = _time(alert["since"])
        rows.append(
            {
                "state": alert["state"],
                "rule": alert["rule"],
                "area": alert["area"],
                "since": since,
                "sample_size": alert["sample_size"],
                "measures": describe_measures(alert.get("measures", {})),
                "window_end": _time(alert.get("window_end")),
                "map": area_link(alert["area_kind"], alert["area"], since, now),
                "alert_id": alert["alert_id"],
            }
        )
    columns = [
        "state", "rule", "area", "since", "sample_size", "measures", "window_end", "map",
        "alert_id",
    ]  # fmt: skip
    return _frame(rows, columns)


@dataclass(frozen=True)
class EvaluatorStatus:
    """What the page says about the evaluator: a level (ok / warn / error) and a sentence."""

    level: str
    message: str


def evaluator_status(body: Mapping[str, Any] | None, *, never_evaluated: bool) -> EvaluatorStatus:
    """The evaluator's state in words: never run, stale, or when its newest cycle ran."""
    if never_evaluated:
        return EvaluatorStatus(
            "error",
            "**The alert evaluator has never run**: the lake holds no alert cycle, so nothing "
            "here says whether any area is in trouble. Start it with "
            "`signal-api alerts evaluate --every 60`.",
        )
    if not body:
        return EvaluatorStatus("error", "**The evaluator's alert state is unavailable.**")
    evaluated = _time(body.get("evaluated_at"))
    age = format_age(float(body.get("age_s", 0.0)))
    when = f"{evaluated:%Y-%m-%d %H:%M:%S} UTC" if evaluated else "an unknown time"
    judged = f"{body.get('areas_evaluated', 0)} rule × area pairs judged"
    if body.get("stale"):
        return EvaluatorStatus(
            "warn",
            f"**The alert evaluator is stale**: its newest cycle ran at {when} ({age} ago; "
            f"{judged}). What follows may no longer be true; is `signal-api alerts evaluate` "
            "running?",
        )
    return EvaluatorStatus("ok", f"Evaluator's newest cycle: {when} ({age} ago; {judged}).")


def alert_timeline(body: Mapping[str, Any], end: dt.datetime) -> pd.DataFrame:
    """`/v1/alerts/history` as segments per alert: each pending or firing state from the
    transition that entered it to the next one (or `end`); corrections marked."""
    by_alert: dict[str, list[Mapping[str, Any]]] = {}
    for transition in body.get("transitions", []):
        by_alert.setdefault(transition["alert_id"], []).append(transition)
    rows = []
    for alert_id, transitions in by_alert.items():
        ordered = sorted(transitions, key=lambda t: (t["at"], t["window_end"]))
        for i, transition in enumerate(ordered):
            if transition["state"] not in ALERT_STATES:
                continue
            start = _time(transition["at"])
            stop = _time(ordered[i + 1]["at"]) if i + 1 < len(ordered) else end
            rows.append(
                {
                    "area": f"{transition['area']} · {transition['rule']}",
                    "state": transition["state"],
                    "start": start,
                    "end": stop,
                    "since": _time(transition["since"]),
                    "correction": bool(transition.get("correction")),
                    "summary": transition.get("summary", ""),
                    "alert_id": alert_id,
                }
            )
    columns = ["area", "state", "start", "end", "since", "correction", "summary", "alert_id"]
    frame = _frame(rows, columns)
    return frame.sort_values(["area", "start"]).reset_index(drop=True)


def transitions_table(body: Mapping[str, Any]) -> pd.DataFrame:
    """Every transition of `/v1/alerts/history`, newest first."""
    rows = [
        {
            "at": _time(t["at"]),
            "area": t["area"],
            "rule": t["rule"],
            "change": f"{t['previous']} → {t['state']}",
            "since": _time(t["since"]),
            "correction": bool(t.get("correction")),
            "summary": t.get("summary", ""),
        }
        for t in body.get("transitions", [])
    ]
    frame = _frame(rows, ["at", "area", "rule", "change", "since", "correction", "summary"])
    return frame.sort_values("at", ascending=False, kind="stable").reset_index(drop=True)


def _threshold_text(thresholds: Mapping[str, Any]) -> str:
    parts = []
    for name, value in thresholds.items():
        if isinstance(value, Mapping):
            inner = ", ".join(f"{k} {v:g}" for k, v in value.items())
            parts.append(f"{name}: {inner}")
        else:
            parts.append(f"{name} {value:g}")
    return "; ".join(parts)


def alert_rules_table(body: Mapping[str, Any]) -> pd.DataFrame:
    """`/v1/alerts/rules`' rules: what breaches, thresholds, windows to fire, sources."""
    rows = []
    for rule in body.get("rules", []):
        source = rule["source"]
        if rule.get("hole_sources"):
            source += " · hole thresholds: " + "; ".join(
                f"{rat}: {text}" for rat, text in rule["hole_sources"].items()
            )
        rows.append(
            {
                "rule": rule["rule"],
                "description": rule["description"],
                "thresholds": _threshold_text(rule.get("thresholds", {})),
                "fire_after_windows": rule["fire_after_windows"],
                "source": source,
            }
        )
    return _frame(rows, ["rule", "description", "thresholds", "fire_after_windows", "source"])


def alert_rules_note(body: Mapping[str, Any]) -> str:
    """The lifecycle's shared settings in one line."""
    if not body:
        return "The rule definitions are unavailable."
    return (
        f"{body['window_minutes']}-minute windows, judged {body['settle_s']} s after they end; "
        f"an alert fires after its rule's windows in a row and resolves after "
        f"{body['resolve_after_windows']} clear windows in a row; late data re-judged for "
        f"{body['horizon_minutes']} min (as corrections); areas: "
        + ", ".join(body.get("area_kinds", []))
        + "."
    )
