"""Fault injection for chaos runs: a Kinesis client wrapper that fails chosen PutRecords entries.

Entry i of a call fails, with ProvisionedThroughputExceededException, when a hash of (seed,
data, partition key, how many times this record was seen) falls under `entry_rate`, for the
record's first `rounds` sends. The others really go to Kinesis, and the response is reassembled
in request order, as Kinesis answers a partially failed call. `call_rate` fails whole calls.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

THROTTLED = "ProvisionedThroughputExceededException"


def _unit(*parts: object) -> float:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass
class FaultLog:
    """What the wrapper did: every call's entries, which failed and which were accepted."""

    calls: list[list[tuple[bytes, str]]] = field(default_factory=list)
    failed: list[list[int]] = field(default_factory=list)
    accepted: Counter[tuple[bytes, str]] = field(default_factory=Counter)
    whole_call_failures: int = 0


class FaultInjectingKinesis:
    """Wraps a boto3 Kinesis client; only `put_records` is altered, the rest is passed through."""

    def __init__(
        self,
        client: Any,
        *,
        entry_rate: float,
        rounds: int = 3,
        call_rate: float = 0.0,
        seed: int = 0,
    ) -> None:
        self._client = client
        self.entry_rate = entry_rate
        self.rounds = rounds
        self.call_rate = call_rate
        self.seed = seed
        self.log = FaultLog()
        self._seen: Counter[tuple[bytes, str]] = Counter()
        self._calls = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def put_records(self, *, StreamName: str, Records: list[dict[str, Any]], **kw: Any) -> Any:  # noqa: N803
        """PutRecords with injected per-entry and whole-call throttling."""
        keys = [(bytes(r["Data"]), str(r["PartitionKey"])) for r in Records]
        with self._lock:
            self._calls += 1
            call_number = self._calls
            self.log.calls.append(keys)
            if _unit(self.seed, "call", call_number) < self.call_rate:
                self.log.failed.append(list(range(len(keys))))
                self.log.whole_call_failures += 1
                raise ClientError(
                    {
                        "Error": {"Code": THROTTLED, "Message": "injected: call throttled"},
                        "ResponseMetadata": {"HTTPStatusCode": 400},
                    },
                    "PutRecords",
                )
            failing = []
            for i, key in enumerate(keys):
                self._seen[key] += 1
                seen = self._seen[key]
                if seen <= self.rounds and _unit(self.seed, key, seen) < self.entry_rate:
                    failing.append(i)
            self.log.failed.append(failing)
        failing_set = set(failing)
        passing = [r for i, r in enumerate(Records) if i not in failing_set]
        real: list[dict[str, Any]] = []
        if passing:
            response = self._client.put_records(StreamName=StreamName, Records=passing, **kw)
            real = list(response["Records"])
        results: list[dict[str, Any]] = []
        real_iter = iter(real)
        for i, key in enumerate(keys):
            if i in failing_set:
                results.append({"ErrorCode": THROTTLED, "ErrorMessage": "injected: throttled"})
                continue
            result = next(real_iter)
            if not result.get("ErrorCode"):
                with self._lock:
                    self.log.accepted[key] += 1
            results.append(result)
        failed_count = sum(1 for r in results if r.get("ErrorCode"))
        return {"FailedRecordCount": failed_count, "Records": results}
