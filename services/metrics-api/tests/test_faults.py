"""Storage faults against a real API process: no silent partial answer, 503s with a reason.

The API runs as its own process (`python -m signal_api.main`, the entry point the image runs)
under `setpriv --bounding-set=-dac_override,-dac_read_search`: a root process keeps reading a
`chmod 000` directory otherwise, which is how the fault hid in tests before. One server on a
copy of the fixture lake (the faults are made and undone on the copy), one on a lake root that
does not exist yet. Numbers are checked against the raw fixture events (pandas).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from signal_common.lake import COVERAGE_BY_H3, SIGNAL_STRENGTH_BY_OPERATOR, partition_path
from signal_local import endpoints

SETPRIV = shutil.which("setpriv")
pytestmark = pytest.mark.skipif(SETPRIV is None, reason="setpriv (util-linux) is not installed")

FROM, TO = "2026-11-22T22:00:00Z", "2026-11-23T02:00:00Z"  # every hour of the fixture
HOUR_0 = partition_path(SIGNAL_STRENGTH_BY_OPERATOR, "2026-11-23", 0)
THRESHOLD = 3


def _serve(lake_root: Path, log_dir: Path, name: str) -> endpoints.ManagedProcess:
    """The API on `lake_root`, on a free loopback port, without the capabilities that let
    root read past file permissions."""
    port = endpoints.free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "SIGNAL_API_LAKE_ROOT": lake_root.as_uri(),
        "SIGNAL_API_HOST": "127.0.0.1",
        "SIGNAL_API_PORT": str(port),
        "SIGNAL_API_AUTH_ENABLED": "false",
        "SIGNAL_API_RATE_LIMIT_PER_MINUTE": "100000",
        "SIGNAL_API_RATE_LIMIT_BURST": "100000",
        "SIGNAL_API_CACHE_TTL_S": "60",
        "SIGNAL_API_READY_CACHE_S": "30",
        "SIGNAL_API_READY_FAILURE_THRESHOLD": str(THRESHOLD),
        "SIGNAL_API_DUCKDB_THREADS": "1",
    }
    argv = [
        str(SETPRIV),
        "--bounding-set=-dac_override,-dac_read_search",
        sys.executable,
        "-m",
        "signal_api.main",
    ]
    proc = endpoints._spawn(name, argv, port, log_dir, env)
    endpoints._wait_until_answering(proc, "/healthz", 60)
    return proc


@pytest.fixture(scope="module")
def faulty_lake(lake: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the fixture lake, to make unreadable in places."""
    root = tmp_path_factory.mktemp("faulty") / "lake"
    shutil.copytree(lake, root)
    return root


@contextlib.contextmanager
def _client(lake_root: Path, log_dir: Path, name: str) -> Iterator[httpx.Client]:
    """A client of an API process on `lake_root` (stopped after)."""
    proc = _serve(lake_root, log_dir, name)
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as client:
            yield client
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def api(faulty_lake: Path, endpoint_log_dir: Path) -> Iterator[httpx.Client]:
    """A client of the API process over the faulty lake."""
    with _client(faulty_lake, endpoint_log_dir, "api-faults") as client:
        yield client


@contextlib.contextmanager
def mode(path: Path, bits: int) -> Iterator[None]:
    """`path` with permission `bits` for the duration (restored after)."""
    old = path.stat().st_mode
    os.chmod(path, bits)
    try:
        yield
    finally:
        os.chmod(path, old)


def _strength(api: httpx.Client, **extra: str) -> httpx.Response:
    return api.get(
        "/v1/kpis/signal-strength",
        params={"from": FROM, "to": TO, "granularity": "1h", **extra},
    )


