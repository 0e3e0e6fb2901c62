"""The Kinesis writer: PutRecords batches from concurrent workers, per-entry retries, dead letters.

The main thread reads records, paces them, rejects what can never fit and fills batches; worker
threads send batches. A PutRecords response lists per-entry results in request order; only the
failed entries are sent again (after exponential backoff with jitter), so no accepted entry is
ever re-sent. Entries still failing after `max_attempts`, and whole calls failing with an error
that retrying cannot fix, go to the dead-letter file with the error.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from signal_common.aws import backoff_s, error_code, error_message
from signal_producer.adapters.files import DeadLetterSink, GroundTruthSink, utc_now_iso
from signal_producer.core.batching import BatchBuilder, Entry, make_entry, rejection_reason
from signal_producer.core.pacing import Pacer
from signal_producer.core.records import GeneratedRecord

log = logging.getLogger(__name__)

# Whole-call errors worth retrying: throttling and the service's own transient failures.
RETRYABLE_CALL_ERRORS = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "LimitExceededException",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
        "KMSThrottlingException",
    }
)


class ProducerError(RuntimeError):
    """The producer had to stop: an error that no retry can fix (e.g. the stream is missing)."""


@dataclass(frozen=True)
class WriterConfig:
    """How the writer sends: stream, partitioning, retries, rate and concurrency."""

    stream_name: str
    max_attempts: int = 8
    base_backoff_s: float = 0.05
    max_backoff_s: float = 2.0
    concurrency: int = 8
    target_rps: float = 0.0  # 0: as fast as possible
    speedup: float = 0.0  # replay cadence factor; 0: ignore record offsets
    linger_s: float = 0.2  # longest a record waits for its batch to fill
    max_batch_records: int = 500
    max_batch_bytes: int = 5 * 1024 * 1024
    jitter_seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.concurrency < 1:
            raise ValueError("max_attempts and concurrency must be >= 1")
        if not 1 <= self.max_batch_records <= 500:
            raise ValueError("max_batch_records must be 1..500")


@dataclass
class Summary:
    """What happened in a run."""

    read: int = 0  # records taken from the source
    sent: int = 0  # accepted by Kinesis
    failed: int = 0  # entry failures seen (one entry failing twice counts twice)
    retried: int = 0  # entries sent again after a failure
    dead_lettered: int = 0  # in the dead-letter file (rejected + given up)
    rejected: int = 0  # could never fit in Kinesis; dead-lettered without sending
    calls: int = 0  # PutRecords calls made
    elapsed_s: float = 0.0
    records_per_s: float = 0.0
    interrupted: bool = False
    fatal_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready values."""
        return asdict(self)


