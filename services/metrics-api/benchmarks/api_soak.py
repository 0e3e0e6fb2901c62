"""The API soak: one uvicorn worker with the default limits, under load and one fault.

For `seconds` (about 60; 15 in --quick) against a server started with auth on and every limit at
its default:
- three keys at their rate limits: each sends its burst at once, then 10 % over its sustained
  rate, at most `WORKERS_PER_KEY` requests in flight; each key's requests cycle through `MIX`:
  cached (two fixed 1 h / 1m requests, one of them over the faulted hour), uncached (24 h / 1m,
  every one a range never asked before) and maximum-size (the longest 1m range the server
  accepts, also never repeated);
- one caller sending wrong keys, from 127.0.0.2 (a different client address to per-address
  limits; the traffic still goes to 127.0.0.1);
- `/healthz` polled every 50 ms and `/readyz` every 250 ms, each on its own connection, from a
  process of their own (`python -m api_soak PORT SECONDS`);
- halfway through, one hour partition of the KPI table (inside every uncached and
  maximum-size range) made unreadable: `chmod 000` of its `dt=/hour=` directory. The server
  runs under `setpriv --bounding-set=-dac_override,-dac_read_search`, so even as root it cannot
  list it. The caller restores the mode (`restore_fault`), also on failure.

Every 200 is checked against an oracle independent of the API: the number of raw events (the
lake's `events` table, read with pyarrow) in the request's range. A 200 whose `meta.stale` is
false and whose event count differs is a wrong 200. A 503 answered after the fault to a request
whose partitions include the faulted hour is deliberate; every other 5xx counts as a 5xx.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import http.client
import json
import os
import secrets
import shutil
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from api_http import Connection

from signal_common.lake import EVENTS

# One cycle of a key's requests: 6 cached, 3 uncached, 1 maximum-size.
MIX = ("cached", "uncached", "cached", "max", "cached", "uncached", "cached", "cached",
       "uncached", "cached")  # fmt: skip
WORKERS_PER_KEY = 8
OVER_RATE = 1.1  # keys send 10 % over their sustained rate, so each stays at its limit
BAD_KEY_PER_S = 20.0
HEALTHZ_EVERY_S = 0.05
READYZ_EVERY_S = 0.25
REQUEST_TIMEOUT_S = 30.0
SERIES_PER_MINUTE = 16  # operators x network types in the benchmark's lake
KPI_PATH = "/v1/kpis/signal-strength"
# A request that got no reply: reset or refused (OSError, which includes asyncio.wait_for's
# TimeoutError), closed mid-reply, or an unparsable reply.
BROKEN = (OSError, asyncio.IncompleteReadError, ValueError)


def iso(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def hour_floor(value: dt.datetime) -> dt.datetime:
    return value.replace(minute=0, second=0, microsecond=0)


class EventOracle:
    """Raw events per range, from the lake's `events` table (never through the API)."""

    def __init__(self, lake: Path) -> None:
        times = [
            pq.read_table(path, columns=["event_time"])["event_time"].cast("int64").to_numpy()
            for path in sorted((lake / EVENTS.name).rglob("*.parquet"))
        ]
        self._us = np.sort(np.concatenate(times)) if times else np.array([], dtype=np.int64)

    def count(self, start: dt.datetime, end: dt.datetime) -> int:
        """Events with start <= event_time < end."""
        lo, hi = (int(t.timestamp() * 1_000_000) for t in (start, end))
        return int(np.searchsorted(self._us, hi) - np.searchsorted(self._us, lo))


@dataclass(frozen=True)
class Request:
    kind: str
    start: dt.datetime
    end: dt.datetime

    @property
    def path(self) -> str:
        return f"{KPI_PATH}?granularity=1m&from={iso(self.start)}&to={iso(self.end)}"

    def touches(self, hour: dt.datetime) -> bool:
        """Whether the query's partition bounds (from's hour to to's hour) include `hour`."""
        return hour_floor(self.start) <= hour <= hour_floor(self.end)