def _error(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    return body


def _counts_by_hour(events: pd.DataFrame, operator: str | None = None) -> dict[str, int]:
    """The oracle: events per hour bucket (UTC) straight from the raw events."""
    chosen = events if operator is None else events[events["operator"] == operator]
    hours = chosen["event_time"].dt.floor("h").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {h: int(n) for h, n in hours.value_counts().sort_index().items()}


def _answered_by_hour(response: httpx.Response) -> dict[str, int]:
    totals: dict[str, int] = {}
    for row in response.json()["rows"]:
        totals[row["bucket_start"]] = totals.get(row["bucket_start"], 0) + row["event_count"]
    return dict(sorted(totals.items()))


def test_an_unreadable_hour_is_a_503_naming_it_never_a_partial_200(
    api: httpx.Client, faulty_lake: Path, events: pd.DataFrame
) -> None:
    with mode(faulty_lake / HOUR_0, 0):
        refused = _strength(api)
        assert refused.status_code == 503, refused.text
        assert _error(refused)["code"] == "lake_unreadable"
        assert f"{HOUR_0} (Permission denied)" in _error(refused)["message"]
        again = _strength(api)  # the failure is not cached either: it is checked again
        assert again.status_code == 503
    whole = _strength(api)
    assert whole.status_code == 200
    meta = whole.json()["meta"]
    assert (meta["stale"], meta["cached"]) == (False, False)  # nothing partial kept
    assert _answered_by_hour(whole) == _counts_by_hour(events)
    assert "2026-11-23T00:00:00Z" in _answered_by_hour(whole)


def test_an_unreadable_hexagon_hour_is_a_503_never_cells_missing(
    api: httpx.Client, faulty_lake: Path
) -> None:
    """/v1/coverage/h3 reads coverage_by_h3 through the same partition check (#24)."""
    hour = partition_path(COVERAGE_BY_H3, "2026-11-23", 0)
    params = {"from": FROM, "to": TO, "res": "7"}
    with mode(faulty_lake / hour, 0):
        refused = api.get("/v1/coverage/h3", params=params)
        assert refused.status_code == 503, refused.text
        assert _error(refused)["code"] == "lake_unreadable"
        assert f"{hour} (Permission denied)" in _error(refused)["message"]
    whole = api.get("/v1/coverage/h3", params=params)
    assert whole.status_code == 200
    assert whole.json()["rows"]


@pytest.mark.parametrize(
    ("bits", "network"), [(0o444, "2G"), (0o111, "3G")], ids=["list-only", "enter-only"]
)
def test_a_partition_readable_only_in_part_is_refused(
    api: httpx.Client, faulty_lake: Path, bits: int, network: str
) -> None:
    """DuckDB's glob also skips a directory it can list but not enter, or enter but not list."""
    day = faulty_lake / SIGNAL_STRENGTH_BY_OPERATOR.name / "dt=2026-11-23"
    with mode(day, bits):
        refused = _strength(api, operator="Orange", network_type=network)
    assert refused.status_code == 503
    assert (
        "signal_strength_by_operator/dt=2026-11-23 (Permission denied)"
        in (_error(refused)["message"])
    )
    assert _strength(api, operator="Orange", network_type=network).status_code == 200


def test_partitions_outside_the_range_do_not_matter(api: httpx.Client, faulty_lake: Path) -> None:
    with mode(faulty_lake / HOUR_0, 0):
        before_midnight = api.get(
            "/v1/kpis/signal-strength",
            params={"from": "2026-11-22T22:00:00Z", "to": "2026-11-23T00:00:00Z"},
        )
    assert before_midnight.status_code == 200


def test_an_unreadable_or_corrupt_file_is_a_503_naming_it(
    api: httpx.Client, faulty_lake: Path
) -> None:
    data_file = sorted((faulty_lake / HOUR_0).glob("*.parquet"))[-1]
    with mode(data_file, 0):
        refused = _strength(api, network_type="4G")
    assert refused.status_code == 503
    assert _error(refused)["code"] == "lake_unreadable"
    assert f"{HOUR_0}/{data_file.name}" in _error(refused)["message"]
    assert "Permission denied" in _error(refused)["message"]
    corrupt = faulty_lake / HOUR_0 / "part-zz-corrupt.parquet"
    corrupt.write_bytes(data_file.read_bytes()[:-64])  # truncated: no footer
    try:
        broken = _strength(api, network_type="5G")
    finally:
        corrupt.unlink()
    assert broken.status_code == 503
    assert _error(broken)["code"] == "lake_unreadable"
    assert f"{HOUR_0}/part-zz-corrupt.parquet" in _error(broken)["message"]
    assert _strength(api, network_type="5G").status_code == 200


def test_an_unreadable_lake_root_is_a_503_not_a_500(api: httpx.Client, faulty_lake: Path) -> None:
    for unreadable, network in ((faulty_lake, "2G"), (faulty_lake.parent, "3G")):
        # the root itself, or the way to it (Path.is_dir() raised PermissionError there)
        with mode(unreadable, 0):
            refused = _strength(api, operator="Proximus", network_type=network)
            ready = api.get("/readyz")
            alive = api.get("/healthz")
        assert refused.status_code == 503, refused.text
        assert _error(refused)["code"] == "lake_unreadable"
        assert "cannot be read (Permission denied)" in _error(refused)["message"]
        assert ready.status_code == 503
        assert alive.status_code == 200
        assert _strength(api, operator="Proximus", network_type=network).status_code == 200


def test_failed_data_queries_withdraw_readiness_until_one_succeeds(
    api: httpx.Client, faulty_lake: Path
) -> None:
    """The probe alone (the newest pipeline_batches partitions, readable here) does not
    make up for data queries failing: after THRESHOLD in a row /readyz is 503."""
    assert _strength(api, operator="Base O'Neil").status_code == 200
    with mode(faulty_lake / HOUR_0, 0):
        for failures in range(1, THRESHOLD + 1):
            assert _strength(api, operator="Base O'Neil", network_type="3G").status_code == 503
            ready = api.get("/readyz")
            if failures < THRESHOLD:
                assert ready.status_code == 200, ready.text  # the probe can still read
        assert ready.status_code == 503
        reason = _error(ready)
        # the query that failed is re-run (lake_unreadable, naming the partition) when the
        # API reports which query failed; else readiness waits for a data query to succeed
        if reason["code"] == "lake_unreadable":
            assert HOUR_0 in reason["message"]
        else:
            assert reason["code"] == "not_ready"
            assert f"{THRESHOLD} data queries failed in a row" in reason["message"]
    assert _strength(api, operator="Base O'Neil", network_type="3G").status_code == 200
    assert api.get("/readyz").status_code == 200  # the next success restores it


# --- a lake root that does not exist when the API starts --------------------------------


@pytest.fixture(scope="module")
def late_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the lake will be (not created yet)."""
    return tmp_path_factory.mktemp("late") / "lake"


@pytest.fixture(scope="module")
def api_before_lake(late_root: Path, endpoint_log_dir: Path) -> Iterator[httpx.Client]:
    """A client of the API process started before its lake root exists."""
    with _client(late_root, endpoint_log_dir, "api-late-lake") as client:
        yield client


def test_readiness_follows_the_lake_root(api_before_lake: httpx.Client, late_root: Path) -> None:
    api = api_before_lake
    missing = api.get("/readyz")
    assert missing.status_code == 503
    assert f"lake root {late_root} does not exist" in _error(missing)["message"]
    assert api.get("/healthz").status_code == 200
    late_root.mkdir()  # a fresh lake: no table yet, not even pipeline_batches
    ready = api.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checked"] == "now"
    assert _strength(api).json()["rows"] == []
    with mode(late_root, 0):
        refused = _strength(api, operator="Orange")
        unready = api.get("/readyz")  # the failure withdrew the proof: the probe runs
    assert refused.status_code == 503
    assert unready.status_code == 503
    assert _error(unready)["code"] == "lake_unreadable"
    assert "cannot be read (Permission denied)" in _error(unready)["message"]
    assert api.get("/readyz").status_code == 200


def test_unreadable_alert_state_is_a_503_never_all_clear(
    api: httpx.Client, faulty_lake: Path
) -> None:
    """The evaluator's state hidden by a fault is an error: neither "never evaluated" nor an
    empty list of alerts, which would both read as "all clear"."""
    day = sorted((faulty_lake / "alert_events").iterdir())[-1]
    cycle = sorted(day.glob("*.parquet"))[-1]
    assert api.get("/v1/alerts").status_code == 200
    for unreadable in (cycle, day, faulty_lake / "alert_events"):
        with mode(unreadable, 0):
            refused = api.get("/v1/alerts")
        assert refused.status_code == 503, (unreadable, refused.text)
        assert _error(refused)["code"] == "lake_unreadable", refused.text
        assert "Permission denied" in _error(refused)["message"]
    assert api.get("/v1/alerts").status_code == 200
