"""AWS Lambda entry point: register the partition of each object an S3 ObjectCreated event names.

Deploy with handler `signal_catalog.lambda_handler.handler`, triggered by an S3 event notification
(ObjectCreated:*, suffix `.parquet`) on the lake bucket or by an EventBridge rule on its "Object
Created" events (what deploy/aws does); settings come from SIGNAL_CATALOG_* env.
"""

from __future__ import annotations

import logging
from typing import Any

from signal_catalog.operations.sync import handle_s3_event
from signal_catalog.settings import PartitionMode, get_settings
from signal_catalog.wiring import catalog_from
from signal_common.lake import TABLES_BY_NAME
from signal_common.logs import configure_logging

log = logging.getLogger(__name__)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Lambda handler: register new partitions; returns what was registered and ignored."""
    settings = get_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    # Tables in projection mode need no partitions: Athena computes them.
    tables = {
        name: table
        for name, table in TABLES_BY_NAME.items()
        if settings.mode_of(name) is not PartitionMode.PROJECTION
    }
    result = handle_s3_event(
        event, catalog_from(settings), lake_root=settings.lake_root, tables=tables
    )
    log.info(
        "lambda done",
        extra={
            "request_id": getattr(context, "aws_request_id", None),
            "partitions_created": result["partitions_created"],
        },
    )
    return result
