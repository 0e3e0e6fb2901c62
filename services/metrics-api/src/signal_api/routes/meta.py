"""/v1/meta/*: what the API's figures mean (the quality-band definition it applies)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from signal_api.core.models import BandsResponse
from signal_api.deps import Context, client
from signal_api.handlers import ERROR_RESPONSES
from signal_common.quality import band_definition

router = APIRouter(prefix="/meta", responses=ERROR_RESPONSES, dependencies=[Depends(client)])


@router.get("/bands", response_model=BandsResponse)
async def bands(ctx: Context) -> dict[str, Any]:
    """The signal-quality bands and coverage-hole thresholds per network type, with sources."""
    return band_definition(ctx.bands)
