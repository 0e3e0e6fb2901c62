"""Runs `wrk` (Debian's package: a C load generator, so the load costs little of the 2 cores)
and parses its report: requests, req/s, latency percentiles (--latency) and errors."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

# wrk prints durations with a unit: 635.91us, 1.20ms, 2.01s, 1.50m, 1.00h
_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_DURATION = r"([0-9.]+)(us|ms|s|m|h)"


@dataclass(frozen=True)
class WrkResult:
    """One wrk run's figures."""

    requests: int
    seconds: float
    req_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int


def duration_ms(text: str) -> float:
    """wrk's '1.20ms' / '635.91us' / '2.01s' as milliseconds."""
    match = re.fullmatch(_DURATION, text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * _UNIT_MS[match[2]]


def parse_wrk(report: str) -> WrkResult:
    """The figures of a `wrk --latency` report; raises ValueError when one is missing."""

    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, report, re.MULTILINE)
        if not match:
            raise ValueError(f"wrk report has no match for {pattern!r}:\n{report}")
        return match

    total = find(rf"^\s*(\d+) requests in {_DURATION}")
    percentiles = {
        m[1]: duration_ms(m[2] + m[3])
        for m in re.finditer(rf"^\s*(50|75|90|99)(?:\.0+)?%\s+{_DURATION}\s*$", report, re.M)
    }
    if "50" not in percentiles or "99" not in percentiles:
        raise ValueError(f"wrk report has no latency distribution (--latency):\n{report}")
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", report
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    return WrkResult(
        requests=int(total[1]),
        seconds=duration_ms(total[2] + total[3]) / 1000,
        req_per_s=float(find(r"^Requests/sec:\s+([0-9.]+)")[1]),
        p50_ms=percentiles["50"],
        p99_ms=percentiles["99"],
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=sum(map(int, errors.groups())) if errors else 0,
    )


def run_wrk(
    url: str,
    *,
    connections: int,
    seconds: float,
    threads: int = 1,
    headers: dict[str, str] | None = None,
) -> WrkResult:
    """`wrk --latency` against `url` (127.0.0.1 only) for `seconds`; its parsed figures."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"wrk is pointed only at 127.0.0.1, not {url}")
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is required (Debian: apt-get install wrk; .ci/run installs it)")
    command = [binary, f"-t{threads}", f"-c{max(connections, threads)}"]
    command += [f"-d{max(1, round(seconds))}s", "--timeout", "30s", "--latency"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    done = subprocess.run(
        [*command, url], capture_output=True, text=True, check=False, timeout=seconds + 60
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)