@dataclass(frozen=True)
class Outcome:
    kind: str
    status: int  # 0: the connection broke or the request timed out
    latency_s: float
    done_s: float  # seconds since the soak started
    touches_fault: bool
    verdict: str = ""  # for 200s: ok, wrong, wrong_cached, stale, stale_wrong, partial
    error_code: str = ""
    names_partition: bool = False


@dataclass
class SoakPlan:
    """What the soak asks for: ranges derived from the lake and the server's limits."""

    port: int
    keys: dict[str, str]  # name -> key
    seconds: float
    fault_dir: Path
    fault_hour: dt.datetime
    window: tuple[dt.datetime, dt.datetime]  # the 24 h / 1m range the uncached ones shift
    lake_end: dt.datetime
    max_hours: int  # the maximum-size request's range (1m)
    rate_per_minute: int
    burst: int
    _cached: int = 0
    _uncached: int = 0
    _max: int = 0

    def request(self, kind: str) -> Request:
        """The next request of `kind`; uncached and max ones are never repeated."""
        minute = dt.timedelta(minutes=1)
        if kind == "cached":
            self._cached += 1
            if self._cached % 2:
                half = dt.timedelta(minutes=30)
                return Request(kind, self.fault_hour - half, self.fault_hour + half)
            return Request(kind, self.window[1] - dt.timedelta(hours=1), self.window[1])
        if kind == "uncached":
            self._uncached += 1
            shift = self._uncached * minute
            return Request(kind, self.window[0] - shift, self.window[1] - shift)
        self._max += 1
        end = self.lake_end - self._max * minute
        return Request(kind, end - dt.timedelta(hours=self.max_hours), end)


@dataclass
class SoakResult:
    outcomes: list[Outcome] = field(default_factory=list)
    bad_key_statuses: Counter[int] = field(default_factory=Counter)
    bad_key_retry_after: int = 0  # replies to wrong keys with a Retry-After header
    healthz_s: list[float] = field(default_factory=list)
    healthz_statuses: Counter[int] = field(default_factory=Counter)
    readyz_s: list[float] = field(default_factory=list)
    readyz_statuses: Counter[int] = field(default_factory=Counter)
    fault_at_s: float | None = None


