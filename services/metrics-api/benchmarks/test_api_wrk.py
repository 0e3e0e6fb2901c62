"""The wrk report parser on reports as wrk 4.1 (Debian's package) prints them."""

from __future__ import annotations

import pytest
from api_wrk import duration_ms, parse_wrk

# `wrk -t1 -c4 -d1s --latency` against a local server, verbatim
CLEAN = """\
Running 1s test @ http://127.0.0.1:18765/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    38.78ms   10.40ms  75.41ms   71.00%
    Req/Sec   100.10     21.19   130.00     80.00%
  Latency Distribution
     50%   39.56ms
     75%   44.24ms
     90%   51.20ms
     99%   75.41ms
  100 requests in 1.00s, 1.90MB read
Requests/sec:     99.75
Transfer/sec:      1.89MB
"""

# the lines wrk adds when some requests failed, with microsecond and second latencies
WITH_ERRORS = """\
Running 10s test @ http://127.0.0.1:8080/v1/kpis/signal-strength
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.50us    1.20ms   2.01s    97.00%
    Req/Sec     3.16k   200.00     3.50k    70.00%
  Latency Distribution
     50%  635.91us
     75%  712.34us
     90%  800.00us
     99%    1.50s
  31620 requests in 10.00s, 1.23GB read
  Socket errors: connect 0, read 2, write 1, timeout 4
  Non-2xx or 3xx responses: 12
Requests/sec:   3162.00
Transfer/sec:    125.95MB
"""


def test_clean_report() -> None:
    result = parse_wrk(CLEAN)
    assert (result.requests, result.seconds, result.req_per_s) == (100, 1.0, 99.75)
    assert (result.p50_ms, result.p99_ms) == (39.56, 75.41)
    assert (result.non_2xx, result.socket_errors) == (0, 0)


def test_errors_and_units() -> None:
    result = parse_wrk(WITH_ERRORS)
    assert (result.requests, result.req_per_s) == (31620, 3162.0)
    assert result.p50_ms == pytest.approx(0.63591)
    assert result.p99_ms == pytest.approx(1500.0)
    assert (result.non_2xx, result.socket_errors) == (12, 7)


def test_durations() -> None:
    assert duration_ms("635.91us") == pytest.approx(0.63591)
    assert duration_ms("2.00s") == 2000.0
    assert duration_ms("1.50m") == 90_000.0
    with pytest.raises(ValueError, match="not a wrk duration"):
        duration_ms("12")


def test_report_without_latency_distribution_is_refused() -> None:
    without = "\n".join(line for line in CLEAN.splitlines() if "%" not in line or "Stdev" in line)
    with pytest.raises(ValueError, match="--latency"):
        parse_wrk(without)
    with pytest.raises(ValueError, match="Requests/sec"):
        parse_wrk(CLEAN.replace("Requests/sec", "Reqs"))
