"""The query parameters routes share, as annotated types (`from_: FromParam = None`)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Query

from signal_api.core.params import Granularity
from signal_common.schema import NetworkType

FromParam = Annotated[
    dt.datetime | None,
    Query(alias="from", description="Range start, ISO-8601 (default: one hour before `to`)."),
]
ToParam = Annotated[
    dt.datetime | None,
    Query(description="Range end (exclusive), ISO-8601 (default: end of the current minute)."),
]
AtParam = Annotated[
    dt.datetime | None, Query(description="Evaluate as of this time (default: now).")
]
GranularityParam = Annotated[Granularity, Query(description="Bucket width: 1m, 5m, 15m, 1h or 1d.")]
OperatorParam = Annotated[list[str] | None, Query(description="Operator (repeatable).")]
NetworkParam = Annotated[list[NetworkType] | None, Query(description="Network type (repeatable).")]
PostalParam = Annotated[list[str] | None, Query(description="Postal code (repeatable).")]
