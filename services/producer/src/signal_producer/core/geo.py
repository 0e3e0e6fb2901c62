"""The synthetic region: postal codes with centroids and population weights (package data)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True, slots=True)
class PostalArea:
    """One postal code of the synthetic region."""

    code: str
    latitude: float
    longitude: float
    weight: float


@cache
def postal_areas() -> tuple[PostalArea, ...]:
    """The region's postal codes, read from the packaged `postal_codes.csv`."""
    text = resources.files("signal_producer.data").joinpath("postal_codes.csv").read_text("utf-8")
    return tuple(
        PostalArea(
            code=row["postal_code"],
            latitude=float(row["latitude"]),
            longitude=float(row["longitude"]),
            weight=float(row["weight"]),
        )
        for row in csv.DictReader(io.StringIO(text))
    )


def neighbours(areas: tuple[PostalArea, ...], *, count: int = 4) -> tuple[tuple[int, ...], ...]:
    """For each area, the indexes of its `count` nearest other areas (by centroid)."""
    result = []
    for i, a in enumerate(areas):
        by_distance = sorted(
            (j for j in range(len(areas)) if j != i),
            key=lambda j: (
                (areas[j].latitude - a.latitude) ** 2 + (areas[j].longitude - a.longitude) ** 2
            ),
        )
        result.append(tuple(by_distance[:count]))
    return tuple(result)
