"""De-aggregation of records the Kinesis Producer Library packed together (KPL aggregation)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

_KPL_MAGIC = b"\xf3\x89\x9a\xc2"


def user_records(record: dict[str, Any], data: bytes) -> Iterator[tuple[bytes, str, int]]:
    """(data, partition key, sub-sequence number) of a record, de-aggregating KPL records."""
    if not data.startswith(_KPL_MAGIC):
        yield data, record["PartitionKey"], 0
        return
    import base64

    from aws_kinesis_agg.deaggregator import iter_deaggregate_records

    boto3_form = {**record, "Data": data}
    for index, user in enumerate(iter_deaggregate_records(boto3_form, data_format="Boto3")):
        k = user["kinesis"]
        payload = k["data"]
        if k.get("aggregated"):
            payload = base64.b64decode(payload)
        yield payload, k["partitionKey"], int(k.get("subSequenceNumber", index))
