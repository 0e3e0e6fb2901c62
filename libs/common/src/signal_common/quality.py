"""Signal-quality bands per network type, as data with their sources; overridable by settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from signal_common.schema import NetworkType

BAND_NAMES: tuple[str, ...] = ("excellent", "good", "fair", "poor")
# The version of the default definition below: bump it when a default threshold, measure or
# source changes, so a reader of `band_definition` can tell two definitions apart.
# 1: bands per RAT; 2: hole thresholds per RAT (hole_max_dbm, hole_source).
BANDS_VERSION = 2
# The fields `bands_with_overrides` reads per network type.
OVERRIDABLE_FIELDS: tuple[str, ...] = ("excellent_min", "good_min", "fair_min", "hole_max_dbm")


@dataclass(frozen=True)
class QualityBands:
    """Lower bounds (dBm, inclusive) of the excellent, good and fair bands; below fair is poor.

    ``hole_max_dbm`` is the coverage-hole threshold: a sample at or below it is a weak sample
    (drive-test practice counts RSRP <= -110 dBm on LTE); ``hole_source`` says where it is from.
    """

    measure: str
    excellent_min: int
    good_min: int
    fair_min: int
    source: str
    hole_max_dbm: int = -110
    hole_source: str = "drive-test practice: weak sample at RSRP <= -110 dBm"

    def is_weak(self, signal_dbm: float) -> bool:
        """Whether one measurement counts toward a coverage hole."""
        return signal_dbm <= self.hole_max_dbm

    @property
    def overridden(self) -> bool:
        """Whether settings changed any threshold of this network type's defaults."""
        return self.source.endswith(_OVERRIDDEN) or self.hole_source.endswith(_OVERRIDDEN)

    def band(self, signal_dbm: float) -> str:
        """The band name of one measurement."""
        if signal_dbm >= self.excellent_min:
            return "excellent"
        if signal_dbm >= self.good_min:
            return "good"
        if signal_dbm >= self.fair_min:
            return "fair"
        return "poor"


_OVERRIDDEN = " (overridden by settings)"

DEFAULT_BANDS: Mapping[str, QualityBands] = {
    NetworkType.G2.value: QualityBands(
        "RSSI",
        excellent_min=-70,
        good_min=-85,
        fair_min=-100,
        source="GSM RSSI ranges as in Android SignalStrength levels and operator field guides",
        hole_max_dbm=-100,
        hole_source="GSM coverage edge near -100 dBm RSSI in operator field guides",
    ),
    NetworkType.G3.value: QualityBands(
        "RSCP",
        excellent_min=-70,
        good_min=-85,
        fair_min=-100,
        source="UMTS RSCP field-engineering ranges: 0..-70 / -71..-85 / -86..-100 / worse",
        hole_max_dbm=-105,
        hole_source="UMTS drive-test practice: weak sample at RSCP <= -105 dBm",
    ),
    NetworkType.G4.value: QualityBands(
        "RSRP",
        excellent_min=-80,
        good_min=-90,
        fair_min=-100,
        source="LTE RSRP ranges: >= -80 excellent, -80..-90 good, -90..-100 fair, < -100 poor",
        hole_max_dbm=-110,
        hole_source="LTE drive-test practice: weak sample at RSRP <= -110 dBm",
    ),
    NetworkType.G5.value: QualityBands(
        "SS-RSRP",
        excellent_min=-85,
        good_min=-105,
        fair_min=-120,
        source="5G NR SS-RSRP ranges: > -85 / -86..-105 / -106..-120 / worse",
        hole_max_dbm=-110,
        hole_source="NR coverage practice: weak sample at SS-RSRP <= -110 dBm, as on LTE",
    ),
}


def bands_with_overrides(
    overrides: Mapping[str, Mapping[str, int]] | None = None,
) -> dict[str, QualityBands]:
    """DEFAULT_BANDS with per-network overrides, e.g. {"4G": {"excellent_min": -75}}.

    ``hole_max_dbm`` may be overridden the same way.
    """
    result = dict(DEFAULT_BANDS)
    for network, values in (overrides or {}).items():
        if network not in result:
            raise ValueError(
                f"unknown network type {network!r} in quality-band overrides; "
                f"expected one of {', '.join(result)}"
            )
        base = result[network]
        merged = QualityBands(
            base.measure,
            excellent_min=int(values.get("excellent_min", base.excellent_min)),
            good_min=int(values.get("good_min", base.good_min)),
            fair_min=int(values.get("fair_min", base.fair_min)),
            source=f"{base.source}{_OVERRIDDEN}",
            hole_max_dbm=int(values.get("hole_max_dbm", base.hole_max_dbm)),
            hole_source=(
                f"{base.hole_source}{_OVERRIDDEN}" if "hole_max_dbm" in values else base.hole_source
            ),
        )
        if not merged.excellent_min > merged.good_min > merged.fair_min:
            raise ValueError(
                f"quality bands for {network} must satisfy excellent_min > good_min > fair_min"
            )
        if not -150 <= merged.hole_max_dbm <= -20:
            raise ValueError(f"hole_max_dbm for {network} must lie in [-150, -20] dBm")
        result[network] = merged
    return result


def band_definition(bands: Mapping[str, QualityBands] | None = None) -> dict[str, Any]:
    """The whole definition as plain JSON: version, band names (best first) and, per network
    type, its measure, band lower bounds, hole threshold, their sources and whether settings
    overrode them (`bands`: the result of `bands_with_overrides`; default: DEFAULT_BANDS)."""
    chosen = DEFAULT_BANDS if bands is None else bands
    networks = {
        network: {
            "measure": b.measure,
            "unit": "dBm",
            "excellent_min": b.excellent_min,
            "good_min": b.good_min,
            "fair_min": b.fair_min,
            "source": b.source,
            "hole_max_dbm": b.hole_max_dbm,
            "hole_source": b.hole_source,
            "overridden": b.overridden,
        }
        for network, b in chosen.items()
    }
    return {
        "version": BANDS_VERSION,
        "overridden": any(n["overridden"] for n in networks.values()),
        "band_names": list(BAND_NAMES),
        "rule": (
            "a sample is in the first band whose lower bound (inclusive) it reaches: "
            "excellent >= excellent_min, good >= good_min, fair >= fair_min, else poor; "
            "a weak (coverage-hole) sample is <= hole_max_dbm"
        ),
        "networks": networks,
    }
