"""The quality band of many generated events at once, from signal_common's thresholds."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from signal_common.quality import DEFAULT_BANDS


def band_indices(
    network_idx: np.ndarray, signal_dbm: np.ndarray, networks: Iterable[str]
) -> np.ndarray:
    """Per event, the index in BAND_NAMES of its band (0 excellent .. 3 poor) under
    DEFAULT_BANDS; `network_idx` indexes `networks`. Vectorized QualityBands.band."""
    out = np.full(signal_dbm.shape, 3, dtype=np.int8)
    for i, name in enumerate(networks):
        bands, sel = DEFAULT_BANDS[str(name)], network_idx == i
        s = signal_dbm[sel]
        out[sel] = np.select(
            [s >= bands.excellent_min, s >= bands.good_min, s >= bands.fair_min],
            [0, 1, 2],
            default=3,
        )
    return out