def percentile_ms(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of seconds, in ms (None without values)."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000, 2)


def key_hash_setting(keys: dict[str, str]) -> str:
    """SIGNAL_API_API_KEYS_SHA256 for `keys` (name:sha256hex)."""
    return json.dumps([f"{n}:{hashlib.sha256(k.encode()).hexdigest()}" for n, k in keys.items()])


def server_command(command: list[str]) -> list[str]:
    """`command` without the capabilities that let root read a chmod-000 directory.

    Not root: the kernel's permission check already applies, so the command runs as it is."""
    if os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise RuntimeError("setpriv (util-linux) is required to run the soak's server as root")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", *command]


def restore_fault(plan: SoakPlan) -> None:
    """Make the faulted partition readable again (idempotent)."""
    if plan.fault_dir.exists():
        os.chmod(plan.fault_dir, 0o755)


def _judge(request: Request, reply_status: int, body: bytes, oracle: EventOracle) -> str:
    if reply_status != 200:
        return ""
    document = json.loads(body)
    meta = document.get("meta", {})
    counted = sum(row["event_count"] for row in document["rows"])
    right = counted == oracle.count(request.start, request.end)
    if meta.get("partial"):
        return "partial"
    if meta.get("stale"):
        return "stale" if right else "stale_wrong"
    if right:
        return "ok"
    return "wrong_cached" if meta.get("cached") else "wrong"


def _error_code(body: bytes) -> str:
    try:
        return str(json.loads(body)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return ""


async def run_soak(plan: SoakPlan, oracle: EventOracle) -> SoakResult:
    """Run the soak against the server at plan.port; the caller restores the fault."""
    result = SoakResult()
    # /healthz and /readyz are timed from a process of their own: this one's event loop is busy
    # decoding megabytes of JSON, which would add its own delays to theirs.
    poller = await asyncio.create_subprocess_exec(
        sys.executable, "-m", __name__, str(plan.port), str(plan.seconds),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
    )  # fmt: skip
    assert poller.stdout is not None
    await poller.stdout.readline()  # "ready"
    t0 = time.perf_counter()
    deadline = t0 + plan.seconds
    partition = f"{plan.fault_dir.parent.name}/{plan.fault_dir.name}"

    def now() -> float:
        return time.perf_counter() - t0

    async def sleep_until(at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.perf_counter()))

    async def send(conn: Connection, request: Request, key: str) -> None:
        started = time.perf_counter()
        try:
            reply = await asyncio.wait_for(
                conn.get(request.path, {"X-API-Key": key}), REQUEST_TIMEOUT_S
            )
            status, body = reply.status, reply.body
        except BROKEN:
            status, body = 0, b""
        latency = time.perf_counter() - started
        result.outcomes.append(
            Outcome(
                request.kind,
                status,
                latency,
                now(),
                request.touches(plan.fault_hour),
                _judge(request, status, body, oracle),
                _error_code(body) if status >= 400 else "",
                status >= 500 and partition.encode() in body,
            )
        )

    async def key_driver(key: str) -> None:
        interval = 60.0 / (plan.rate_per_minute * OVER_RATE)
        slots = iter(range(10**9))

        async def worker() -> None:
            conn = Connection(plan.port)
            while True:
                slot = next(slots)
                at = t0 + max(0, slot - plan.burst) * interval
                if at >= deadline or time.perf_counter() >= deadline:
                    break  # behind schedule or not: no request starts after the deadline
                await sleep_until(at)
                await send(conn, plan.request(MIX[slot % len(MIX)]), key)
            conn.close()

        await asyncio.gather(*(worker() for _ in range(WORKERS_PER_KEY)))

    async def bad_keys() -> None:
        conn = Connection(plan.port, local_host="127.0.0.2")
        path = Request("cached", plan.window[1] - dt.timedelta(hours=1), plan.window[1]).path
        at = t0
        while at < deadline:
            await sleep_until(at)
            try:
                reply = await asyncio.wait_for(
                    conn.get(path, {"X-API-Key": "bad-" + secrets.token_hex(8)}),
                    REQUEST_TIMEOUT_S,
                )
                result.bad_key_statuses[reply.status] += 1
                result.bad_key_retry_after += "retry-after" in reply.headers
            except BROKEN:
                result.bad_key_statuses[0] += 1
            at += 1.0 / BAD_KEY_PER_S
        conn.close()

    async def fault() -> None:
        await sleep_until(t0 + plan.seconds / 2)
        os.chmod(plan.fault_dir, 0)
        result.fault_at_s = now()

    await asyncio.gather(*(key_driver(key) for key in plan.keys.values()), bad_keys(), fault())
    polled = json.loads((await poller.communicate())[0].decode().splitlines()[-1])
    result.healthz_s, result.healthz_statuses = (
        polled["/healthz"]["latencies_s"],
        Counter({int(k): v for k, v in polled["/healthz"]["statuses"].items()}),
    )
    result.readyz_s, result.readyz_statuses = (
        polled["/readyz"]["latencies_s"],
        Counter({int(k): v for k, v in polled["/readyz"]["statuses"].items()}),
    )
    return result


def poll(port: int, path: str, every: float, seconds: float) -> dict[str, object]:
    """GET `path` every `every` s for `seconds` on one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    at = time.perf_counter()
    deadline = at + seconds
    while at < deadline:
        time.sleep(max(0.0, at - time.perf_counter()))
        started = time.perf_counter()
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            statuses[response.status] += 1
        except (OSError, http.client.HTTPException):
            statuses[0] += 1
            conn.close()  # the next request reconnects
        latencies.append(time.perf_counter() - started)
        at = max(at + every, time.perf_counter())
    conn.close()
    return {"latencies_s": latencies, "statuses": statuses}


def poll_main(port: int, seconds: float) -> None:
    """The pollers' process: /healthz and /readyz each on its own thread; one JSON line."""
    print("ready", flush=True)
    with ThreadPoolExecutor(2) as pool:
        futures = {
            path: pool.submit(poll, port, path, every, seconds)
            for path, every in (("/healthz", HEALTHZ_EVERY_S), ("/readyz", READYZ_EVERY_S))
        }
    print(json.dumps({path: future.result() for path, future in futures.items()}))


def summarize(result: SoakResult, seconds: float) -> dict[str, object]:
    """The soak's figures (keys prefixed soak_, plus the /healthz and /readyz figures)."""
    fault_at = result.fault_at_s if result.fault_at_s is not None else float("inf")
    outcomes = result.outcomes

    def deliberate(o: Outcome) -> bool:
        return o.status == 503 and o.touches_fault and o.done_s >= fault_at

    def latencies(kind: str) -> list[float]:
        return [o.latency_s for o in outcomes if o.kind == kind and o.status == 200]

    verdicts: Counter[str] = Counter(o.verdict for o in outcomes if o.verdict)
    wrong = [o for o in outcomes if o.verdict in ("wrong", "wrong_cached")]
    figures: dict[str, object] = {
        "soak_seconds": round(seconds, 1),
        "soak_requests": len(outcomes),
        "soak_status": {str(k): v for k, v in sorted(Counter(o.status for o in outcomes).items())},
        "soak_5xx": sum(o.status >= 500 and not deliberate(o) for o in outcomes),
        "soak_deliberate_503": sum(map(deliberate, outcomes)),
        "soak_503_naming_partition": sum(deliberate(o) and o.names_partition for o in outcomes),
        "soak_503_codes": dict(Counter(o.error_code for o in outcomes if o.status == 503)),
        "soak_broken_connections": sum(o.status == 0 for o in outcomes),
        "soak_wrong_200": len(wrong),
        "soak_wrong_200_before_fault": sum(o.done_s < fault_at for o in wrong),
        "soak_wrong_200_from_cache": verdicts["wrong_cached"],
        "soak_wrong_200_by_kind": dict(Counter(o.kind for o in wrong)),
        "soak_stale_200": verdicts["stale"] + verdicts["stale_wrong"],
        "soak_stale_wrong_200": verdicts["stale_wrong"],
        "soak_partial_200": verdicts["partial"],
        "soak_429": sum(o.status == 429 for o in outcomes),
        "soak_max_422": sum(o.status == 422 and o.kind == "max" for o in outcomes),
        "soak_bad_key_status": {str(k): v for k, v in sorted(result.bad_key_statuses.items())},
        "soak_bad_key_retry_after": result.bad_key_retry_after,
        "soak_fault_at_s": None if result.fault_at_s is None else round(result.fault_at_s, 1),
        "healthz_p50_ms_under_load": percentile_ms(result.healthz_s, 0.5),
        "healthz_p99_ms_under_load": percentile_ms(result.healthz_s, 0.99),
        "healthz_max_ms_under_load": percentile_ms(result.healthz_s, 1.0),
        "healthz_non_200": sum(v for k, v in result.healthz_statuses.items() if k != 200),
        "readyz_p99_ms_under_load": percentile_ms(result.readyz_s, 0.99),
        "readyz_status": {str(k): v for k, v in sorted(result.readyz_statuses.items())},
    }
    for kind in ("cached", "uncached", "max"):
        figures[f"soak_{kind}_200"] = len(latencies(kind))
        figures[f"soak_{kind}_p50_ms"] = percentile_ms(latencies(kind), 0.5)
        figures[f"soak_{kind}_p99_ms"] = percentile_ms(latencies(kind), 0.99)
    return figures


def vm_kib(pid: int, field_name: str) -> int:
    """A `VmRSS`/`VmHWM`-style field of /proc/<pid>/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field_name} in /proc/{pid}/status")


if __name__ == "__main__":
    poll_main(int(sys.argv[1]), float(sys.argv[2]))
