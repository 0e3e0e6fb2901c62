"""H3 hexagon cells of events (Uber's H3, the `h3` package, v4): pure, per partition.

Each event's cell at each resolution comes from its latitude and longitude through
`h3.latlng_to_cell`, one C call per event and resolution (about 1 µs). Not from the finer
cell's parent: H3 is not exactly nested, so the parent of a point's resolution-9 cell is not
always the resolution-7 cell that holds the point (about 7 % of random points at resolution 5;
tests/test_hexagons.py shows it), and a reader placing an event with `latlng_to_cell` must find
it where the lake counted it. Cells are H3's lowercase hex strings, the form pydeck's
H3HexagonLayer and most tools read; each distinct cell is formatted once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
from h3.api import basic_int


def _as_strings(cells: np.ndarray) -> pa.Array:
    """uint64 H3 indexes as lowercase hex strings (each distinct cell formatted once)."""
    distinct, index = np.unique(cells, return_inverse=True)
    names = pa.array([format(int(c), "x") for c in distinct], pa.string())
    return names.take(pa.array(index.astype(np.int64)))


def cells_at(
    latitude: pa.Array | pa.ChunkedArray,
    longitude: pa.Array | pa.ChunkedArray,
    resolutions: Sequence[int],
) -> dict[int, pa.Array]:
    """Per resolution, the H3 cell (hex string) of each (latitude, longitude) in degrees; the
    coordinates must be non-null (the event schema requires them)."""
    lat = np.asarray(latitude.to_numpy(zero_copy_only=False), dtype=np.float64).tolist()
    lng = np.asarray(longitude.to_numpy(zero_copy_only=False), dtype=np.float64).tolist()
    to_cell = basic_int.latlng_to_cell
    result = {}
    for res in resolutions:
        cells = np.fromiter(
            (to_cell(a, b, res) for a, b in zip(lat, lng, strict=True)),
            dtype=np.uint64,
            count=len(lat),
        )
        result[res] = _as_strings(cells)
    return result