def backoff_seconds(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Delay before re-sending after failed attempt `attempt` (1-based): equal jitter, so a
    retry never comes sooner than half the exponential ceiling."""
    return backoff_s(attempt, base_s=base, cap_s=cap, rng=rng, jitter="equal")


@dataclass
class _State:
    summary: Summary = field(default_factory=Summary)
    lock: threading.Lock = field(default_factory=threading.Lock)
    fatal: threading.Event = field(default_factory=threading.Event)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self.summary, name, getattr(self.summary, name) + value)


class KinesisWriter:
    """Sends records to one stream; `run` returns a Summary when the source is exhausted."""

    def __init__(
        self,
        client: Any,
        config: WriterConfig,
        *,
        dead_letter: DeadLetterSink,
        ground_truth: GroundTruthSink | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.config = config
        self.dead_letter = dead_letter
        self.ground_truth = ground_truth
        self._sleep = sleep
        self._rng = random.Random(config.jitter_seed)
        self._state = _State()

    def snapshot(self) -> Summary:
        """A copy of the running totals (for progress display)."""
        with self._state.lock:
            return Summary(**asdict(self._state.summary))

    def run(
        self,
        records: Iterable[GeneratedRecord],
        *,
        stop: threading.Event | None = None,
        on_progress: Callable[[Summary], None] | None = None,
        progress_every_s: float = 0.1,
    ) -> Summary:
        """Send every record (until `stop` is set); flushes in-flight batches before returning."""
        stop = stop or threading.Event()
        cfg = self.config
        batches: queue.Queue[list[Entry] | None] = queue.Queue(maxsize=cfg.concurrency * 2)
        workers = [
            threading.Thread(target=self._worker, args=(batches,), name=f"kinesis-{i}", daemon=True)
            for i in range(cfg.concurrency)
        ]
        for worker in workers:
            worker.start()
        builder = BatchBuilder(max_records=cfg.max_batch_records, max_bytes=cfg.max_batch_bytes)
        started = time.monotonic()
        pacer = Pacer(start=started, target_rps=cfg.target_rps, speedup=cfg.speedup)
        batch_opened = started
        last_progress = started
        read = 0  # records read since the totals were last updated (saves a lock per record)

        def submit(batch: list[Entry]) -> None:
            if batch:
                batches.put(batch)

        try:
            for record in records:
                if stop.is_set() or self._state.fatal.is_set():
                    break
                now = time.monotonic()
                due = pacer.due(now=now, offset_s=record.send_offset_s)
                while due > now and not stop.is_set():
                    # wait for the slot, but never let a started batch wait past its linger
                    if len(builder) and now - batch_opened >= cfg.linger_s:
                        submit(builder.take())
                    wait = due - now
                    if len(builder):
                        wait = min(wait, max(0.001, batch_opened + cfg.linger_s - now))
                    self._sleep(min(wait, 0.25))
                    now = time.monotonic()
                if stop.is_set():
                    break
                read += 1
                entry = make_entry(record)
                problem = rejection_reason(entry)
                if problem is not None:
                    log.warning(
                        "record rejected before sending",
                        extra={"stream": cfg.stream_name, "key": entry.key, "error": problem},
                    )
                    self.dead_letter.write(
                        [entry], error_code="RecordTooLarge", error_message=problem
                    )
                    self._state.add(rejected=1, dead_lettered=1)
                    continue
                if not len(builder):
                    batch_opened = now
                full = builder.add(entry)
                if full is not None:
                    submit(full)
                    batch_opened = now
                if len(builder) and now - batch_opened >= cfg.linger_s:
                    submit(builder.take())
                if now - last_progress >= progress_every_s:
                    last_progress = now
                    self._state.add(read=read)
                    read = 0
                    if on_progress is not None:
                        on_progress(self.snapshot())
        except KeyboardInterrupt:
            stop.set()
        finally:
            self._state.add(read=read)
            # flush: the open batch and everything queued is sent (with its retries)
            if self._state.fatal.is_set():
                self._dead_letter_unsent(builder.take(), batches)
            else:
                submit(builder.take())
            for _ in workers:
                batches.put(None)
            for worker in workers:
                worker.join()
            self._state.summary.interrupted = stop.is_set()
            elapsed = time.monotonic() - started
            with self._state.lock:
                summary = self._state.summary
                summary.elapsed_s = round(elapsed, 3)
                summary.records_per_s = round(summary.sent / elapsed, 1) if elapsed > 0 else 0.0
            if on_progress is not None:
                on_progress(self.snapshot())
        return self.snapshot()

    def _dead_letter_unsent(
        self, open_batch: list[Entry], batches: queue.Queue[list[Entry] | None]
    ) -> None:
        reason = self._state.summary.fatal_error or "producer stopped"
        unsent = list(open_batch)
        while True:
            try:
                batch = batches.get_nowait()
            except queue.Empty:
                break
            if batch:
                unsent.extend(batch)
        self.dead_letter.write(unsent, error_code="NotSent", error_message=reason)
        self._state.add(dead_lettered=len(unsent))

    def _worker(self, batches: queue.Queue[list[Entry] | None]) -> None:
        while True:
            batch = batches.get()
            if batch is None:
                return
            if self._state.fatal.is_set():
                self.dead_letter.write(
                    batch,
                    error_code="NotSent",
                    error_message=self._state.summary.fatal_error or "producer stopped",
                )
                self._state.add(dead_lettered=len(batch))
                continue
            try:
                self._send_batch(batch)
            except Exception as exc:  # never lose a batch to an unexpected error: record it
                log.exception(
                    "batch failed unexpectedly", extra={"stream": self.config.stream_name}
                )
                unfinished = [e for e in batch if not e.done]
                self._fail(unfinished, "UnexpectedError", repr(exc), fatal=True)

    def _fail(self, entries: list[Entry], code: str, message: str, *, fatal: bool) -> None:
        self.dead_letter.write(entries, error_code=code, error_message=message)
        self._state.add(dead_lettered=len(entries))
        if fatal:
            with self._state.lock:
                if self._state.summary.fatal_error is None:
                    self._state.summary.fatal_error = f"{code}: {message}"
            self._state.fatal.set()

    def _send_batch(self, batch: list[Entry]) -> None:
        cfg = self.config
        pending = batch
        batch_id = f"{id(batch):x}"
        while pending:
            for entry in pending:
                entry.attempts += 1
            attempt = pending[0].attempts
            self._state.add(calls=1)
            try:
                response = self.client.put_records(
                    StreamName=cfg.stream_name,
                    Records=[{"Data": e.data, "PartitionKey": e.key} for e in pending],
                )
            except ClientError as exc:
                code = error_code(exc, "ClientError")
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                # unbounded: the dead letters keep Kinesis's whole message
                message = error_message(exc, limit=None)
                for entry in pending:
                    entry.error_code, entry.error_message = code, message
                if code not in RETRYABLE_CALL_ERRORS and status < 500:
                    log.error(
                        "PutRecords failed; not retryable",
                        extra={"stream": cfg.stream_name, "batch": batch_id, "error": code},
                    )
                    self._fail(pending, code, message, fatal=True)
                    return
                pending = self._after_failure(pending, code, message, attempt, batch_id)
                continue
            except BotoCoreError as exc:  # connection refused/reset, timeouts
                code = type(exc).__name__
                for entry in pending:
                    entry.error_code, entry.error_message = code, str(exc)
                pending = self._after_failure(pending, code, str(exc), attempt, batch_id)
                continue
            results = response["Records"]
            if len(results) != len(pending):
                raise ProducerError(
                    f"PutRecords answered {len(results)} results for {len(pending)} records"
                )
            sent_at = utc_now_iso()
            accepted: list[tuple[Entry, str, str]] = []
            failed: list[Entry] = []
            for entry, result in zip(pending, results, strict=True):
                if result.get("ErrorCode"):
                    entry.error_code = result["ErrorCode"]
                    entry.error_message = result.get("ErrorMessage", "")
                    failed.append(entry)
                else:
                    entry.done = True
                    accepted.append((entry, result["ShardId"], result["SequenceNumber"]))
            if self.ground_truth is not None and accepted:
                self.ground_truth.accepted(accepted, sent_at)
            self._state.add(sent=len(accepted))
            if failed:
                code, message = failed[-1].error_code or "", failed[-1].error_message or ""
                pending = self._after_failure(failed, code, message, attempt, batch_id)
            else:
                pending = []

    def _after_failure(
        self, failed: list[Entry], code: str, message: str, attempt: int, batch_id: str
    ) -> list[Entry]:
        """Back off and return the entries to send again, or dead-letter them when out of tries."""
        cfg = self.config
        self._state.add(failed=len(failed))
        if attempt >= cfg.max_attempts:
            log.warning(
                "entries dead-lettered after the last attempt",
                extra={
                    "stream": cfg.stream_name,
                    "batch": batch_id,
                    "entries": len(failed),
                    "error": code,
                    "attempts": attempt,
                },
            )
            self._fail(failed, code, message, fatal=False)
            return []
        self._state.add(retried=len(failed))
        delay = backoff_seconds(
            attempt, base=cfg.base_backoff_s, cap=cfg.max_backoff_s, rng=self._rng
        )
        log.debug(
            "retrying failed entries",
            extra={"stream": cfg.stream_name, "batch": batch_id, "entries": len(failed),
                   "error": code, "attempt": attempt, "delay_s": round(delay, 3)},
        )  # fmt: skip
        self._sleep(delay)
        return failed


def make_kinesis_client(*, region: str, endpoint_url: str | None, concurrency: int) -> Any:
    """A boto3 Kinesis client whose retries are left to the writer (botocore's are off)."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        # the writer checks every Kinesis limit itself; botocore's per-call re-check of 500
        # entries is measurable CPU on the hot path
        parameter_validation=False,
        max_pool_connections=concurrency + 2,
        connect_timeout=5,
        read_timeout=30,
    )
    return boto3.client("kinesis", region_name=region, endpoint_url=endpoint_url, config=config)
