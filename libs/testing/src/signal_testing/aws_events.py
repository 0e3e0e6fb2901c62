"""AWS event payloads as AWS delivers them, for tests that drive handlers with real shapes."""

from __future__ import annotations

from typing import Any


def s3_object_created(
    bucket: str, key: str, *, account: str, region: str, time: str
) -> dict[str, Any]:
    """EventBridge's S3 "Object Created" event for a PutObject of `key` (Amazon S3 User Guide,
    "Using EventBridge": https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html)."""
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": account,
        "time": time,
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 1024, "sequencer": "00617F08299329D189"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": account,
            "reason": "PutObject",
        },
    }
