"""H3 cells of events: h3's own cell of each point at every resolution asked, over the whole
globe; and why not the finer cell's parent (H3 is not exactly nested)."""

from __future__ import annotations

import h3
import numpy as np
import pyarrow as pa

from signal_processor.core import hexagons


def test_cells_equal_h3s_own_at_every_resolution_asked() -> None:
    rng = np.random.default_rng(7)
    lat = rng.uniform(-89.9, 89.9, 5_000)
    lng = rng.uniform(-179.9, 179.9, 5_000)
    cells = hexagons.cells_at(pa.array(lat), pa.array(lng), (5, 7, 9))
    assert set(cells) == {5, 7, 9}
    for res, got in cells.items():
        want = [h3.latlng_to_cell(a, b, res) for a, b in zip(lat, lng, strict=True)]
        assert got.to_pylist() == want, res


def test_the_parent_of_a_points_fine_cell_is_not_always_its_coarse_cell() -> None:
    """What the module's docstring states: deriving resolution 7 from resolution 9 by
    cell_to_parent would file some events under another cell than latlng_to_cell gives."""
    rng = np.random.default_rng(7)
    points = zip(rng.uniform(-80, 80, 5_000), rng.uniform(-170, 170, 5_000), strict=True)
    differ = sum(
        h3.cell_to_parent(h3.latlng_to_cell(a, b, 9), 7) != h3.latlng_to_cell(a, b, 7)
        for a, b in points
    )
    assert differ > 0


def test_no_resolution_no_cells() -> None:
    assert hexagons.cells_at(pa.array([1.0]), pa.array([2.0]), ()) == {}
